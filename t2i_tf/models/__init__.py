"""t2i_tf.models."""
