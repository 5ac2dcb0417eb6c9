"""GeNeVA-GAN (El-Nouby et al., ICCV 2019): a recurrent generator that edits a canvas turn by turn, and its
projection discriminator conditioned on the instruction and the previous image.

At turn t the instruction is encoded (word embeddings -> bidirectional GRU -> layer norm -> linear projection ->
batch norm), a GRU over the turns updates its state with it, and the layer-normalised output ``h_t`` conditions
the generator: conditioning augmentation of ``h_t`` plus noise -> 4 x 4 -> residual up blocks with batch norm
conditioned on ``h_t``; the previous image's feature map (a small conv encoder) is concatenated where the generator
reaches its size. The discriminator runs residual down blocks on the image and on the previous image (shared
weights), subtracts the previous image's features after ``d_fusion_block`` blocks, and scores
``linear(phi) + <proj(h_t), phi>`` on the sum-pooled features, with an auxiliary multi-label object detector.
Architecture after Maluuba/GeNeVA geneva/models (layer sizes come from configs/geneva.py).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from t2i_tf.layers.conditioning import ConditioningAugmentation

LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU() as the official ACTIVATIONS['leaky_relu']
BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1


def parse_dims(text: str, name: str) -> tuple[int, ...]:
    """``"64,128,256"`` -> (64, 128, 256); a ValueError naming ``--name`` for anything else."""
    try:
        dims = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise ValueError(f"--{name} must be positive ints separated by commas; got {text!r}")
    return dims


def _act(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.leaky_relu(x, LEAKY_SLOPE)


def _conv(channels: int, kernel: int, spectral_norm: bool = False, use_bias: bool = True, name: str | None = None):
    conv = layers.Conv2D(channels, kernel, padding="same", use_bias=use_bias, name=name)
    return layers.SpectralNormalization(conv, name=f"sn_{name}") if spectral_norm else conv


class ConditionalBatchNorm(layers.Layer):
    """Batch norm without its own affine, scaled by ``1 + gamma(h)`` and shifted by ``beta(h)``."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.bn = layers.BatchNormalization(center=False, scale=False, momentum=BN_MOMENTUM, epsilon=1e-5, name="bn")
        init = keras.initializers.RandomNormal(0.0, 0.02)
        self.gamma = layers.Dense(channels, kernel_initializer=init, name="gamma")
        self.beta = layers.Dense(channels, kernel_initializer=init, name="beta")

    def call(self, x, h, training=None):
        x = self.bn(x, training=training)
        return x * (1.0 + self.gamma(h)[:, None, None, :]) + self.beta(h)[:, None, None, :]


class ResUpBlock(layers.Layer):
    """CBN -> act -> 2x nearest up -> conv3x3 -> CBN -> act -> conv3x3, plus up -> conv1x1 shortcut."""

    def __init__(self, channels_in: int, channels_out: int, **kwargs):
        super().__init__(**kwargs)
        self.bn1 = ConditionalBatchNorm(channels_in, name="cbn1")
        self.bn2 = ConditionalBatchNorm(channels_out, name="cbn2")
        self.conv1 = _conv(channels_out, 3, use_bias=False, name="conv1")
        self.conv2 = _conv(channels_out, 3, use_bias=False, name="conv2")
        self.shortcut = _conv(channels_out, 1, use_bias=False, name="shortcut")
        self.up = layers.UpSampling2D(2, interpolation="nearest")

    def call(self, x, h, training=None):
        y = self.conv1(self.up(_act(self.bn1(x, h, training=training))))
        y = self.conv2(_act(self.bn2(y, h, training=training)))
        return y + self.shortcut(self.up(x))


class ResDownBlock(layers.Layer):
    """(act) -> conv3x3 -> act -> conv3x3 -> (2x avg pool), plus a conv1x1 (+ pool) shortcut; the first block
    skips the leading activation and pools before its shortcut conv, as the official ResDownBlock."""

    def __init__(self, channels_in: int, channels_out: int, downsample: bool, first: bool, spectral_norm: bool,
                 **kwargs):
        super().__init__(**kwargs)
        self.downsample, self.first = downsample, first
        self.conv1 = _conv(channels_out, 3, spectral_norm, name="conv1")
        self.conv2 = _conv(channels_out, 3, spectral_norm, name="conv2")
        needs_shortcut = downsample or channels_in != channels_out
        self.shortcut = _conv(channels_out, 1, spectral_norm, name="shortcut") if needs_shortcut else None
        self.pool = layers.AveragePooling2D(2)

    def call(self, x, training=None):
        y = x if self.first else _act(x)
        y = self.conv2(_act(self.conv1(y, training=training)), training=training)
        if self.downsample:
            y = self.pool(y)
        if self.shortcut is None:
            return y + x
        if self.first and self.downsample:
            return y + self.shortcut(self.pool(x), training=training)
        s = self.shortcut(x, training=training)
        return y + (self.pool(s) if self.downsample else s)


class ImageEncoder(keras.Model):
    """The previous image -> a feature map at ``S / 2^len(dims)``: 4x4 stride-2 convs, ReLU + batch norm between,
    batch norm last (geneva/models/image_encoder.py 'conv')."""

    def __init__(self, dims: tuple[int, ...], **kwargs):
        super().__init__(**kwargs)
        # Sub-layers are attributes, not list items, so every variable (batch-norm statistics included) is in the
        # checkpoint's object graph.
        self.depth = len(dims)
        for i, d in enumerate(dims):
            setattr(self, f"conv{i}", layers.Conv2D(d, 4, 2, padding="same", use_bias=False, name=f"conv{i}"))
            setattr(self, f"bn{i}", layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-5, name=f"bn{i}"))

    def call(self, images, training=None):
        x = images
        for i in range(self.depth):
            x = getattr(self, f"conv{i}")(x)
            if i < self.depth - 1:
                x = tf.nn.relu(x)
            x = getattr(self, f"bn{i}")(x, training=training)
        return x


class SentenceEncoder(keras.Model):
    """Token ids [N, L] -> [N, sentence_dim]: word embeddings, a bidirectional GRU's final states, layer norm."""

    def __init__(self, vocab_size: int, word_dim: int, sentence_dim: int, **kwargs):
        super().__init__(**kwargs)
        if sentence_dim % 2:
            raise ValueError(f"--sentence_dim must be even (half per GRU direction); got {sentence_dim}")
        self.words = layers.Embedding(vocab_size, word_dim, name="words")
        # Unrolled (instructions are short): a symbolic while loop here, differentiated twice under the Trainer's
        # loop, trips a grappler AddN rewrite (AlreadyExistsError on a temporary variable).
        self.gru = layers.Bidirectional(layers.GRU(sentence_dim // 2, unroll=True), name="bigru")
        self.norm = layers.LayerNormalization(epsilon=1e-5, name="norm")

    def call(self, tokens, training=None):
        # The first position always counts, so an empty instruction (padding only) is a defined, constant input.
        mask = tf.logical_or(tokens > 0, tf.range(tf.shape(tokens)[1])[None, :] == 0)
        return self.norm(self.gru(self.words(tokens), mask=mask, training=training))


class InstructionProjection(keras.Model):
    """Sentence encoding -> the turn GRU's input: linear projection + batch norm (geneva ConditionEncoder)."""

    def __init__(self, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.fc = layers.Dense(hidden_dim, name="fc")
        self.bn = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-5, name="bn")

    def call(self, x, training=None):
        return self.bn(self.fc(x), training=training)


class TurnRnn(keras.Model):
    """The GRU over turns and the layer norm of its output: (input [N, H], state [N, H]) -> (h_t, new state)."""

    def __init__(self, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.cell = layers.GRUCell(hidden_dim, name="gru")
        self.norm = layers.LayerNormalization(epsilon=1e-5, name="norm")
        self.hidden_dim = int(hidden_dim)

    def call(self, inputs, training=None):
        x, state = inputs
        out, new_state = self.cell(x, [state], training=training)
        new_state = new_state[0] if isinstance(new_state, (list, tuple)) else new_state
        return self.norm(out), new_state


class GenevaGenerator(keras.Model):
    """(z, h_t, previous-image features) -> image in [-1, 1], with the conditioning augmentation's mu, logvar."""

    def __init__(self, image_size: int, dims: tuple[int, ...], c_dim: int, fuse_size: int, fuse_channels: int,
                 **kwargs):
        super().__init__(**kwargs)
        ups = len(dims) - 1
        if ups < 1 or 4 * 2 ** ups != image_size:
            raise ValueError(f"--generator_dims {','.join(map(str, dims))} has {ups} up blocks: 4 x 2^{ups} != "
                             f"--image_size {image_size} (give log2(image_size / 4) = "
                             f"{math.log2(max(image_size, 1) / 4):g} channels after the first)")
        if fuse_size < 4 or fuse_size > image_size // 2 or fuse_size & (fuse_size - 1):
            raise ValueError(f"the previous image's feature map is {fuse_size} x {fuse_size}: it must be a size the "
                             f"generator passes through before its last block (4 .. {image_size // 2}); change "
                             "--image_encoder_dims")
        self.dims, self.fuse_size = dims, int(fuse_size)
        self.ca = ConditioningAugmentation(c_dim, activation="relu", name="ca")
        self.fc = layers.Dense(4 * 4 * dims[0], name="fc")
        size = 4
        for i, d in enumerate(dims[1:]):  # attributes (not a list): every variable is checkpointed
            extra = fuse_channels if size == fuse_size else 0
            setattr(self, f"up{i}", ResUpBlock(dims[i] + extra, d, name=f"up{i}"))
            size *= 2
        self.num_blocks = len(dims) - 1
        self.bn = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-5, name="bn")
        self.out = layers.Conv2D(3, 3, padding="same", use_bias=False, name="out")

    def call(self, inputs, training=None):
        z, h, features = inputs["z"], inputs["h"], inputs["features"]
        c, mu, logvar = self.ca(h, inputs.get("ca_noise"), training=training)
        x = tf.reshape(self.fc(tf.concat([z, c], axis=1)), [-1, 4, 4, self.dims[0]])
        size = 4
        for i in range(self.num_blocks):
            block = getattr(self, f"up{i}")
            if size == self.fuse_size:
                x = tf.concat([x, features], axis=-1)
            x = block(x, h, training=training)
            size *= 2
        x = self.out(_act(self.bn(x, training=training)))
        return {"images": tf.tanh(x), "mu": mu, "logvar": logvar}


class GenevaDiscriminator(keras.Model):
    """(image, h_t, previous image) -> (projection score [N], object-detector logits [N, num_objects])."""

    def __init__(self, image_size: int, dims: tuple[int, ...], fusion_block: int, num_objects: int,
                 spectral_norm: bool, **kwargs):
        super().__init__(**kwargs)
        if not 1 <= fusion_block < len(dims):
            raise ValueError(f"--d_fusion_block must be in 1..{len(dims) - 1} (blocks of --discriminator_dims before "
                             f"the subtraction, at least one after); got {fusion_block}")
        self.fusion_block = int(fusion_block)
        size, self.num_blocks = int(image_size), len(dims)
        for i, d in enumerate(dims):  # attributes (not a list): every variable is checkpointed
            down = size > 4
            setattr(self, f"down{i}", ResDownBlock(dims[i - 1] if i else 3, d, down, i == 0, spectral_norm,
                                                   name=f"down{i}"))
            size = size // 2 if down else size
        init = keras.initializers.GlorotUniform()
        self.project = keras.Sequential([layers.Dense(dims[-1], activation="relu", kernel_initializer=init),
                                         layers.Dense(dims[-1], kernel_initializer=init)], name="condition_projector")
        width = max(dims[-1] // 4, 16)
        self.aux = keras.Sequential([layers.Dense(width, activation="relu"), layers.Dense(num_objects)], name="aux")
        linear = layers.Dense(1, name="linear")
        self.linear = layers.SpectralNormalization(linear, name="sn_linear") if spectral_norm else linear

    def features(self, x, blocks, training=None):
        for block in blocks:
            x = block(x, training=training)
        return x

    def call(self, inputs, training=None):
        x, h, prev = inputs["images"], inputs["h"], inputs["prev_images"]
        blocks = [getattr(self, f"down{i}") for i in range(self.num_blocks)]
        head, tail = blocks[: self.fusion_block], blocks[self.fusion_block:]
        x = self.features(x, head, training) - self.features(prev, head, training)
        phi = tf.reduce_sum(_act(self.features(x, tail, training)), axis=[1, 2])
        score = self.linear(phi, training=training)[:, 0] + tf.reduce_sum(self.project(h) * phi, axis=1)
        return score, self.aux(phi)
