"""t2i_tf.train."""
