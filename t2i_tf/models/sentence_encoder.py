"""A small project sentence encoder for text-to-image GANs when a dataset has no precomputed embeddings.

- :class:`SentenceEncoder`: token ids (``t2i_tf.data.text.Tokenizer``) -> word embeddings -> BiLSTM ->
  mean over the real (non-padding) tokens -> linear -> sentence vector.
- :class:`ImageEncoder`: a small strided CNN -> global average pool -> linear, the image side of the
  matching objective.
- :func:`matching_loss`: a symmetric in-batch softmax over scaled cosine similarities (DAMSM's sentence
  loss, Xu et al. 2018, with gamma3 = 10; the symmetric image<->text form of DS-SJE, Reed et al. 2016),
  so that a caption's vector is closest to its own image's vector among the batch.

Reed et al. pre-train their char-CNN-RNN encoder and freeze it; here the encoder is trained by the
matching loss alone, alongside the GAN (the GAN sees its features through ``stop_gradient``).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from t2i_tf.losses.damsm import sentence_loss


class SentenceEncoder(keras.Model):
    """Token ids [N, T] (0 = padding) -> sentence vectors [N, out_dim]."""

    def __init__(self, vocab_size: int, embed_dim: int = 128, hidden_dim: int = 128, out_dim: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.out_dim = int(out_dim)
        self.embedding = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")
        self.bilstm = layers.Bidirectional(layers.LSTM(hidden_dim, return_sequences=True), name="bilstm")
        self.fc = layers.Dense(out_dim, name="fc")

    def call(self, token_ids, training=None):
        x = self.embedding(token_ids)
        mask = token_ids != 0
        h = self.bilstm(x, mask=mask, training=training)  # [N, T, 2H]
        weights = tf.cast(mask, h.dtype)[:, :, None]
        pooled = tf.reduce_sum(h * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)
        return self.fc(pooled)


class ImageEncoder(keras.Model):
    """Images [N, S, S, 3] in [-1, 1] -> features [N, out_dim] for the matching loss."""

    def __init__(self, image_size: int = 64, width: int = 32, out_dim: int = 256, **kwargs):
        super().__init__(**kwargs)
        steps = max(int(round(math.log2(max(image_size, 8) / 4))), 1)
        self.num_convs = steps  # attributes, not a list, so tf.train.Checkpoint tracks them
        for k in range(steps):
            setattr(self, f"conv{k}", layers.Conv2D(width * min(2**k, 8), 4, strides=2, padding="same", name=f"conv{k}"))
        self.act = layers.LeakyReLU(0.2)
        self.pool = layers.GlobalAveragePooling2D()
        self.fc = layers.Dense(out_dim, name="fc")

    def call(self, images, training=None):
        x = images
        for k in range(self.num_convs):
            x = self.act(getattr(self, f"conv{k}")(x))
        return self.fc(self.pool(x))


def normalize_sentence(features: tf.Tensor) -> tf.Tensor:
    """The conditioning the GAN sees: the sentence vector L2-normalised and scaled by sqrt(dim).

    The matching loss only constrains directions; fixing the norm (components of about unit size)
    keeps the generator's input scale stable while the encoder trains.
    """
    dim = tf.cast(tf.shape(features)[-1], features.dtype)
    return tf.math.l2_normalize(features, axis=-1) * tf.sqrt(dim)


def matching_loss(text_features: tf.Tensor, image_features: tf.Tensor, gamma: float = 10.0,
                  negative_sentences: tf.Tensor | None = None, negative_valid: tf.Tensor | None = None) -> tf.Tensor:
    """Per-example symmetric in-batch softmax loss: (CE(text -> its image) + CE(image -> its text)) / 2.

    Similarities are cosines scaled by ``gamma``; candidates are the whole global batch (all-gathered
    over replicas), so the value does not depend on how the batch is split. It is half of DAMSM's sentence
    loss without class masking. ``negative_sentences`` [N, K, D] (valid where ``negative_valid``): each image's
    hard negative captions, extra candidates of its CE over captions.
    """
    return 0.5 * sentence_loss(image_features, text_features, None, gamma, negative_sentences, negative_valid)


def matching_accuracy(text_features: tf.Tensor, image_features: tf.Tensor) -> tf.Tensor:
    """Fraction of captions whose most similar image in the batch (cosine) is their own."""
    t = tf.math.l2_normalize(tf.cast(text_features, tf.float32), axis=-1)
    v = tf.math.l2_normalize(tf.cast(image_features, tf.float32), axis=-1)
    best = tf.argmax(tf.matmul(t, v, transpose_b=True), axis=1, output_type=tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(best, tf.range(tf.shape(t)[0])), tf.float32))
