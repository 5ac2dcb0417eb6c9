"""``python -m datasets.css.convert``: runs t2i_tf.datasets.css.convert (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.css.convert import main

if __name__ == "__main__":
    sys.exit(main())
