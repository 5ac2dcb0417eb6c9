"""``python -m t2i_tf.tfds NAME --manual_dir=DIR [--data_dir=DIR]``: see t2i_tf/tfds/build.py."""

import sys

from t2i_tf.tfds.build import main

if __name__ == "__main__":
    sys.exit(main())
