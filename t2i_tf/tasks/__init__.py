"""t2i_tf.tasks."""
