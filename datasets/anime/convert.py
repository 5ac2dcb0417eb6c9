"""``python -m datasets.anime.convert``: runs t2i_tf.datasets.anime.convert (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.anime.convert import main

if __name__ == "__main__":
    sys.exit(main())
