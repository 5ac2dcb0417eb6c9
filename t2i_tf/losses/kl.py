"""The KL regulariser of conditioning augmentation (StackGAN, Zhang et al. 2017)."""

from __future__ import annotations

import tensorflow as tf


def kl_divergence(mu: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """Per-example KL(N(mu, diag(exp(logvar))) || N(0, I)) [N], averaged (not summed) over the c_dim dims.

    ``-0.5 * mean_d(1 + logvar - mu^2 - exp(logvar))``, as hanzhanggit/StackGAN-Pytorch's ``KL_loss``
    computes it. That reference takes one mean over batch and dims together; the mean over the batch
    of these per-example values is the same number, so reducing them with
    ``tf.nn.compute_average_loss`` reproduces it (the reference weights it by TRAIN.COEFF.KL = 2).
    The exact KL is this value times c_dim.
    """
    mu = tf.cast(mu, tf.float32)
    logvar = tf.cast(logvar, tf.float32)
    return -0.5 * tf.reduce_mean(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=-1)
