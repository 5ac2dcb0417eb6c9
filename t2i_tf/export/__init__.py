"""t2i_tf.export."""
