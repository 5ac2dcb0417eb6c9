"""``python -m datasets.css.captions``: runs t2i_tf.datasets.css.captions (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.css.captions import main

if __name__ == "__main__":
    sys.exit(main())
