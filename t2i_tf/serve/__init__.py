"""t2i_tf.serve."""
