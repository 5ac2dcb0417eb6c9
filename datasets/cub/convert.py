"""``python -m datasets.cub.convert``: runs t2i_tf.datasets.cub.convert (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.cub.convert import main

if __name__ == "__main__":
    sys.exit(main())
