"""``python -m t2i_tf``: the same command line as ``python main.py`` and ``t2i-tf``."""

from t2i_tf.console import run

if __name__ == "__main__":
    run()
