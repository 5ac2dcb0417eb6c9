"""StackGAN Stage-I that also sees the source image: modify-by-text generation (``--model=stackgan_tirg
--source_skip``).

:class:`SourceSkipGenerator` is :class:`t2i_tf.models.stackgan.StageIGenerator` (conditioning augmentation of the
condition -> c, concatenated with z -> Dense to 4x4x(8 ngf) + BN + ReLU -> up-blocks -> 3x3 conv to RGB, tanh) with a
U-Net-style source path: a small conv encoder reads the source image at the generator's size and hands its feature
map at every decoder resolution (S, S/2, ..., 4) to the decoder, concatenated before the next block. A CSS
modification changes one object of the scene, so the source holds most of the target: the condition (TIRG's
composed feature) has to say only what changes. Blocks are StackGAN's :class:`~t2i_tf.models.stackgan.ConvBlock`:

- encoder: ``enc0`` 3x3 conv (no BN) at S, then 4x4 stride-2 convs + BN down to 4x4, LeakyReLU 0.2 throughout;
  the map at resolution r has half the decoder's channels there (never fewer than ngf / 2);
- decoder: the 4x4 code joined with the encoder's 4x4 map, up-block k (StackGAN's channel rule) then joined with
  the encoder's map at its resolution; the last join (full size) goes to the RGB conv;
- output (``composite=True``, the default): a 3x3 conv also gives a mask m = sigmoid(.) per pixel, and the image
  is ``m * tanh(rgb) + (1 - m) * source``: the generator draws where it changes the source and copies it elsewhere
  (GANimation's attention-mask composite). The mask's bias starts at -2 (m ~ 0.12): it starts near a copy.
  ``composite=False``: ``tanh(rgb)`` alone, the source reaching it only through the skips.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from t2i_tf.layers.batch_norm import SyncBatchNorm
from t2i_tf.layers.conditioning import ConditioningAugmentation
from t2i_tf.models.stackgan import ConvBlock, check_stage_sizes


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


class SourceSkipGenerator(keras.Model):
    """``(z [N, z_dim], embedding [N, E], source [N, S, S, 3] in [-1, 1], ca_noise [N, c_dim] or None)`` ->
    ``(images [N, S, S, 3] in [-1, 1], mu [N, c_dim], logvar [N, c_dim])``; S = ``image_size``.

    Its ``ca``, ``fc``, up-blocks and ``to_rgb`` are those of StageIGenerator (``ca`` also gives D its condition).
    """

    def __init__(self, image_size: int = 64, ngf: int = 128, z_dim: int = 100, c_dim: int = 128,
                 ca_activation: str = "glu", composite: bool = True, **kwargs):
        super().__init__(**kwargs)
        check_stage_sizes(image_size)
        self.composite = bool(composite)
        self.image_size, self.ngf, self.z_dim, self.c_dim = int(image_size), int(ngf), int(z_dim), int(c_dim)
        self.num_ups = (self.image_size // 4).bit_length() - 1  # 4 * 2^num_ups = S
        floor = max(ngf // 2, 1)
        dec = [8 * ngf] + [max(8 * ngf // 2 ** (k + 1), floor) for k in range(self.num_ups)]  # at 4, 8, ..., S
        self.ca = ConditioningAugmentation(c_dim, activation=ca_activation, name="ca")
        self.fc = layers.Dense(4 * 4 * 8 * ngf, use_bias=False, kernel_initializer=_init(), name="fc")
        self.fc_bn = SyncBatchNorm(momentum=0.9, epsilon=1e-5, synchronized=True,
                                   gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02), name="fc_bn")
        # enc{j}: the source at resolution S / 2^j (j = 0 .. num_ups); enc0 full size, the last 4x4.
        for j in range(self.num_ups + 1):
            width = max(dec[self.num_ups - j] // 2, floor)
            setattr(self, f"enc{j}", ConvBlock(width, 3 if j == 0 else 4, strides=1 if j == 0 else 2, norm=j > 0,
                                               activation="leaky_relu", name=f"enc{j}"))
        for k in range(self.num_ups):
            setattr(self, f"up{k}", ConvBlock(dec[k + 1], 3, upsample=True, name=f"up{k}"))
        self.to_rgb = layers.Conv2D(3, 3, padding="same", use_bias=False, kernel_initializer=_init(), name="to_rgb")
        self.to_mask = (layers.Conv2D(1, 3, padding="same", kernel_initializer=_init(),
                                      bias_initializer=keras.initializers.Constant(-2.0), name="to_mask")
                        if self.composite else None)

    def encode_source(self, source: tf.Tensor, training=None) -> list[tf.Tensor]:
        """The source's feature maps, full size first: [N, S, S, .], [N, S/2, S/2, .], ..., [N, 4, 4, .]."""
        shape = source.shape
        if shape.rank is not None and (shape.rank != 4 or any(
                d is not None and d != e for d, e in zip(shape[1:], (self.image_size, self.image_size, 3)))):
            raise ValueError(f"SourceSkipGenerator source must be [N, {self.image_size}, {self.image_size}, 3]; "
                             f"got shape {tuple(shape)}")
        maps, x = [], source
        for j in range(self.num_ups + 1):
            x = getattr(self, f"enc{j}")(x, training=training)
            maps.append(x)
        return maps

    def _decode(self, inputs, training=None):
        """(decoder's last map, source, mu, logvar)."""
        if not isinstance(inputs, (tuple, list)) or len(inputs) not in (3, 4):
            raise ValueError("SourceSkipGenerator takes a tuple (z, embedding, source, ca_noise or None)")
        z, embedding, source = inputs[:3]
        noise = inputs[3] if len(inputs) == 4 else None
        c, mu, logvar = self.ca(embedding, noise=noise, training=training)
        source = tf.cast(source, c.dtype)
        maps = self.encode_source(source, training=training)
        x = tf.concat([tf.cast(z, c.dtype), c], axis=-1)
        x = tf.nn.relu(self.fc_bn(self.fc(x), training=training))
        x = tf.concat([tf.reshape(x, [-1, 4, 4, 8 * self.ngf]), maps[-1]], axis=-1)
        for k in range(self.num_ups):
            x = getattr(self, f"up{k}")(x, training=training)
            x = tf.concat([x, maps[self.num_ups - 1 - k]], axis=-1)
        return x, source, mu, logvar

    def call(self, inputs, training=None):
        x, source, mu, logvar = self._decode(inputs, training=training)
        drawn = tf.tanh(self.to_rgb(x))
        if self.to_mask is None:
            return drawn, mu, logvar
        mask = tf.sigmoid(self.to_mask(x))
        return mask * drawn + (1.0 - mask) * source, mu, logvar

    def mask(self, inputs, training=None) -> tf.Tensor:
        """The composite's mask [N, S, S, 1] in (0, 1) for the inputs of :meth:`call`: where it draws."""
        if self.to_mask is None:
            raise ValueError("SourceSkipGenerator(composite=False) has no mask")
        return tf.sigmoid(self.to_mask(self._decode(inputs, training=training)[0]))
