"""t2i_tf command line: ``python main.py --model=tirg [--mode=train|eval|export|retrieve] ...``.

``python main.py --helpfull`` lists every flag; defaults come from configs/<model>.py.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN kernels make CPU conv backprop ~3x faster; TF leaves them off on some builds.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from absl import logging  # noqa: E402

logging.set_verbosity(logging.WARNING)

from absl import app  # noqa: E402

from t2i_tf.cli import main  # noqa: E402

if __name__ == "__main__":
    app.run(main)
