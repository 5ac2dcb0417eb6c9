"""The one noise rule of every generator: same seed, same images, in generate, eval, the export and the demo."""

from __future__ import annotations

import tensorflow as tf

# How exports, sample sheets and the demo draw z (written into every export's description).
NOISE_RULE = "z = tf.random.stateless_normal([N, z_dim], seed=[seed, stream]), stream 0 for generate: same seed, same images"
# The stream of the fixed TensorBoard / training-eval samples.
SAMPLES_STREAM = 1234


def generator_noise(n, z_dim: int, seed, stream=0) -> tf.Tensor:
    """``[n, z_dim]`` standard normal noise from ``seed`` (a Python int or an int64 scalar tensor) and ``stream``."""
    shape = tf.stack([tf.cast(n, tf.int32), tf.constant(int(z_dim), tf.int32)])
    pair = tf.stack([tf.cast(seed, tf.int64), tf.cast(stream, tf.int64)])
    return tf.random.stateless_normal(shape, seed=pair)
