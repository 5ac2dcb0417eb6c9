"""A small project sentence encoder for text-to-image GANs when a dataset has no precomputed embeddings.

- :class:`SentenceEncoder`: token ids (``t2i_tf.data.text.Tokenizer``) -> word embeddings -> BiLSTM ->
  mean over the real (non-padding) tokens -> linear -> sentence vector.
- :class:`ImageEncoder`: a small strided CNN -> global average pool -> linear, the image side of the
  matching objective.
- :func:`matching_loss`: a symmetric in-batch softmax over scaled cosine similarities (DAMSM's sentence
  loss, Xu et al. 2018, with gamma3 = 10; the symmetric image<->text form of DS-SJE, Reed et al. 2016),
  so that a caption's vector is closest to its own image's vector among the batch.

The word-slot pair (``text_encoder=word_slots``) makes the sentence vector a layout:

- :class:`WordSlotEncoder`: a BiLSTM reads the caption and routes every word (a softmax over grid x grid spatial
  slots plus a "no slot" choice) to where it is drawn; each slot is the routed sum of the words' *own* embeddings
  (not the BiLSTM states), so "red" + "circle" in one slot is additive in the words, whatever pairs training saw.
- :class:`GridImageEncoder`: a strided CNN pooled to the same grid x grid cells, one vector per cell.

Matched slot by slot (the flattened vectors' cosine), the loss can only be met by routing a phrase's words to
the cell its position words name. On captioned CSS, whose test split pairs colours and shapes never paired in
training, a linear read-out of these features recovers the held-out scenes exactly, where the mean-pooled BiLSTM's
tops out at object F1 0.53 (docs/generator_quality.md).

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


def adaptive_pool_matrix(size: int, cells: int) -> tf.Tensor:
    """[cells, size] row-stochastic matrix averaging ``size`` positions into ``cells`` overlapping bins: bin i covers
    floor(i * size / cells) .. ceil((i + 1) * size / cells) - 1, as torch's adaptive average pooling."""
    rows = []
    for i in range(cells):
        start, end = (i * size) // cells, -((-(i + 1) * size) // cells)
        rows.append([1.0 / (end - start) if start <= j < end else 0.0 for j in range(size)])
    return tf.constant(rows, tf.float32)


def pool_to_grid(features: tf.Tensor, pool: tf.Tensor) -> tf.Tensor:
    """[N, H, W, C] -> [N, g, g, C] averaged by a [g, H] :func:`adaptive_pool_matrix` (square maps, H == W)."""
    pool = tf.cast(pool, features.dtype)
    return tf.einsum("ai,bj,nijc->nabc", pool, pool, features)


class WordSlotEncoder(keras.Model):
    """Token ids [N, T] (0 = padding) -> a layout vector [N, grid * grid * (out_dim / grid^2)]: per spatial slot, the
    sum of the embeddings of the words the BiLSTM routes there."""

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_dim: int = 64, out_dim: int = 288, grid: int = 3,
                 **kwargs):
        super().__init__(**kwargs)
        slots = int(grid) ** 2
        if out_dim % slots:
            raise ValueError(f"text_dim {out_dim} must be a multiple of slot_grid^2 = {slots} (one vector per slot)")
        self.out_dim, self.slots, self.slot_dim = int(out_dim), slots, int(out_dim) // slots
        self.embedding = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")
        self.bilstm = layers.Bidirectional(layers.LSTM(hidden_dim, return_sequences=True), name="bilstm")
        self.route = layers.Dense(slots + 1, name="route")  # the last choice: no slot (function words)
        self.value = layers.Embedding(vocab_size, self.slot_dim, name="value")

    def routing(self, token_ids, training=None) -> tf.Tensor:
        """[N, T, slots]: how much of each word goes to each slot (0 for padding)."""
        mask = token_ids != 0
        h = self.bilstm(self.embedding(token_ids), mask=mask, training=training)
        weights = tf.nn.softmax(self.route(h), axis=-1)[..., :self.slots]
        return weights * tf.cast(mask, weights.dtype)[..., None]

    def call(self, token_ids, training=None):
        layout = tf.einsum("ntk,ntd->nkd", self.routing(token_ids, training), self.value(token_ids))
        return tf.reshape(layout, [-1, self.out_dim])


class GridImageEncoder(keras.Model):
    """Images [N, S, S, 3] in [-1, 1] -> per-cell features of a grid x grid layout, flattened [N, out_dim] (the image
    side of :class:`WordSlotEncoder`, cells in the same row-major order)."""

    def __init__(self, image_size: int = 64, width: int = 32, out_dim: int = 288, grid: int = 3, **kwargs):
        super().__init__(**kwargs)
        slots = int(grid) ** 2
        if out_dim % slots:
            raise ValueError(f"text_dim {out_dim} must be a multiple of slot_grid^2 = {slots} (one vector per slot)")
        if image_size < grid:
            raise ValueError(f"image_size {image_size} is smaller than the {grid} x {grid} slot grid")
        self.out_dim, self.grid, self.image_size = int(out_dim), int(grid), int(image_size)
        size, steps = int(image_size), 0
        while size // 2 >= grid and steps < 4:  # stride-2 convs while the map still covers the grid
            size, steps = (size + 1) // 2, steps + 1
        self.num_convs = steps
        for k in range(steps):
            setattr(self, f"conv{k}", layers.Conv2D(width * min(2**k, 8), 4, strides=2, padding="same", name=f"conv{k}"))
        self.act = layers.LeakyReLU(0.2)
        self.pool = adaptive_pool_matrix(size, grid)
        self.cell = layers.Conv2D(out_dim // slots, 1, name="cell")

    def call(self, images, training=None):
        x = images
        if x.shape[1] != self.image_size or x.shape[2] != self.image_size:  # e.g. Stage-II's 64 px on Stage-I's encoder
            x = tf.image.resize(x, [self.image_size, self.image_size], antialias=True)
        for k in range(self.num_convs):
            x = self.act(getattr(self, f"conv{k}")(x))
        return tf.reshape(self.cell(pool_to_grid(x, self.pool)), [-1, self.out_dim])


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
