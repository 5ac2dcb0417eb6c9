"""``python -m t2i_tf.import_torch``: see :mod:`t2i_tf.import_torch.cli`."""

import sys

from t2i_tf.import_torch.cli import main

if __name__ == "__main__":
    sys.exit(main())
