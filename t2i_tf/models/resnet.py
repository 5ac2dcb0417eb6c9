"""ResNet-18-style image encoder (width and depth configurable), from scratch or torchvision weights.

Returns both the last feature map (for ``tirg_lastconv``) and the pooled,
projected embedding. NHWC throughout (the fast layout for TF on CPU and GPU).

``padding="torch"`` reproduces torchvision's ResNet exactly: symmetric zero
padding (3 on the 7x7/2 stem, 1 on 3x3 convs) before a valid conv, and a
-inf-padded (pad 1) 3x3/2 max-pool. TF's ``"same"`` pads strided layers on the
bottom/right only, which shifts every strided layer's sampling grid by a pixel.
``input_norm="imagenet"`` maps [-1, 1] images to torchvision's input
((x + 1) / 2 - mean) / std, as google/tirg's transforms do (main.py:66-70).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from t2i_tf.layers.batch_norm import SyncBatchNorm

PADDINGS = ("torch", "same")
INPUT_NORMS = ("imagenet", "none")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _bn(sync: bool, name: str) -> layers.BatchNormalization:
    # PyTorch defaults (momentum 0.1, eps 1e-5), as in the reference ResNet.
    return SyncBatchNorm(momentum=0.9, epsilon=1e-5, synchronized=sync, name=name)


def _conv(filters: int, kernel: int, stride: int, padding: str, name: str, use_bias: bool = False):
    """A conv with torch (symmetric zero pad kernel//2, then valid) or TF 'same' padding."""
    if padding == "same":
        return layers.Conv2D(filters, kernel, stride, padding="same", use_bias=use_bias, name=name)
    conv = layers.Conv2D(filters, kernel, stride, padding="valid", use_bias=use_bias, name=name)
    return _Padded(conv, kernel // 2)


class _Padded:
    """Symmetric zero padding in front of a valid conv; the conv stays the tracked layer (same variables)."""

    def __init__(self, conv: layers.Conv2D, pad: int):
        self.conv, self.pad = conv, pad

    def __call__(self, x):
        p = self.pad
        return self.conv(ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]) if p else x)


def _layer(conv):
    return conv.conv if isinstance(conv, _Padded) else conv


class BasicBlock(layers.Layer):
    """Two 3x3 convs with BN and an identity (or 1x1 strided projection) shortcut."""

    def __init__(self, filters: int, stride: int = 1, sync_bn: bool = True, padding: str = "same", **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.stride = stride
        self._conv1 = _conv(filters, 3, stride, padding, "conv1")
        self.conv1 = _layer(self._conv1)
        self.bn1 = _bn(sync_bn, "bn1")
        self.conv2 = layers.Conv2D(filters, 3, 1, padding="same", use_bias=False, name="conv2")
        self.bn2 = _bn(sync_bn, "bn2")
        self.proj = None
        self.proj_bn = None
        self._sync_bn = sync_bn

    def build(self, input_shape):
        if self.stride != 1 or input_shape[-1] != self.filters:
            self.proj = layers.Conv2D(self.filters, 1, self.stride, use_bias=False, name="proj")
            self.proj_bn = _bn(self._sync_bn, "proj_bn")

    def call(self, x, training=None):
        h = keras.ops.relu(self.bn1(self._conv1(x), training=training))
        h = self.bn2(self.conv2(h), training=training)
        shortcut = x if self.proj is None else self.proj_bn(self.proj(x), training=training)
        return keras.ops.relu(h + shortcut)


class ResNetEncoder(keras.Model):
    """ResNet image encoder: images [N,H,W,3] in [-1,1] -> (feature map, embedding [N,embed_dim]).

    ``stem="imagenet"`` is the ResNet-18 stem (7x7/2 conv + 3x3/2 max-pool);
    ``stem="small"`` is one 3x3/2 conv, which keeps more resolution for small images.
    ``pool="avg"`` is ResNet's global average pooling; ``pool="flatten"`` keeps the layout.
    ``padding`` and ``input_norm``: see the module docstring.
    """

    def __init__(
        self,
        embed_dim: int = 512,
        width: int = 64,
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        stem: str = "imagenet",
        sync_bn: bool = True,
        pool: str = "avg",
        padding: str = "same",
        input_norm: str = "none",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if pool not in ("avg", "flatten"):
            raise ValueError(f"pool must be 'avg' or 'flatten', got {pool!r}")
        if stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")
        self.stem_kind = stem
        self.padding = padding
        self.input_norm = input_norm
        self._stem_conv = _conv(width, 7 if stem == "imagenet" else 3, 2, padding, "stem_conv")
        self.stem_conv = _layer(self._stem_conv)
        if stem == "imagenet":
            self.stem_pool = layers.MaxPooling2D(3, 2, padding="same" if padding == "same" else "valid",
                                                 name="stem_pool")
        else:
            self.stem_pool = None
        self.stem_bn = _bn(sync_bn, "stem_bn")
        # Blocks are attributes, not a list: tf.train.Checkpoint does not track
        # layers inside Keras-wrapped lists (their BN statistics would be lost).
        self.block_names = []
        for i, n in enumerate(blocks):
            filters = width * 2**i
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                name = f"stage{i + 1}_block{j + 1}"
                setattr(self, name, BasicBlock(filters, stride, sync_bn, padding, name=name))
                self.block_names.append(name)
        self.feature_channels = width * 2 ** (len(blocks) - 1)
        # "flatten" keeps where things are in the last map (CSS texts name grid cells).
        self.pool = layers.GlobalAveragePooling2D(name="pool") if pool == "avg" else layers.Flatten(name="pool")
        self.fc = layers.Dense(embed_dim, name="fc")

    def feature_map(self, images, training=None):
        """The last stage's feature map [N, h, w, feature_channels]."""
        if self.input_norm == "imagenet":
            mean = ops.convert_to_tensor(IMAGENET_MEAN, images.dtype)
            std = ops.convert_to_tensor(IMAGENET_STD, images.dtype)
            images = ((images + 1.0) * 0.5 - mean) / std
        x = keras.ops.relu(self.stem_bn(self._stem_conv(images), training=training))
        if self.stem_pool is not None:
            if self.padding == "torch":  # torch's MaxPool2d(3, 2, padding=1) pads with -inf
                x = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=float("-inf"))
            x = self.stem_pool(x)
        for name in self.block_names:
            x = getattr(self, name)(x, training=training)
        return x

    def embed_feature_map(self, fmap):
        """Pool and project a feature map to the embedding."""
        return self.fc(self.pool(fmap))

    def call(self, images, training=None):
        fmap = self.feature_map(images, training=training)
        return fmap, self.embed_feature_map(fmap)
