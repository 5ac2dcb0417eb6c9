"""``python -m datasets.coco_stuff.convert``: runs t2i_tf.datasets.coco_stuff.convert (see its docstring, or --help)."""

import sys

from t2i_tf.datasets.coco_stuff.convert import main

if __name__ == "__main__":
    sys.exit(main())
