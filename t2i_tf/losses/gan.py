"""GAN losses as per-example values (reduce them with ``tf.nn.compute_average_loss``).

Discriminator outputs are raw scores (logits for ``bce``, critic values for ``wgan``/``hinge``).

- ``bce``: the non-saturating GAN of Goodfellow et al.: D minimises
  ``-log s(D(real)) - log(1 - s(D(fake)))`` and G minimises ``-log s(D(G(z)))``; with one-sided label
  smoothing (Salimans et al. 2016) the real target is ``1 - label_smoothing`` (0.9 for 0.1) for D only.
- ``wgan``: D (the critic) minimises ``D(fake) - D(real)``, G minimises ``-D(G(z))`` (Arjovsky et al.
  2017); add weight clipping or :func:`gradient_penalty` (Gulrajani et al. 2017) to keep D Lipschitz.
- ``hinge``: D minimises ``relu(1 - D(real)) + relu(1 + D(fake))``, G minimises ``-D(G(z))``.

The matching-aware (GAN-CLS, Reed et al. 2016) discriminator loss treats a real image with a
mismatched text as a third, "fake" input: ``real/right + (wrong/right + fake/right) / 2``; without
CLS it is ``real/right + fake/right``.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

LOSS_TYPES = ("bce", "wgan", "hinge")


def _check(loss_type: str) -> None:
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}; got {loss_type!r}")


def _flat(scores: tf.Tensor) -> tf.Tensor:
    """Scores [N] or [N, 1] -> [N] float32."""
    scores = tf.cast(scores, tf.float32)
    return tf.reshape(scores, [tf.shape(scores)[0]])


def d_real_loss(scores: tf.Tensor, loss_type: str = "bce", label_smoothing: float = 0.0) -> tf.Tensor:
    """Per-example discriminator loss on inputs it should call real (real image, matching text)."""
    _check(loss_type)
    x = _flat(scores)
    if loss_type == "bce":
        target = tf.fill(tf.shape(x), 1.0 - float(label_smoothing))
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=x)
    if loss_type == "wgan":
        return -x
    return tf.nn.relu(1.0 - x)


def d_fake_loss(scores: tf.Tensor, loss_type: str = "bce") -> tf.Tensor:
    """Per-example discriminator loss on inputs it should call fake (generated, or a mismatched pair)."""
    _check(loss_type)
    x = _flat(scores)
    if loss_type == "bce":
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(x), logits=x)
    if loss_type == "wgan":
        return x
    return tf.nn.relu(1.0 + x)


def generator_loss(scores: tf.Tensor, loss_type: str = "bce") -> tf.Tensor:
    """Per-example generator loss on D's scores of generated images (non-saturating for ``bce``)."""
    _check(loss_type)
    x = _flat(scores)
    if loss_type == "bce":
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(x), logits=x)
    return -x


def discriminator_loss(real: tf.Tensor, fake: tf.Tensor, wrong: tf.Tensor | None = None, loss_type: str = "bce",
                       label_smoothing: float = 0.0) -> tf.Tensor:
    """Per-example D loss: ``real + fake``, or with ``wrong`` (GAN-CLS) ``real + (wrong + fake) / 2``."""
    loss_real = d_real_loss(real, loss_type, label_smoothing)
    loss_fake = d_fake_loss(fake, loss_type)
    if wrong is None:
        return loss_real + loss_fake
    return loss_real + 0.5 * (d_fake_loss(wrong, loss_type) + loss_fake)


def gradient_penalty(critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor,
                     eps: tf.Tensor, weight: float = 10.0) -> tf.Tensor:
    """Per-example WGAN-GP penalty ``weight * (||grad_x critic(x)||_2 - 1)^2`` at ``x = eps*real + (1-eps)*fake``.

    ``eps`` [N] is drawn uniformly in [0, 1] by the caller (one per example); ``critic`` maps images
    [N, ...] to scores [N] (close over the text for a conditional critic). Differentiable, so it can be
    minimised inside the critic's tape.
    """
    eps = tf.reshape(tf.cast(eps, real.dtype), [-1] + [1] * (len(real.shape) - 1))
    x = eps * real + (1.0 - eps) * tf.stop_gradient(fake)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(_flat(critic(x)))  # per-example scores: d total / d x_i = d score_i / d x_i
    grads = tape.gradient(total, x)
    norm = tf.sqrt(tf.reduce_sum(tf.square(tf.reshape(grads, [tf.shape(grads)[0], -1])), axis=1) + 1e-12)
    return weight * tf.square(norm - 1.0)


def interpolate_embeddings(embeddings: tf.Tensor, beta: float = 0.5) -> tf.Tensor:
    """GAN-INT conditioning: ``beta * t1 + (1 - beta) * t2`` with t2 = the batch rolled by one."""
    return beta * embeddings + (1.0 - beta) * tf.roll(embeddings, shift=1, axis=0)


def l1_loss(fake: tf.Tensor, real: tf.Tensor) -> tf.Tensor:
    """Per-example mean absolute difference between a generated image and its real image."""
    diff = tf.abs(tf.cast(fake, tf.float32) - tf.cast(real, tf.float32))
    return tf.reduce_mean(tf.reshape(diff, [tf.shape(diff)[0], -1]), axis=1)


def feature_matching_loss(real_features: tf.Tensor, fake_features: tf.Tensor, global_batch_size: int) -> tf.Tensor:
    """Mean squared difference between the GLOBAL batch means of D's features on real and on fake images.

    (Salimans et al. 2016; real features are not differentiated.) Under a strategy the batch means are
    all-reduced over replicas, so every replica returns the same global value L; add ``L /
    num_replicas_in_sync`` to each replica's loss and the summed gradients are those of L.
    """
    def global_mean(f: tf.Tensor) -> tf.Tensor:
        f = tf.reshape(tf.cast(f, tf.float32), [tf.shape(f)[0], -1])
        local = tf.reduce_sum(f, axis=0) / float(global_batch_size)
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            local = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)
        return local

    return tf.reduce_mean(tf.square(global_mean(fake_features) - tf.stop_gradient(global_mean(real_features))))
