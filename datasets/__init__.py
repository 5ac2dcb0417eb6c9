"""Command-line entry points of the dataset tools: ``python -m datasets.<name>`` runs ``t2i_tf.datasets.<name>``.

The code lives in the package (t2i_tf/datasets/), so an installed t2i_tf has it and never imports this
top-level ``datasets`` package (whose name other libraries, e.g. Hugging Face's, also use).
"""

import os

# The converters are command-line tools: keep TensorFlow's C++ start-up chatter out of their output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
