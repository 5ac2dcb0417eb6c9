"""StackGAN (Zhang et al., ICCV 2017; "StackGAN-v1") as Keras subclassed models.

Two GANs in sequence, each conditioned through its own :class:`ConditioningAugmentation` (CA):

- :class:`StageIGenerator`: CA(text) -> c, concatenated with z -> Dense to 4x4x(8 ngf) + BN + ReLU ->
  up-blocks (nearest x2, 3x3 conv, BN, ReLU) halving the channels -> 3x3 conv to RGB, tanh.
- :class:`StageIDiscriminator`: 4x4 stride-2 convs (LeakyReLU 0.2, BN from the second one) down to a
  4x4 image code; the condition vector tiled 4x4 and concatenated, 3x3 conv + BN + LeakyReLU, a 4x4
  valid conv to one raw logit per image.
- :class:`StageIIGenerator`: a Stage-I image -> encoder (3x3 conv ngf + ReLU, two 4x4 stride-2 convs
  to 4 ngf at a quarter of the size) -> concatenated with its own CA's c tiled -> 3x3 conv 4 ngf ->
  ``num_residual`` residual blocks -> up-blocks to the output size -> 3x3 conv to RGB, tanh. With
  ``residual=True`` (not StackGAN's) the conv's output is added before the tanh to atanh of the bilinearly
  up-sampled Stage-I image, so Stage-II draws a correction of Stage-I's picture: a zero correction returns it.
- :class:`StageIIDiscriminator`: as Stage I with more stride-2 convs (channels up to 32 ndf), 3x3
  convs back down to 8 ndf, and a second, unconditional logit from the image code alone.

Discriminators return raw logits (the losses apply sigmoid cross-entropy), the generators
``(images, mu, logvar)``; ``mu, logvar`` feed :func:`t2i_tf.losses.kl.kl_divergence`. The CA noise is
an input drawn by the caller (None gives ``c = mu``). Stage-II does not stop gradients into its input:
the task passes Stage-I images from a frozen Stage-I generator (as the reference does).

Reference sizes (hanzhanggit/StackGAN-Pytorch, ``code/miscc/config.py``): Stage-I 64 px, Stage-II
256 px, c_dim (GAN.CONDITION_DIM) 128, z 100, ngf (GAN.GF_DIM) 128, ndf (GAN.DF_DIM) 64, 4 residual
blocks (GAN.R_NUM; its ``coco_s2.yml`` uses 2 with ngf 192, ndf 96), text embedding 1024.

Other sizes: every size is 4 * 2^k and at least 16 (:func:`check_stage_sizes`); Stage II's is the
Stage-I size times 2^m, m >= 1. Channel rules, which give the reference widths at 64 and 256 px:

- Stage-I G: up-block k (k = 0, 1, ...) has ``8 ngf / 2^(k+1)`` channels, never fewer than ngf / 2
  (64 px: 4 ngf, 2 ngf, ngf, ngf / 2).
- Stage-II G: up-block j has ``4 ngf / 2^(j+1)`` channels, never fewer than ngf / 4
  (64 -> 256 px: 2 ngf, ngf, ngf / 2, ngf / 4 from 16x16 up).
- Discriminators: conv i of the log2(S / 4) stride-2 convs has ``ndf * min(2^i, cap)`` channels
  (cap 8 for Stage I, 32 for Stage II); Stage II then halves with 3x3 convs until 8 ndf. Below
  64 px the image code has fewer than 8 ndf channels, and the joint 3x3 conv keeps that width.

All conv and dense kernels are initialised N(0, 0.02) and BN scales N(1, 0.02) (the reference's
``weights_init``, code/miscc/utils.py:82-92); biases start at 0 (the reference zeroes its Linear biases but
leaves the D logit convs' biases, the only conv biases, at PyTorch's default U(+-1/sqrt(fan_in))).
BatchNormalization (:class:`SyncBatchNorm`) is synchronised across replicas, momentum 0.9 (torch 0.1), epsilon
1e-5, with a two-pass batch variance as torch's; its moving variance takes the biased batch variance where torch
stores the unbiased one (a factor n / (n - 1): 64 / 63 for Stage-I's fc BatchNorm1d at batch 64, under 0.1% for
the conv layers). Convs followed by BN have no bias, as in the reference (its 3x3 convs are all bias-free).

The layers map one to one onto hanzhanggit/StackGAN-Pytorch's STAGE1_G / STAGE1_D / STAGE2_G / STAGE2_D
(:mod:`t2i_tf.import_torch.stackgan` loads its checkpoints; tests/import_torch/test_stackgan.py checks the
outputs against the official code's to 1e-4).
"""

from __future__ import annotations

import math
import operator

import keras
import tensorflow as tf
from keras import layers

from t2i_tf.layers.batch_norm import SyncBatchNorm
from t2i_tf.layers.conditioning import ConditioningAugmentation


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def _bn(name: str) -> layers.Layer:
    return SyncBatchNorm(momentum=0.9, epsilon=1e-5, synchronized=True,
                         gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02), name=name)


def _as_int(value) -> int | None:
    """``value`` as an int if it is an integer type (not bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _log2_steps(size, what: str) -> int:
    """k for ``size = 4 * 2^k`` with k >= 2 (size >= 16), else a ValueError naming ``what``."""
    n = _as_int(size)
    if n is None or n < 16 or n & (n - 1):  # n & (n - 1) == 0 for powers of two; 16 and up are 4 * 2^k
        raise ValueError(f"{what} must be 4 * 2^k and at least 16 (16, 32, 64, 128, 256, ...); got {size!r}")
    return n.bit_length() - 3


def check_stage_sizes(stage1_size: int, stage2_size: int | None = None) -> None:
    """Raise a ValueError unless ``stage1_size`` is 4 * 2^k >= 16 and ``stage2_size`` (if given) is
    ``stage1_size * 2^m`` with m >= 1."""
    _log2_steps(stage1_size, "stage1_size")
    if stage2_size is None:
        return
    s1, s2 = int(stage1_size), _as_int(stage2_size)
    if s2 is None or s2 <= s1 or s2 % s1 or (s2 // s1) & (s2 // s1 - 1):
        raise ValueError(f"stage2_size must be stage1_size * 2^m with m >= 1 ({2 * s1}, {4 * s1}, ... for "
                         f"stage1_size={s1}); got {stage2_size!r}")


def _check_image(x: tf.Tensor, size: int, what: str) -> None:
    shape = x.shape
    if shape.rank is not None and (shape.rank != 4 or any(d is not None and d != e
                                                          for d, e in zip(shape[1:], (size, size, 3)))):
        raise ValueError(f"{what} must be [N, {size}, {size}, 3]; got shape {tuple(shape)}")


def _unpack_generator_inputs(inputs, what: str, names: str):
    """``(a, b)`` or ``(a, b, ca_noise)`` -> (a, b, ca_noise or None)."""
    if not isinstance(inputs, (tuple, list)) or len(inputs) not in (2, 3):
        raise ValueError(f"{what} takes a tuple ({names}, ca_noise or None)")
    noise = inputs[2] if len(inputs) == 3 else None
    return inputs[0], inputs[1], noise


class ConvBlock(layers.Layer):
    """One conv step of the StackGAN networks: [nearest x2 upsample] -> conv -> [BN] -> [ReLU | LeakyReLU 0.2].

    ``kernel_size=4, strides=2`` is the stride-2 down-sampling conv; ``upsample=True`` with a 3x3 conv
    is the reference's ``upBlock``. The conv has no bias, as every such conv in the reference.
    """

    def __init__(self, filters: int, kernel_size: int = 3, strides: int = 1, norm: bool = True,
                 activation: str | None = "relu", upsample: bool = False, **kwargs):
        super().__init__(**kwargs)
        if activation not in ("relu", "leaky_relu", None):
            raise ValueError(f"activation must be 'relu', 'leaky_relu' or None; got {activation!r}")
        self.activation = activation
        self.upsample = layers.UpSampling2D(2, interpolation="nearest", name="upsample") if upsample else None
        self.conv = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                                  kernel_initializer=_init(), name="conv")
        self.norm = _bn("bn") if norm else None

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.upsample is not None:
            shape = (shape[0], *(None if d is None else 2 * d for d in shape[1:3]), shape[3])
        self.conv.build(shape)
        if self.norm is not None:
            self.norm.build(self.conv.compute_output_shape(shape))

    def call(self, x, training=None):
        if self.upsample is not None:
            x = self.upsample(x)
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x, training=training)
        if self.activation == "relu":
            x = tf.nn.relu(x)
        elif self.activation == "leaky_relu":
            x = tf.nn.leaky_relu(x, alpha=0.2)
        return x


class ResidualBlock(layers.Layer):
    """Stage-II residual block: ReLU(x + BN(conv3x3(ReLU(BN(conv3x3(x)))))), channels unchanged."""

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.block1 = ConvBlock(filters, 3, activation="relu", name="block1")
        self.block2 = ConvBlock(filters, 3, activation=None, name="block2")

    def build(self, input_shape):
        self.block1.build(input_shape)
        self.block2.build(input_shape)

    def call(self, x, training=None):
        h = self.block2(self.block1(x, training=training), training=training)
        return tf.nn.relu(x + h)


class StageIGenerator(keras.Model):
    """``(z [N, z_dim], embedding [N, E], ca_noise [N, c_dim] or None)`` ->
    ``(images [N, S, S, 3] in [-1, 1], mu [N, c_dim], logvar [N, c_dim])``.

    ``ngf`` is the reference GF_DIM: the 4x4 map has 8 ngf channels. ``ca_activation`` picks the CA
    net (see :class:`ConditioningAugmentation`).
    """

    def __init__(self, image_size: int = 64, ngf: int = 128, z_dim: int = 100, c_dim: int = 128,
                 ca_activation: str = "glu", **kwargs):
        super().__init__(**kwargs)
        steps = _log2_steps(image_size, "StageIGenerator image_size")
        self.image_size, self.ngf, self.z_dim, self.c_dim = int(image_size), int(ngf), int(z_dim), int(c_dim)
        self.ca = ConditioningAugmentation(c_dim, activation=ca_activation, name="ca")
        self.fc = layers.Dense(4 * 4 * 8 * ngf, use_bias=False, kernel_initializer=_init(), name="fc")
        self.fc_bn = _bn("fc_bn")  # over the flat 4*4*8ngf vector, as the reference's BatchNorm1d
        # Layers are attributes, not a list, so tf.train.Checkpoint tracks them.
        self.num_ups = steps
        floor = max(ngf // 2, 1)
        for k in range(steps):
            setattr(self, f"up{k}", ConvBlock(max(8 * ngf // 2 ** (k + 1), floor), 3, upsample=True, name=f"up{k}"))
        self.to_rgb = layers.Conv2D(3, 3, padding="same", use_bias=False, kernel_initializer=_init(), name="to_rgb")

    def call(self, inputs, training=None):
        z, embedding, noise = _unpack_generator_inputs(inputs, "StageIGenerator", "z, embedding")
        c, mu, logvar = self.ca(embedding, noise=noise, training=training)
        x = tf.concat([tf.cast(z, c.dtype), c], axis=-1)
        x = tf.nn.relu(self.fc_bn(self.fc(x), training=training))
        x = tf.reshape(x, [-1, 4, 4, 8 * self.ngf])
        for k in range(self.num_ups):
            x = getattr(self, f"up{k}")(x, training=training)
        return tf.tanh(self.to_rgb(x)), mu, logvar


class _StackDiscriminator(keras.Model):
    """Shared body of the StackGAN discriminators (see the module docstring for the channel rule)."""

    def __init__(self, image_size: int, ndf: int, c_dim: int, cap: int, uncond: bool, what: str, **kwargs):
        super().__init__(**kwargs)
        steps = _log2_steps(image_size, f"{what} image_size")
        self.image_size, self.c_dim, self.what = int(image_size), int(c_dim), what
        self.num_downs = steps
        for i in range(steps):
            setattr(self, f"down{i}", ConvBlock(ndf * min(2**i, cap), 4, strides=2, norm=(i > 0),
                                                activation="leaky_relu", name=f"down{i}"))
        channels = ndf * min(2 ** (steps - 1), cap)
        self.num_reduce = 0
        while channels > 8 * ndf:
            channels //= 2
            setattr(self, f"reduce{self.num_reduce}", ConvBlock(channels, 3, activation="leaky_relu",
                                                                name=f"reduce{self.num_reduce}"))
            self.num_reduce += 1
        self.code_channels = channels
        self.joint = ConvBlock(channels, 3, activation="leaky_relu", name="joint")
        self.cond_logit = layers.Conv2D(1, 4, padding="valid", kernel_initializer=_init(), name="cond_logit")
        self.uncond_logit = (layers.Conv2D(1, 4, padding="valid", kernel_initializer=_init(), name="uncond_logit")
                             if uncond else None)

    def encode(self, images: tf.Tensor, training=None) -> tf.Tensor:
        """The image code [N, 4, 4, C] (the reference's ``netD(image)``, code/model.py:185-188)."""
        _check_image(images, self.image_size, f"{self.what} images")
        x = images
        for i in range(self.num_downs):
            x = getattr(self, f"down{i}")(x, training=training)
        for i in range(self.num_reduce):
            x = getattr(self, f"reduce{i}")(x, training=training)
        return x

    def cond_logits(self, features: tf.Tensor, condition: tf.Tensor, training=None) -> tf.Tensor:
        """Raw conditional logits [N] of image codes and conditions (the reference's ``get_cond_logits``)."""
        if condition.shape[-1] is not None and condition.shape[-1] != self.c_dim:
            raise ValueError(f"{self.what} condition must be [N, {self.c_dim}]; got shape {tuple(condition.shape)}")
        c = tf.tile(tf.cast(condition, features.dtype)[:, None, None, :], [1, 4, 4, 1])
        h = self.joint(tf.concat([features, c], axis=-1), training=training)
        return tf.reshape(self.cond_logit(h), [-1])

    def uncond_logits(self, features: tf.Tensor) -> tf.Tensor:
        """Raw unconditional logits [N] of image codes (Stage II only; the reference's ``get_uncond_logits``)."""
        return tf.reshape(self.uncond_logit(features), [-1])

    def call(self, inputs, training=None):
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise ValueError(f"{self.what} takes a tuple (images, condition)")
        images, condition = inputs
        features = self.encode(images, training=training)
        out = {"cond": self.cond_logits(features, condition, training=training), "features": features}
        if self.uncond_logit is not None:
            out["uncond"] = self.uncond_logits(features)
        return out


class StageIDiscriminator(_StackDiscriminator):
    """``(images [N, S, S, 3], condition [N, c_dim])`` -> ``{"cond": [N] raw logits,
    "features": [N, 4, 4, C] image code}`` (C = 8 ndf from 64 px up)."""

    def __init__(self, image_size: int = 64, ndf: int = 64, c_dim: int = 128, **kwargs):
        super().__init__(image_size, ndf, c_dim, cap=8, uncond=False, what="StageIDiscriminator", **kwargs)


class StageIIDiscriminator(_StackDiscriminator):
    """``(images [N, S, S, 3], condition [N, c_dim])`` -> ``{"cond": [N], "uncond": [N] raw logits,
    "features": [N, 4, 4, C] image code}``; ``uncond`` does not see the condition."""

    def __init__(self, image_size: int = 256, ndf: int = 64, c_dim: int = 128, **kwargs):
        super().__init__(image_size, ndf, c_dim, cap=32, uncond=True, what="StageIIDiscriminator", **kwargs)


class StageIIGenerator(keras.Model):
    """``(stage1_images [N, s1, s1, 3], embedding [N, E], ca_noise [N, c_dim] or None)`` ->
    ``(images [N, S, S, 3] in [-1, 1], mu, logvar)``, S = ``image_size``, s1 = ``stage1_size``."""

    def __init__(self, stage1_size: int = 64, image_size: int = 256, ngf: int = 128, c_dim: int = 128,
                 num_residual: int = 4, ca_activation: str = "glu", residual: bool = False, **kwargs):
        super().__init__(**kwargs)
        check_stage_sizes(stage1_size, image_size)
        self.residual = bool(residual)
        if int(num_residual) < 0:
            raise ValueError(f"num_residual must be >= 0; got {num_residual}")
        self.stage1_size, self.image_size, self.ngf, self.c_dim = int(stage1_size), int(image_size), int(ngf), int(c_dim)
        self.ca = ConditioningAugmentation(c_dim, activation=ca_activation, name="ca")
        self.enc0 = ConvBlock(ngf, 3, norm=False, name="enc0")
        self.enc1 = ConvBlock(2 * ngf, 4, strides=2, name="enc1")
        self.enc2 = ConvBlock(4 * ngf, 4, strides=2, name="enc2")
        self.joint = ConvBlock(4 * ngf, 3, name="joint")
        self.num_residual = int(num_residual)
        for r in range(self.num_residual):
            setattr(self, f"res{r}", ResidualBlock(4 * ngf, name=f"res{r}"))
        self.num_ups = int(round(math.log2(image_size / (stage1_size // 4))))
        floor = max(ngf // 4, 1)
        for j in range(self.num_ups):
            setattr(self, f"up{j}", ConvBlock(max(4 * ngf // 2 ** (j + 1), floor), 3, upsample=True, name=f"up{j}"))
        self.to_rgb = layers.Conv2D(3, 3, padding="same", use_bias=False, kernel_initializer=_init(), name="to_rgb")

    def call(self, inputs, training=None):
        images, embedding, noise = _unpack_generator_inputs(inputs, "StageIIGenerator", "stage1_images, embedding")
        _check_image(images, self.stage1_size, "StageIIGenerator stage1_images")
        c, mu, logvar = self.ca(embedding, noise=noise, training=training)
        x = self.enc0(images, training=training)
        x = self.enc1(x, training=training)
        x = self.enc2(x, training=training)
        side = self.stage1_size // 4
        x = tf.concat([x, tf.tile(tf.cast(c, x.dtype)[:, None, None, :], [1, side, side, 1])], axis=-1)
        x = self.joint(x, training=training)
        for r in range(self.num_residual):
            x = getattr(self, f"res{r}")(x, training=training)
        for j in range(self.num_ups):
            x = getattr(self, f"up{j}")(x, training=training)
        out = self.to_rgb(x)
        if self.residual:
            out = out + stage1_logits(images, self.image_size, out.dtype)
        return tf.tanh(out), mu, logvar


# atanh's argument is clipped here, so a saturated Stage-I pixel (tanh = +-1 in float32) stays finite:
# atanh(0.999) = 3.8.
_ATANH_CLIP = 0.999


def stage1_logits(images: tf.Tensor, size: int, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """atanh of ``images`` (in [-1, 1]) bilinearly resized to ``size``, clipped to +-atanh(0.999): the pre-tanh
    values that give the up-sampled Stage-I image back (Stage-II's ``residual`` option)."""
    up = tf.image.resize(tf.cast(images, tf.float32), [size, size], method="bilinear")
    return tf.cast(tf.atanh(tf.clip_by_value(up, -_ATANH_CLIP, _ATANH_CLIP)), dtype)
