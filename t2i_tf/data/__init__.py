"""tf.data readers, tokenisation and on-disk record helpers."""
