"""Attention layers for the GAN generators and discriminators.

- :class:`WordAttention`: AttnGAN's word-level attention (Xu et al. 2018, eq. 2; the reference
  ``GlobalAttentionGeneral``). Words are projected to the image-feature width C by a bias-free linear
  map (the reference's 1x1 conv over the word axis), every image location scores every word by a
  dot product, padding words are masked out, a softmax over words gives the attention, and the
  context at a location is the attention-weighted sum of projected words.
- :class:`SelfAttention`: SAGAN's non-local block (Zhang et al. 2019) in the form of the official
  SAGAN TensorFlow code and BigGAN: query/key 1x1 convs to C/8, value 1x1 conv to C/2, keys and values
  max-pooled 2x2 (4x fewer keys, as both; ``pool_keys=False`` attends to every position), softmax over
  positions, a 1x1 output conv C/2 -> C, and ``x + gamma * o`` with a learned scalar ``gamma`` that
  starts at 0, so a fresh block is the identity. Convs have no bias and are optionally spectrally
  normalised. Memory: the attention matrix is [N, HW, HW/4] (HW with ``pool_keys=False``), e.g.
  4096 x 1024 per image at 64x64.
"""

from __future__ import annotations

import tensorflow as tf
from keras import layers

from t2i_tf.layers.gan_blocks import conv_init, maybe_spectral_norm


class WordAttention(layers.Layer):
    """Word-context for every image location (AttnGAN ``GlobalAttentionGeneral``).

    ``call(h [N, H, W, C], words [N, T, D], word_mask [N, T] bool or None)`` -> ``(context [N, H, W, C],
    attention [N, H, W, T])``. ``word_mask`` is True at real words and False at padding (the Keras
    convention; the PyTorch reference's mask is the opposite). With ``e = words @ W`` ([N, T, C], W
    learned, no bias): ``s[n, y, x, t] = h[n, y, x] . e[n, t]``, ``attention = softmax_t(s)`` over real
    words only — padding words get exactly 0 weight, and a caption with no real word gets all-zero
    attention and context instead of the reference's NaNs — and ``context = sum_t attention * e``.
    """

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        if channels < 1:
            raise ValueError(f"WordAttention channels must be >= 1; got {channels}")
        self.channels = int(channels)
        self.project = layers.Dense(self.channels, use_bias=False, kernel_initializer=conv_init(),
                                    name="word_projection")

    def build(self, h_shape, words_shape, word_mask_shape=None):
        self.project.build(words_shape)

    def call(self, h, words, word_mask=None, training=None):
        if h.shape.rank != 4 or words.shape.rank != 3:
            raise ValueError(f"WordAttention takes h [N, H, W, C] and words [N, T, D]; got {h.shape} and {words.shape}")
        if h.shape[-1] is not None and h.shape[-1] != self.channels:
            raise ValueError(f"WordAttention({self.channels}) got image features with {h.shape[-1]} channels")
        e = self.project(words, training=training)  # [N, T, C]
        scores = tf.einsum("nyxc,ntc->nyxt", h, e)
        if word_mask is None:
            attention = tf.nn.softmax(scores, axis=-1)
        else:
            keep = tf.cast(word_mask, tf.bool)[:, None, None, :]
            scores = tf.where(keep, scores, tf.cast(scores.dtype.min, scores.dtype))
            # exp(min - max) is already 0; the product also zeroes rows with no real word at all.
            attention = tf.nn.softmax(scores, axis=-1) * tf.cast(keep, scores.dtype)
        context = tf.einsum("nyxt,ntc->nyxc", attention, e)
        return context, attention

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


class SelfAttention(layers.Layer):
    """SAGAN self-attention over positions: [N, H, W, C] -> [N, H, W, C], the identity at init.

    ``o = conv_o(softmax(q k^T) v)`` with ``q = conv_q(x)`` ([HW, C/8]), ``k = pool(conv_k(x))``
    ([HW/4, C/8]), ``v = pool(conv_v(x))`` ([HW/4, C/2]); output ``x + gamma * o`` with gamma (a
    trainable scalar) initialised to 0. ``pool`` is a 2x2 stride-2 max pool ('same' padding) when
    ``pool_keys`` else the identity. No 1/sqrt(d) scaling, as SAGAN.
    """

    def __init__(self, spectral_norm: bool = False, pool_keys: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.spectral_norm = bool(spectral_norm)
        self.pool_keys = bool(pool_keys)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("SelfAttention needs a known channel count")
        self.channels = int(channels)
        qk, v = max(self.channels // 8, 1), max(self.channels // 2, 1)

        def conv(filters, name):
            c = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=conv_init(), name=name)
            return maybe_spectral_norm(c, self.spectral_norm)

        self.query = conv(qk, "query")
        self.key = conv(qk, "key")
        self.value = conv(v, "value")
        self.out = conv(self.channels, "out")
        spatial = (*input_shape[:-1],)
        self.query.build((*spatial, self.channels))
        self.key.build((*spatial, self.channels))
        self.value.build((*spatial, self.channels))
        self.out.build((*spatial, v))
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros", trainable=True)

    def _pool(self, x):
        return tf.nn.max_pool2d(x, 2, 2, "SAME") if self.pool_keys else x

    def call(self, inputs, training=None):
        x = inputs
        n, hgt, wid = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        q = self.query(x, training=training)
        k = self._pool(self.key(x, training=training))
        v = self._pool(self.value(x, training=training))
        q = tf.reshape(q, [n, -1, q.shape[-1]])
        k = tf.reshape(k, [n, -1, k.shape[-1]])
        v = tf.reshape(v, [n, -1, v.shape[-1]])
        beta = tf.nn.softmax(tf.matmul(q, k, transpose_b=True), axis=-1)  # [N, HW, HW']
        o = tf.reshape(tf.matmul(beta, v), [n, hgt, wid, v.shape[-1]])
        o = self.out(o, training=training)
        return x + tf.cast(self.gamma, x.dtype) * o

    def get_config(self):
        return {**super().get_config(), "spectral_norm": self.spectral_norm, "pool_keys": self.pool_keys}
