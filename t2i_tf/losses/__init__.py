"""t2i_tf.losses."""
