"""t2i_tf.layers."""
