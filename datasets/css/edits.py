"""``python -m datasets.css.edits``: runs t2i_tf.datasets.css.edits (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.css.edits import main

if __name__ == "__main__":
    sys.exit(main())
