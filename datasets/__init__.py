"""Dataset converters: raw files in their published layout -> TFRecord shards + info.json."""

import os

# The converters are command-line tools: keep TensorFlow's C++ start-up chatter out of their output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
