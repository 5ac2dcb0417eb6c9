"""Conditioning augmentation (Zhang et al., StackGAN, ICCV 2017) and the gated linear unit.

A text embedding is mapped to the mean and log-variance of a Gaussian over a small conditioning
vector; the generator sees a sample ``c = mu + sigma * eps`` instead of the fixed embedding, which
smooths the conditioning manifold and, together with the KL term of
:func:`t2i_tf.losses.kl.kl_divergence`, keeps it close to N(0, I).

The noise ``eps`` is an input, not drawn here: the training task draws it from its own
``tf.random.Generator`` so that randomness is the same on one device and under a distribution
strategy. Without noise the layer returns ``c = mu`` (deterministic, for evaluation and export).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

ACTIVATIONS = ("glu", "relu")


def glu(x: tf.Tensor) -> tf.Tensor:
    """Gated linear unit over the last axis: split it in halves ``a, b`` and return ``a * sigmoid(b)``."""
    x = tf.convert_to_tensor(x)
    last = x.shape[-1]
    if last is not None and last % 2:
        raise ValueError(f"glu needs an even number of features on the last axis; got {last}")
    a, b = tf.split(x, 2, axis=-1)
    return a * tf.sigmoid(b)


class ConditioningAugmentation(layers.Layer):
    """Text embedding [N, E] (+ noise [N, c_dim]) -> ``(c, mu, logvar)``, each [N, c_dim].

    ``activation="glu"`` (default): Dense(4 c_dim) then :func:`glu` -> 2 c_dim, the CA net of
    StackGAN-v2 / AttnGAN. ``activation="relu"``: Dense(2 c_dim) then ReLU, the CA net of
    hanzhanggit/StackGAN-Pytorch exactly (its ReLU keeps mu >= 0 and logvar >= 0, i.e. sigma >= 1).
    The first c_dim outputs are mu, the rest logvar.
    """

    def __init__(self, c_dim: int, activation: str = "glu", **kwargs):
        super().__init__(**kwargs)
        if int(c_dim) < 1:
            raise ValueError(f"c_dim must be >= 1; got {c_dim}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
        self.c_dim = int(c_dim)
        self.activation = activation
        width = 4 * self.c_dim if activation == "glu" else 2 * self.c_dim
        self.fc = layers.Dense(width, kernel_initializer=keras.initializers.RandomNormal(0.0, 0.02), name="fc")

    def build(self, input_shape):
        self.fc.build(input_shape)

    def call(self, embedding, noise=None, training=None):
        x = self.fc(embedding)
        x = glu(x) if self.activation == "glu" else tf.nn.relu(x)
        mu, logvar = x[:, : self.c_dim], x[:, self.c_dim :]
        if noise is None:
            return mu, mu, logvar
        noise = tf.cast(noise, mu.dtype)
        if noise.shape.rank is not None and noise.shape[-1] is not None and noise.shape[-1] != self.c_dim:
            raise ValueError(f"ConditioningAugmentation noise must be [N, {self.c_dim}]; got shape {noise.shape}")
        c = mu + tf.exp(0.5 * logvar) * noise
        return c, mu, logvar

    def compute_output_shape(self, input_shape):
        shape = (input_shape[0], self.c_dim)
        return shape, shape, shape

    def get_config(self):
        return {**super().get_config(), "c_dim": self.c_dim, "activation": self.activation}
