"""AttnGAN's DAMSM encoders (Deep Attentional Multimodal Similarity Model, Xu et al. CVPR 2018).

- :class:`DamsmTextEncoder`: token ids -> per-word features and a sentence feature (BiLSTM), the text
  side of DAMSM and the text conditioning of the AttnGAN generator.
- :class:`DamsmImageEncoder`: images -> a grid of region features and a global feature, either the
  official frozen ImageNet Inception-v3 (torchvision's, reproduced exactly; regions from Mixed_6e, global from
  Mixed_7c) or a small conv net trained from scratch for CPU runs and small data.

The losses that train them (and that the generator uses) are in :mod:`t2i_tf.losses.damsm`.
"""

from __future__ import annotations

import math
import os

import keras
import tensorflow as tf
from keras import layers

from t2i_tf.errors import UserError
from t2i_tf.models.inception_v3 import TorchInceptionV3
from t2i_tf.models.sentence_encoder import adaptive_pool_matrix, pool_to_grid

# Layer of keras.applications.InceptionV3 that is the reference's (torchvision's) Mixed_6e, the last
# 17x17x768 block: Keras names the Inception blocks mixed0..mixed10, so 5b,5c,5d = mixed0..2,
# 6a = mixed3, 6b = mixed4, 6c = mixed5, 6d = mixed6, 6e = mixed7, 7a = mixed8, 7b/7c = mixed9/10.
INCEPTION_REGION_LAYER = "mixed7"
INCEPTION_SIZE = 299


def token_mask(token_ids: tf.Tensor) -> tf.Tensor:
    """Bool [N, T]: True at real tokens, False at padding (id 0)."""
    return tf.not_equal(token_ids, 0)


def _uniform_init(limit: float = 0.1) -> keras.initializers.Initializer:
    """The reference initialises the word embedding and both projection heads uniform in [-0.1, 0.1]."""
    return keras.initializers.RandomUniform(-limit, limit)


class DamsmTextEncoder(keras.Model):
    """Token ids [N, T] (0 = padding, right-padded) -> (words [N, T, 2H], sentence [N, 2H]).

    Embedding (dim ``embed_dim``) -> dropout -> one-layer BiLSTM with ``hidden_dim`` units per
    direction, as the reference RNN_ENCODER (nhidden 256 = 2 x 128). ``words`` are the BiLSTM outputs,
    zero at padding; ``sentence`` concatenates the forward LSTM's final hidden state (at the last real
    token) and the backward LSTM's final hidden state (after reading back to the first token), the h_n
    the reference gets from its packed sequence. Trailing padding changes neither output.
    """

    token_mask = staticmethod(token_mask)

    def __init__(self, vocab_size: int, embed_dim: int = 300, hidden_dim: int = 128, dropout: float = 0.5,
                 slot_grid: int = 0, slot_dim: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.embed_dim = int(embed_dim)
        self.hidden_dim = int(hidden_dim)
        self.out_dim = 2 * self.hidden_dim
        self.embedding = layers.Embedding(vocab_size, embed_dim, embeddings_initializer=_uniform_init(), name="embedding")
        self.dropout = layers.Dropout(dropout, name="embedding_dropout")
        self.bilstm = layers.Bidirectional(
            layers.LSTM(hidden_dim, return_sequences=True, return_state=True), merge_mode="concat", name="bilstm"
        )
        # sentence_encoder=word_slots (not in AttnGAN): the sentence is a layout, slot_grid^2 slots of slot_dim, each
        # the sum of the embeddings of the words the BiLSTM routes there (t2i_tf/models/sentence_encoder.py).
        self.slots = int(slot_grid) ** 2 if slot_grid else 0
        self.slot_dim = int(slot_dim)
        self.sentence_dim = self.slots * self.slot_dim if self.slots else self.out_dim
        if self.slots:
            if self.slot_dim < 1:
                raise ValueError(f"slot_dim must be >= 1 with slot_grid {slot_grid}; got {slot_dim}")
            self.route = layers.Dense(self.slots + 1, name="route")  # the last choice: no slot
            self.slot_value = layers.Embedding(vocab_size, self.slot_dim, embeddings_initializer=_uniform_init(),
                                               name="slot_value")

    def call(self, token_ids, training=None):
        mask = token_mask(token_ids)
        x = self.dropout(self.embedding(token_ids), training=training)
        words, fw_h, _fw_c, bw_h, _bw_c = self.bilstm(x, mask=mask, training=training)
        words = words * tf.cast(mask, words.dtype)[:, :, None]
        if self.slots:
            routing = tf.nn.softmax(self.route(words), axis=-1)[..., :self.slots] * tf.cast(mask, words.dtype)[..., None]
            layout = tf.reshape(tf.einsum("ntk,ntd->nkd", routing, self.slot_value(token_ids)), [-1, self.sentence_dim])
            # DAMSM's losses are cosines, blind to the scale; the generator's conditioning augmentation is not: at the
            # raw scale (|x| ~ 0.04) its unit noise drowned the text. Unit-size components, as normalize_sentence.
            return words, tf.math.l2_normalize(layout, axis=-1) * math.sqrt(self.sentence_dim)
        sentence = tf.concat([fw_h, bw_h], axis=-1)
        return words, sentence


class DamsmImageEncoder(keras.Model):
    """Images [N, S, S, 3] in [-1, 1] -> (regions [N, R, R, out_dim], global [N, out_dim]).

    ``backbone="inception_v3"`` is the official CNN_ENCODER (AttnGAN code/model.py:142-255): torchvision's
    Inception-v3 reproduced exactly (:class:`~t2i_tf.models.inception_v3.TorchInceptionV3`; ImageNet weights from
    the local torchvision file ``inception_weights``, ``inception_v3_google-*.pth``, the one the official code
    downloads; None = random init, for tests and imports) on the input resized to 299 bilinearly with
    ``align_corners=True`` (``nn.Upsample(size=(299, 299), mode='bilinear')`` in the PyTorch <= 0.3 the code was
    written for); regions = 1x1 conv (no bias) of Mixed_6e (17x17x768), global = Dense of the 8x8-average-pooled
    Mixed_7c (2048). The backbone is frozen; with ``batch_stats=True`` its BatchNorms use batch statistics in
    training calls, as the official pre-training's ``cnn_model.train()`` (pretrain_DAMSM.py:51) does.

    ``backbone="keras_inception_v3"``: ``keras.applications.InceptionV3`` with the Keras no-top ImageNet ``.h5``
    (``inception_weights``), a different network (BatchNorm without scale, average pools that exclude the
    padding), kept for users who only have that file; always in inference mode, half-pixel bilinear resize.

    ``backbone="cnn"`` (default) is a small net trained from scratch: 4x4 stride-2 convs (LeakyReLU 0.2,
    synchronised BatchNorm from the second conv; ``width`` channels first, doubling, capped at
    8 * width) down to R = S / 8 (at least 4) -> 1x1 conv = regions; more stride-2 convs -> global
    average pool -> Dense = global.
    """

    def __init__(
        self,
        image_size: int,
        out_dim: int = 256,
        backbone: str = "cnn",
        width: int = 32,
        inception_weights: str | None = None,
        batch_stats: bool = False,
        slot_grid: int = 0,
        slot_dim: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size = int(image_size)
        self.out_dim = int(out_dim)
        self.backbone = backbone
        self.slot_grid, self.slot_dim = int(slot_grid), int(slot_dim)
        if backbone == "inception_v3":
            self._build_torch_inception(inception_weights, bool(batch_stats))
        elif backbone == "keras_inception_v3":
            self._build_keras_inception(inception_weights)
        elif backbone == "cnn":
            self._build_cnn(int(width))
        else:
            raise UserError(f"DAMSM image encoder backbone must be 'cnn', 'inception_v3' or 'keras_inception_v3'; "
                            f"got {backbone!r}")
        self.region_proj = layers.Conv2D(
            self.out_dim, 1, use_bias=False, kernel_initializer=_uniform_init(), name="region_proj"
        )
        if self.slot_grid:
            # sentence_encoder=word_slots: the global feature is one slot_dim vector per cell of a slot_grid^2 layout,
            # from the region features average-pooled to the grid (the image side of the text's layout).
            if self.slot_dim < 1:
                raise ValueError(f"slot_dim must be >= 1 with slot_grid {slot_grid}; got {slot_dim}")
            self.slot_pool = adaptive_pool_matrix(self.region_size, self.slot_grid)
            self.global_proj = layers.Conv2D(self.slot_dim, 1, kernel_initializer=_uniform_init(), name="global_proj")
        else:
            self.global_proj = layers.Dense(self.out_dim, kernel_initializer=_uniform_init(), name="global_proj")

    def _build_torch_inception(self, weights: str | None, batch_stats: bool) -> None:
        if weights is not None and not os.path.isfile(weights):
            raise UserError(
                f"Inception-v3 weights file {weights!r} does not exist; give the path of torchvision's ImageNet "
                "Inception-v3 state dict (inception_v3_google-*.pth, the file AttnGAN's CNN_ENCODER loads)"
            )
        self.inception = TorchInceptionV3(batch_stats, name="inception_v3")
        self.inception(tf.zeros([1, INCEPTION_SIZE, INCEPTION_SIZE, 3]))
        if weights is not None:
            from t2i_tf.import_torch.attngan import load_inception
            from t2i_tf.import_torch.pth import load_state_dict

            load_inception(self.inception, load_state_dict(weights))
        self.region_size = 17

    def _build_keras_inception(self, weights: str | None) -> None:
        if weights is not None and not os.path.isfile(weights):
            raise UserError(
                f"InceptionV3 weights file {weights!r} does not exist; give the path of a local Keras "
                "InceptionV3 no-top weights file (inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5)"
            )
        base = keras.applications.InceptionV3(
            include_top=False, weights=None, input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3)
        )
        if weights is not None:
            try:
                base.load_weights(weights)
            except Exception as exc:  # a wrong or corrupt file: say which and what was expected
                raise UserError(
                    f"could not load InceptionV3 no-top weights from {weights!r} ({type(exc).__name__}: {exc}); "
                    "expected the Keras inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
                ) from exc
        self.inception = keras.Model(
            base.input, [base.get_layer(INCEPTION_REGION_LAYER).output, base.output], name="inception_v3"
        )
        self.inception.trainable = False
        self.region_size = 17

    def _build_cnn(self, width: int) -> None:
        if self.image_size < 8:
            raise UserError(f"DAMSM cnn image encoder needs image_size >= 8; got {self.image_size}")
        # Halvings down to S/8, fewer for small images so that the region grid stays >= 4x4.
        n_region = min(3, int(math.floor(math.log2(self.image_size / 4))))
        size = self.image_size
        for _ in range(n_region):
            size = -(-size // 2)
        self.region_size = size
        # to about 4x4, at least one more conv; none when the global feature is pooled from the regions (word slots)
        n_global = 0 if self.slot_grid else max(int(math.floor(math.log2(size))) - 2, 1)
        self.num_region_convs = n_region
        self.num_global_convs = n_global
        for k in range(n_region + n_global):
            block = [layers.Conv2D(width * min(2**k, 8), 4, strides=2, padding="same", use_bias=k == 0)]
            if k > 0:
                block.append(layers.BatchNormalization(synchronized=True))
            block.append(layers.LeakyReLU(0.2))
            # attributes, not a list, so tf.train.Checkpoint tracks them by name
            setattr(self, f"block{k}", keras.Sequential(block, name=f"block{k}"))
        self.pool = layers.GlobalAveragePooling2D()

    def call(self, images, training=None):
        if self.backbone == "inception_v3":
            x = images
            if tuple(images.shape[1:3]) != (INCEPTION_SIZE, INCEPTION_SIZE):
                x = tf.compat.v1.image.resize_bilinear(images, (INCEPTION_SIZE, INCEPTION_SIZE), align_corners=True)
            features, last = self.inception(x, training=training)
            pooled = tf.reduce_mean(last, axis=[1, 2])
        elif self.backbone == "keras_inception_v3":
            x = tf.image.resize(images, (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
            features, last = self.inception(x, training=False)
            pooled = tf.reduce_mean(last, axis=[1, 2])
        else:
            x = images
            for k in range(self.num_region_convs):
                x = getattr(self, f"block{k}")(x, training=training)
            features = x
            for k in range(self.num_region_convs, self.num_region_convs + self.num_global_convs):
                x = getattr(self, f"block{k}")(x, training=training)
            pooled = self.pool(x)
        if self.slot_grid:
            cells = self.global_proj(pool_to_grid(features, self.slot_pool))
            return self.region_proj(features), tf.reshape(cells, [-1, self.slot_grid ** 2 * self.slot_dim])
        return self.region_proj(features), self.global_proj(pooled)
