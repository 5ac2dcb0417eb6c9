"""t2i_tf command line: ``python main.py --model=tirg [--mode=train|eval|export|retrieve] ...``.

``python main.py --helpfull`` lists every flag; defaults come from configs/<model>.py. An installed package
(``pip install .``) has the same command as ``t2i-tf`` (and ``python -m t2i_tf``): both call t2i_tf.console.run.
"""

from t2i_tf.console import run

if __name__ == "__main__":
    run()
