"""Dataset converters and the CSS generator: raw files in their published layout -> TFRecord shards + info.json.

Their command lines are ``python -m datasets.<name>`` (the top-level entry points) or ``python -m t2i_tf.datasets.<name>``.
"""
