"""``python -m datasets.css.generate``: runs t2i_tf.datasets.css.generate (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.css.generate import main

if __name__ == "__main__":
    sys.exit(main())
