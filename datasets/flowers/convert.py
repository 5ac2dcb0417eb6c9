"""``python -m datasets.flowers.convert``: runs t2i_tf.datasets.flowers.convert (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.flowers.convert import main

if __name__ == "__main__":
    sys.exit(main())
