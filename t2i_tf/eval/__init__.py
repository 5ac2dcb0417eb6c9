"""t2i_tf.eval."""
