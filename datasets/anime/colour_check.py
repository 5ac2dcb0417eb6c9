"""``python -m datasets.anime.colour_check``: runs t2i_tf.datasets.anime.colour_check (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.anime.colour_check import main

if __name__ == "__main__":
    sys.exit(main())
