"""TIRG (Vo et al., CVPR 2019) and the paper's baselines as Keras subclassed models.

A :class:`ComposedRetrievalModel` holds an image encoder, a text encoder, a
composition and a learnable-scale L2 normalisation. ``compose(images, ids)``
gives the query embedding, ``embed_images(images)`` the gallery embedding.
Compositions:

- ``tirg``: f = sigmoid(gate([img, txt])) * img * w_g + residual([img, txt]) * w_r
- ``tirg_lastconv``: the same gating/residual applied on the last conv map with
  the text tiled over space, then pooled and projected
- ``concat``: an MLP on [img, txt]
- ``imgonly`` / ``textonly``: one modality alone
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from t2i_tf.layers.batch_norm import SyncBatchNorm
from t2i_tf.models.resnet import ResNetEncoder
from t2i_tf.models.text_encoder import LSTMTextEncoder

COMPOSITIONS = ("tirg", "tirg_lastconv", "concat", "imgonly", "textonly")


def _bn1d(sync: bool, name: str) -> layers.BatchNormalization:
    return SyncBatchNorm(momentum=0.9, epsilon=1e-5, synchronized=sync, name=name)


class ScaledL2Normalization(layers.Layer):
    """x -> scale * x / ||x|| with a learnable scalar scale (TIRG's NormalizationLayer)."""

    def __init__(self, init_scale: float = 4.0, **kwargs):
        super().__init__(**kwargs)
        self.init_scale = init_scale

    def build(self, input_shape):
        self.scale = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.init_scale), name="scale"
        )

    def call(self, x):
        return self.scale * x / ops.sqrt(ops.sum(x * x, axis=-1, keepdims=True) + 1e-12)


class TirgComposer(layers.Layer):
    """Gated residual composition of image and text features (the TIRG paper's Eq. 2)."""

    def __init__(self, dim: int, sync_bn: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.gate_bn = _bn1d(sync_bn, "gate_bn")
        self.gate_fc = layers.Dense(dim, name="gate_fc")
        self.res_bn = _bn1d(sync_bn, "res_bn")
        self.res_fc1 = layers.Dense(2 * dim, name="res_fc1")
        self.res_fc2 = layers.Dense(dim, name="res_fc2")

    def build(self, input_shape):
        # w_gate, w_res: the paper initialises the residual weight 10x the gate's.
        self.weights_gr = self.add_weight(
            shape=(2,), initializer=keras.initializers.Constant([1.0, 10.0]), name="gate_res_weights"
        )

    def call(self, image_feat, text_feat, training=None):
        x = ops.concatenate([image_feat, text_feat], axis=-1)
        gate = self.gate_fc(ops.relu(self.gate_bn(x, training=training)))
        res = self.res_fc2(ops.relu(self.res_fc1(ops.relu(self.res_bn(x, training=training)))))
        return ops.sigmoid(gate) * image_feat * self.weights_gr[0] + res * self.weights_gr[1]


class TirgLastConvComposer(layers.Layer):
    """TIRG applied to the last conv feature map with the text feature tiled over space."""

    def __init__(self, channels: int, sync_bn: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.sync_bn = sync_bn

    def build(self, fmap_shape, text_feat_shape=None):
        c = self.channels
        cat = c + (text_feat_shape[-1] if text_feat_shape is not None else c)

        # Attributes, not lists, so tf.train.Checkpoint tracks them.
        for branch in ("res", "gate"):
            setattr(self, f"{branch}_bn", _bn1d(self.sync_bn, f"{branch}_bn"))
            setattr(self, f"{branch}_conv1", layers.Conv2D(cat, 3, padding="same", name=f"{branch}_conv1"))
            setattr(self, f"{branch}_conv2", layers.Conv2D(c, 3, padding="same", name=f"{branch}_conv2"))
        self.weights_gr = self.add_weight(
            shape=(2,), initializer=keras.initializers.Constant([1.0, 10.0]), name="gate_res_weights"
        )

    def call(self, fmap, text_feat, training=None):
        h, w = ops.shape(fmap)[1], ops.shape(fmap)[2]
        tiled = ops.tile(text_feat[:, None, None, :], [1, h, w, 1])
        z = ops.concatenate([fmap, tiled], axis=-1)

        def run(branch):
            bn, conv1, conv2 = (getattr(self, f"{branch}_{part}") for part in ("bn", "conv1", "conv2"))
            return conv2(ops.relu(conv1(bn(z, training=training))))

        return ops.sigmoid(run("gate")) * fmap * self.weights_gr[0] + run("res") * self.weights_gr[1]


class ConcatComposer(layers.Layer):
    """The paper's concat baseline: BN-ReLU-FC(2d)-BN-ReLU-Dropout-FC(d) on [img, txt]
    (google/tirg img_text_composition_models.py:147-151)."""

    def __init__(self, dim: int, dropout: float = 0.1, sync_bn: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.bn = _bn1d(sync_bn, "bn")
        self.fc1 = layers.Dense(2 * dim, name="fc1")
        self.bn2 = _bn1d(sync_bn, "bn2")
        self.drop = layers.Dropout(dropout)
        self.fc2 = layers.Dense(dim, name="fc2")

    def call(self, image_feat, text_feat, training=None):
        x = ops.relu(self.bn(ops.concatenate([image_feat, text_feat], axis=-1), training=training))
        x = ops.relu(self.bn2(self.fc1(x), training=training))
        return self.fc2(self.drop(x, training=training))


class ComposedRetrievalModel(keras.Model):
    """Image + modification text -> query embedding; image -> gallery embedding."""

    def __init__(
        self,
        vocab_size: int,
        composition: str = "tirg",
        embed_dim: int = 512,
        image_width: int = 64,
        image_blocks: tuple[int, ...] = (2, 2, 2, 2),
        image_stem: str = "imagenet",
        text_embed_dim: int = 512,
        text_hidden_dim: int = 512,
        text_dropout: float = 0.1,
        normalize_scale: float = 4.0,
        image_pool: str = "avg",
        sync_bn: bool = True,
        image_padding: str = "same",
        image_input_norm: str = "none",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if composition not in COMPOSITIONS:
            raise ValueError(f"composition must be one of {', '.join(COMPOSITIONS)}; got {composition!r}")
        self.composition = composition
        self.image_encoder = ResNetEncoder(
            embed_dim, image_width, tuple(image_blocks), image_stem, sync_bn, image_pool,
            padding=image_padding, input_norm=image_input_norm, name="image_encoder"
        )
        self.text_encoder = LSTMTextEncoder(
            vocab_size, text_embed_dim, text_hidden_dim, embed_dim, text_dropout, name="text_encoder"
        )
        if composition == "tirg":
            self.composer = TirgComposer(embed_dim, sync_bn, name="composer")
        elif composition == "tirg_lastconv":
            self.composer = TirgLastConvComposer(self.image_encoder.feature_channels, sync_bn, name="composer")
        elif composition == "concat":
            self.composer = ConcatComposer(embed_dim, text_dropout, sync_bn, name="composer")
        else:
            self.composer = None
        self.normalize = ScaledL2Normalization(normalize_scale, name="normalize")

    def compose(self, images, token_ids, training=None):
        """Query embedding [N, D] (scaled L2-normalised) from source images and token ids."""
        if self.composition == "textonly":
            return self.normalize(self.text_encoder(token_ids, training=training))
        fmap = self.image_encoder.feature_map(images, training=training)
        if self.composition == "imgonly":
            return self.normalize(self.image_encoder.embed_feature_map(fmap))
        text = self.text_encoder(token_ids, training=training)
        if self.composition == "tirg_lastconv":
            return self.normalize(self.image_encoder.embed_feature_map(self.composer(fmap, text, training=training)))
        image = self.image_encoder.embed_feature_map(fmap)
        return self.normalize(self.composer(image, text, training=training))

    def embed_images(self, images, training=None):
        """Gallery embedding [N, D] (scaled L2-normalised) of target images."""
        _, emb = self.image_encoder(images, training=training)
        return self.normalize(emb)

    def call(self, inputs, training=None):
        images, token_ids, targets = inputs
        return self.compose(images, token_ids, training=training), self.embed_images(targets, training=training)


def _sublayers(layer: layers.Layer):
    """``layer`` and every layer held in its attributes, depth first, once each."""
    seen, stack = set(), [layer]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        stack.extend(v for v in vars(x).values() if isinstance(v, layers.Layer))


def torch_initialize(model: ComposedRetrievalModel, seed: int) -> None:
    """Redraw a built model's weights as google/tirg's PyTorch model starts (numpy RNG from ``seed``).

    ResNet convs: torchvision's kaiming_normal_(fan_out, relu), std sqrt(2 / (out * kh * kw)); BN 1 / 0 (as
    Keras). Every Linear (the ResNet's fc, text fc, composers) and the lastconv composer's convs: PyTorch's
    default kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)), biases U(+-1/sqrt(fan_in)). Embedding N(0, 1).
    LSTM: every tensor U(+-1/sqrt(hidden)); our one bias is b_ih + b_hh (two draws). The composer's
    weights (1, 10) and the normalisation scale keep their constants.
    """
    rng = np.random.default_rng(seed)

    def uniform(bound, shape):
        return rng.uniform(-bound, bound, tuple(shape)).astype(np.float32)

    resnet = {id(x) for x in _sublayers(model.image_encoder)} - {id(model.image_encoder.fc)}
    for layer in _sublayers(model):  # a fixed order: the attributes in definition order
        if isinstance(layer, layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            if id(layer) in resnet:
                layer.kernel.assign(rng.normal(0.0, np.sqrt(2.0 / (cout * kh * kw)), (kh, kw, cin, cout))
                                    .astype(np.float32))
            else:
                layer.kernel.assign(uniform(1.0 / np.sqrt(cin * kh * kw), layer.kernel.shape))
            if layer.use_bias:
                layer.bias.assign(uniform(1.0 / np.sqrt(cin * kh * kw), layer.bias.shape))
        elif isinstance(layer, layers.Dense):
            bound = 1.0 / np.sqrt(layer.kernel.shape[0])
            layer.kernel.assign(uniform(bound, layer.kernel.shape))
            layer.bias.assign(uniform(bound, layer.bias.shape))
        elif isinstance(layer, layers.Embedding):
            layer.embeddings.assign(rng.standard_normal(tuple(layer.embeddings.shape)).astype(np.float32))
        elif isinstance(layer, layers.LSTM):
            cell, bound = layer.cell, 1.0 / np.sqrt(layer.units)
            cell.kernel.assign(uniform(bound, cell.kernel.shape))
            cell.recurrent_kernel.assign(uniform(bound, cell.recurrent_kernel.shape))
            cell.bias.assign(uniform(bound, cell.bias.shape) + uniform(bound, cell.bias.shape))
