"""``python -m datasets.vg.convert``: runs t2i_tf.datasets.vg.convert (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.vg.convert import main

if __name__ == "__main__":
    sys.exit(main())
