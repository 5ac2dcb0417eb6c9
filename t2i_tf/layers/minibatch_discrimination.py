"""Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.2).

Lets a discriminator see statistics of the whole (per-replica) batch, so a generator that collapses
to one mode is easy to spot: each example's features are projected to ``num_kernels`` rows of
``kernel_dim`` values, and for every kernel the example gets ``sum_j exp(-||M_i - M_j||_1)`` over the
batch (its own term, exp(0) = 1, included), appended to its features.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


class MinibatchDiscrimination(layers.Layer):
    """Features [N, F] -> [N, F + num_kernels]: the input with its closeness to the rest of the batch.

    Under a distribution strategy the batch is the per-replica batch (each replica compares its own
    examples only).
    """

    def __init__(self, num_kernels: int = 128, kernel_dim: int = 16, **kwargs):
        super().__init__(**kwargs)
        if num_kernels < 1 or kernel_dim < 1:
            raise ValueError(f"num_kernels and kernel_dim must be >= 1, got {num_kernels}, {kernel_dim}")
        self.num_kernels = int(num_kernels)
        self.kernel_dim = int(kernel_dim)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(int(input_shape[-1]), self.num_kernels * self.kernel_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.1),
        )

    def call(self, inputs, training=None):
        m = tf.reshape(tf.matmul(inputs, self.kernel), [-1, self.num_kernels, self.kernel_dim])
        l1 = tf.reduce_sum(tf.abs(m[:, None, :, :] - m[None, :, :, :]), axis=-1)  # [N, N, K]
        closeness = tf.reduce_sum(tf.exp(-l1), axis=1)  # [N, K]
        return tf.concat([inputs, closeness], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], int(input_shape[-1]) + self.num_kernels)

    def get_config(self):
        return {**super().get_config(), "num_kernels": self.num_kernels, "kernel_dim": self.kernel_dim}
