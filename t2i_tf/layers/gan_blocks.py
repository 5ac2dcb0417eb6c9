"""Convolutional building blocks shared by the multi-stage GANs (StackGAN++ / AttnGAN family).

- :class:`GLU`: gated linear unit over channels, ``a * sigmoid(b)`` for the two channel halves
  ``[a, b]`` of the input (AttnGAN's ``GLU``); halves the channel count.
- :class:`UpBlock`: nearest-neighbour x2 upsampling -> 3x3 conv to ``2 * out_channels`` (no bias) ->
  BatchNorm -> GLU, giving ``out_channels`` (AttnGAN's ``upBlock``).
- :class:`ResidualBlock`: 3x3 conv to 2C -> BN -> GLU -> 3x3 conv to C -> BN, plus the input, with no
  activation after the sum (AttnGAN's ``ResBlock``).
- :func:`maybe_spectral_norm`: wraps a layer in ``keras.layers.SpectralNormalization`` when asked.

Conventions (as :mod:`t2i_tf.models.gan_cls`): conv kernels N(0, 0.02) (the AttnGAN reference itself
initialises convs orthogonally), BatchNormalization synchronised across replicas with momentum 0.9
(PyTorch's 0.1), epsilon 1e-5 and scale N(1, 0.02).

Notes on ``keras.layers.SpectralNormalization`` (Keras 3): it does not re-parameterise the kernel as
``W / sigma(W)`` on the fly (PyTorch style). In a ``training=True`` call it runs ``power_iterations``
steps of power iteration from a persistent ``vector_u`` and *assigns* ``W / sigma`` back into the
wrapped layer's kernel variable, so the stored kernel is the normalised one and no gradient flows
through sigma; a ``training=False`` call uses the kernel as last stored (a fresh, never-trained layer
is therefore not normalised yet). One iteration per call from a random ``u`` under-estimates sigma
(on a random 3x3 conv the first call leaves a spectral norm of about 1.2), so the norm approaches 1
over the first few training calls. The update depends only on the (mirrored) kernel and ``u``, so
under ``MirroredStrategy`` every replica computes the same assignment and the copies stay equal (checked
with a G + D step on two logical CPUs inside ``tf.function``); it also compiles with ``jit_compile=True``.
An optimizer step after the forward pass moves the stored kernel off norm 1 again until the next
training call, and a discriminator run twice per step (real, fake) normalises twice (harmless: the
second estimate is ~1).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


def conv_init() -> keras.initializers.Initializer:
    """DCGAN initialiser for conv / dense kernels: N(0, 0.02)."""
    return keras.initializers.RandomNormal(0.0, 0.02)


def batch_norm(name: str | None = None, sync: bool = True) -> layers.BatchNormalization:
    """DCGAN-style BatchNormalization: momentum 0.9, eps 1e-5, scale N(1, 0.02), synchronised across replicas."""
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=sync,
                                     gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02), name=name)


def maybe_spectral_norm(layer: layers.Layer, enabled: bool, power_iterations: int = 1) -> layers.Layer:
    """``layer`` wrapped in ``keras.layers.SpectralNormalization`` when ``enabled``, else ``layer`` unchanged.

    The wrapper is named ``<layer name>_sn``. Its kernel is normalised only in ``training=True`` calls
    (see the module docstring).
    """
    if not enabled:
        return layer
    return layers.SpectralNormalization(layer, power_iterations=power_iterations, name=f"{layer.name}_sn")


def conv3x3(filters: int, name: str, spectral_norm: bool = False, use_bias: bool = False) -> layers.Layer:
    """3x3 stride-1 'same' conv, N(0, 0.02) kernel, no bias by default (a BatchNorm usually follows)."""
    conv = layers.Conv2D(filters, 3, padding="same", use_bias=use_bias, kernel_initializer=conv_init(), name=name)
    return maybe_spectral_norm(conv, spectral_norm)


class GLU(layers.Layer):
    """Gated linear unit over the last axis: ``[a, b] -> a * sigmoid(b)``; [..., 2C] -> [..., C]."""

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and channels % 2:
            raise ValueError(f"GLU needs an even number of channels; got {channels}")
        self.built = True

    def call(self, inputs, training=None):
        a, b = tf.split(inputs, 2, axis=-1)
        return a * tf.sigmoid(b)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], None if input_shape[-1] is None else input_shape[-1] // 2)


class UpBlock(layers.Layer):
    """[N, H, W, C] -> [N, 2H, 2W, out_channels]: nearest x2 upsample, 3x3 conv (2 out, no bias), BN, GLU."""

    def __init__(self, out_channels: int, spectral_norm: bool = False, sync_bn: bool = True, **kwargs):
        super().__init__(**kwargs)
        if out_channels < 1:
            raise ValueError(f"UpBlock out_channels must be >= 1; got {out_channels}")
        self.out_channels = int(out_channels)
        self.spectral_norm = bool(spectral_norm)
        self.upsample = layers.UpSampling2D(2, interpolation="nearest", name="upsample")
        self.conv = conv3x3(2 * self.out_channels, "conv", spectral_norm)
        self.bn = batch_norm("bn", sync_bn)
        self.glu = GLU(name="glu")

    def build(self, input_shape):
        n, h, w, c = input_shape
        up = (n, None if h is None else 2 * h, None if w is None else 2 * w, c)
        self.conv.build(up)
        self.bn.build((*up[:-1], 2 * self.out_channels))
        self.glu.build((*up[:-1], 2 * self.out_channels))

    def call(self, inputs, training=None):
        x = self.conv(self.upsample(inputs), training=training)
        return self.glu(self.bn(x, training=training))

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels, "spectral_norm": self.spectral_norm}


class ResidualBlock(layers.Layer):
    """[N, H, W, C] -> [N, H, W, C]: x + BN(conv3x3_C(GLU(BN(conv3x3_2C(x))))) (AttnGAN's ResBlock)."""

    def __init__(self, channels: int, spectral_norm: bool = False, sync_bn: bool = True, **kwargs):
        super().__init__(**kwargs)
        if channels < 1:
            raise ValueError(f"ResidualBlock channels must be >= 1; got {channels}")
        self.channels = int(channels)
        self.spectral_norm = bool(spectral_norm)
        self.conv1 = conv3x3(2 * self.channels, "conv1", spectral_norm)
        self.bn1 = batch_norm("bn1", sync_bn)
        self.glu = GLU(name="glu")
        self.conv2 = conv3x3(self.channels, "conv2", spectral_norm)
        self.bn2 = batch_norm("bn2", sync_bn)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.channels:
            raise ValueError(f"ResidualBlock({self.channels}) got an input with {input_shape[-1]} channels")
        double = (*input_shape[:-1], 2 * self.channels)
        self.conv1.build(input_shape)
        self.bn1.build(double)
        self.glu.build(double)
        self.conv2.build(input_shape)
        self.bn2.build(input_shape)

    def call(self, inputs, training=None):
        x = self.glu(self.bn1(self.conv1(inputs, training=training), training=training))
        x = self.bn2(self.conv2(x, training=training), training=training)
        return inputs + x

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "spectral_norm": self.spectral_norm}
