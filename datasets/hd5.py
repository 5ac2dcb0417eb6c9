"""``python -m datasets.hd5``: runs t2i_tf.datasets.hd5 (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.hd5 import main

if __name__ == "__main__":
    sys.exit(main())
