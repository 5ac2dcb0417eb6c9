"""``python -m datasets.anime.generate``: runs t2i_tf.datasets.anime.generate (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.anime.generate import main

if __name__ == "__main__":
    sys.exit(main())
