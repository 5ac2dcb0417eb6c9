"""GAN-CLS / GAN-INT conditional DCGAN (Reed et al., ICML 2016) as Keras subclassed models.

- :class:`Generator`: text vector -> Dense(proj_dim) + LeakyReLU(0.2), concatenated with z ->
  Dense to 4x4x(8 ngf) + BN + ReLU -> stride-2 4x4 transposed convs with BN + ReLU (channels halving,
  never below ngf) -> a last transposed conv to 3 channels, tanh. ``image_size`` = 4 * 2^k
  (16, 32, 64, 128, 256) sets the number of up-sampling steps k.
- :class:`Discriminator`: stride-2 4x4 convs ndf -> 2 ndf -> 4 ndf -> 8 ndf (capped at 8 ndf; LeakyReLU 0.2,
  normalisation from the second conv on) down to 4x4; the text projected to proj_dim (Dense +
  LeakyReLU) and tiled 4x4, concatenated, a 1x1 conv + norm + LeakyReLU (as reedscot/icml2016), then a
  4x4 valid conv to one raw score per image. With ``minibatch_discrimination`` the 4x4 map is
  flattened, passed through :class:`MinibatchDiscrimination` and a Dense gives the score instead.
  ``norm``: ``batch`` (DCGAN), ``layer`` (GroupNormalization(groups=1), for WGAN-GP whose
  per-example gradient penalty is wrong under batch statistics) or ``none``.

``reed_residual`` adds what reedscot/icml2016 (main_cls_int.lua:114-150, 187-206) has beyond the plain DCGAN:
in G a residual block after the 4x4 and after the 8x8 maps (1x1 conv to C/4 -> BN -> ReLU -> 3x3 -> BN -> ReLU ->
3x3 back to C -> BN, added to the not-yet-activated BN output, then ReLU); in D the two last down-sampling convs
without an activation between them, then the same block with LeakyReLU 0.2 at 4x4, and a BatchNorm on the text
projection (Linear -> BN -> LeakyReLU). Off by default in the CPU preset (measured there without it).

BatchNormalization is synchronised across replicas (``sync_bn``), so a multi-device step sees the
same batch statistics as a single-device step on the global batch.

Unconditional models (``conditional=False``, the vanilla GAN/WGAN) have no text path. Weights are
initialised as DCGAN/Reed: conv kernels N(0, 0.02), BN scales N(1, 0.02).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from t2i_tf.layers.minibatch_discrimination import MinibatchDiscrimination

NORMS = ("batch", "layer", "none")


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def num_resamplings(image_size: int) -> int:
    """How many stride-2 steps lie between 4x4 and ``image_size`` (which must be 4 * 2^k, k >= 1)."""
    k = math.log2(image_size / 4) if image_size >= 8 else -1
    if k < 1 or k != int(k):
        raise ValueError(f"image_size must be 4 * 2^k with k >= 1 (8, 16, 32, 64, 128, 256); got {image_size}")
    return int(k)


def _norm(kind: str, name: str, sync: bool = True) -> layers.Layer:
    if kind == "batch":
        return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=sync,
                                         gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02), name=name)
    if kind == "layer":
        return layers.GroupNormalization(groups=1, epsilon=1e-5, name=name)
    if kind == "none":
        return layers.Identity(name=name)
    raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {kind!r}")


class ResidualBlock(layers.Layer):
    """Reed's residual branch: x + [1x1 conv C/4, norm, act, 3x3 conv C/4, norm, act, 3x3 conv C, norm](x), then
    ``act`` (ReLU in G, LeakyReLU 0.2 in D). Convs carry a bias, as Torch's SpatialConvolution."""

    def __init__(self, channels: int, inner: int, norm: str = "batch", leaky: bool = False, sync_bn: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.leaky = leaky
        self.conv_a = layers.Conv2D(inner, 1, kernel_initializer=_init(), name="conv_a")
        self.norm_a = _norm(norm, "norm_a", sync_bn)
        self.conv_b = layers.Conv2D(inner, 3, padding="same", kernel_initializer=_init(), name="conv_b")
        self.norm_b = _norm(norm, "norm_b", sync_bn)
        self.conv_c = layers.Conv2D(channels, 3, padding="same", kernel_initializer=_init(), name="conv_c")
        self.norm_c = _norm(norm, "norm_c", sync_bn)

    def _act(self, x):
        return tf.nn.leaky_relu(x, alpha=0.2) if self.leaky else tf.nn.relu(x)

    def call(self, x, training=None):
        h = self._act(self.norm_a(self.conv_a(x), training=training))
        h = self._act(self.norm_b(self.conv_b(h), training=training))
        h = self.norm_c(self.conv_c(h), training=training)
        return self._act(x + h)


def _unpack(inputs, conditional: bool, what: str):
    """``(x, text)`` for a conditional model, ``x`` (or ``(x,)``) for an unconditional one."""
    if conditional:
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2 or inputs[1] is None:
            raise ValueError(f"a conditional {what} takes (x, text)")
        return inputs[0], inputs[1]
    if isinstance(inputs, (tuple, list)):
        return inputs[0], None
    return inputs, None


class Generator(keras.Model):
    """``(z [N, z_dim], text [N, D])`` (or ``z`` alone when unconditional) -> images [N, S, S, 3] in [-1, 1]."""

    def __init__(self, image_size: int = 64, ngf: int = 64, z_dim: int = 100, proj_dim: int = 128,
                 conditional: bool = True, sync_bn: bool = True, reed_residual: bool = False, **kwargs):
        super().__init__(**kwargs)
        steps = num_resamplings(image_size)
        self.image_size, self.ngf, self.z_dim, self.conditional = int(image_size), int(ngf), int(z_dim), conditional
        self.reed_residual = bool(reed_residual)
        if conditional:
            self.project = layers.Dense(proj_dim, kernel_initializer=_init(), name="text_projection")
        self.fc = layers.Dense(4 * 4 * ngf * 8, use_bias=False, kernel_initializer=_init(), name="fc")
        self.fc_norm = _norm("batch", "fc_bn", sync_bn)
        # Layers are attributes, not lists: tf.train.Checkpoint does not track layers in Keras-wrapped lists.
        self.num_ups = steps - 1
        for k in range(steps - 1):
            ch = max(ngf * 8 // 2 ** (k + 1), ngf)
            setattr(self, f"up{k}", layers.Conv2DTranspose(ch, 4, strides=2, padding="same", use_bias=False,
                                                           kernel_initializer=_init(), name=f"up{k}"))
            setattr(self, f"up{k}_bn", _norm("batch", f"up{k}_bn", sync_bn))
        self.to_rgb = layers.Conv2DTranspose(3, 4, strides=2, padding="same", kernel_initializer=_init(), name="to_rgb")
        if self.reed_residual:  # after the 4x4 map (8 ngf channels) and the first up-sampling (4 ngf)
            self.res0 = ResidualBlock(ngf * 8, ngf * 2, sync_bn=sync_bn, name="res0")
            if steps > 1:
                self.res1 = ResidualBlock(ngf * 4, ngf, sync_bn=sync_bn, name="res1")

    def _block(self, k: int, x, training):
        """Norm output -> activation, through Reed's residual block where there is one (k = -1: the 4x4 map)."""
        res = getattr(self, f"res{k + 1}", None) if self.reed_residual else None
        return res(x, training=training) if res is not None else tf.nn.relu(x)

    def call(self, inputs, training=None):
        z, text = _unpack(inputs, self.conditional, "Generator")
        x = z
        if self.conditional:
            t = tf.nn.leaky_relu(self.project(text), alpha=0.2)
            x = tf.concat([t, z], axis=-1)
        x = tf.reshape(self.fc(x), [-1, 4, 4, self.ngf * 8])
        x = self._block(-1, self.fc_norm(x, training=training), training)
        for k in range(self.num_ups):
            x = self._block(k, getattr(self, f"up{k}_bn")(getattr(self, f"up{k}")(x), training=training), training)
        return tf.tanh(self.to_rgb(x))


class Discriminator(keras.Model):
    """``(images [N, S, S, 3], text [N, D])`` (or images alone) -> (scores [N], 4x4 image features [N, 4, 4, C])."""

    def __init__(self, image_size: int = 64, ndf: int = 64, proj_dim: int = 128, conditional: bool = True,
                 norm: str = "batch", minibatch_discrimination: bool = False, mbd_kernels: int = 128,
                 mbd_kernel_dim: int = 16, sync_bn: bool = True, reed_residual: bool = False, **kwargs):
        super().__init__(**kwargs)
        steps = num_resamplings(image_size)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}")
        self.conditional = conditional
        self.reed_residual = bool(reed_residual)
        self.num_downs = steps
        for k in range(steps):
            ch = ndf * min(2**k, 8)
            setattr(self, f"down{k}", layers.Conv2D(ch, 4, strides=2, padding="same", use_bias=(k == 0 or norm == "none"),
                                                    kernel_initializer=_init(), name=f"down{k}"))
            if k > 0:
                setattr(self, f"down{k}_norm", _norm(norm, f"down{k}_norm", sync_bn))
        channels = ndf * min(2 ** (steps - 1), 8)
        if self.reed_residual:
            self.res = ResidualBlock(channels, max(channels // 4, 1), norm=norm, leaky=True, sync_bn=sync_bn, name="res")
        if conditional:
            self.project = layers.Dense(proj_dim, kernel_initializer=_init(), name="text_projection")
            if self.reed_residual:
                self.project_norm = _norm(norm, "text_projection_norm", sync_bn)
            self.joint = layers.Conv2D(channels, 1, use_bias=(norm == "none"), kernel_initializer=_init(), name="joint")
            self.joint_norm = _norm(norm, "joint_norm", sync_bn)
        self.mbd = None
        if minibatch_discrimination:
            self.mbd = MinibatchDiscrimination(mbd_kernels, mbd_kernel_dim, name="minibatch_discrimination")
            self.logit = layers.Dense(1, kernel_initializer=_init(), name="logit")
        else:
            self.logit = layers.Conv2D(1, 4, padding="valid", kernel_initializer=_init(), name="logit")

    def call(self, inputs, training=None):
        images, text = _unpack(inputs, self.conditional, "Discriminator")
        x = images
        for k in range(self.num_downs):
            x = getattr(self, f"down{k}")(x)
            if k > 0:
                x = getattr(self, f"down{k}_norm")(x, training=training)
            if not (self.reed_residual and k >= max(self.num_downs - 2, 1)):
                x = tf.nn.leaky_relu(x, alpha=0.2)  # Reed: no activation after the last two (the block's comes after)
        if self.reed_residual:
            x = self.res(x, training=training)
        features = x
        if self.conditional:
            t = self.project(text)
            if self.reed_residual:
                t = self.project_norm(t, training=training)
            t = tf.nn.leaky_relu(t, alpha=0.2)
            t = tf.tile(t[:, None, None, :], [1, 4, 4, 1])
            x = tf.concat([x, t], axis=-1)
            x = tf.nn.leaky_relu(self.joint_norm(self.joint(x), training=training), alpha=0.2)
        if self.mbd is not None:
            flat = tf.reshape(x, [tf.shape(x)[0], 4 * 4 * x.shape[-1]])
            scores = self.logit(self.mbd(flat))
        else:
            scores = self.logit(x)
        return tf.reshape(scores, [-1]), features
