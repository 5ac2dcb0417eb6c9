"""torchvision's Inception-v3 up to Mixed_7c in Keras, numerically the network AttnGAN's CNN_ENCODER runs.

``keras.applications.InceptionV3`` is a different network for this purpose: its BatchNorms have no scale
(gamma), its 3x3 average pools exclude the padding where torchvision's ``F.avg_pool2d(x, 3, 1, padding=1)``
counts it (``count_include_pad=True``), and its ImageNet weights are Keras', not the torchvision
``inception_v3_google-*.pth`` the official code loads. This module reproduces torchvision's
``models/inception.py`` layer by layer:

- ``BasicConv2d`` = conv (no bias) -> BatchNorm (eps 0.001, with scale) -> ReLU; stride-1 convs with odd
  kernels use symmetric padding of ``k // 2`` ('same' in Keras is exactly that for stride 1), the stride-2
  convs and the stem convs without ``padding=`` in torchvision are 'valid';
- the stem (Conv2d_1a .. Conv2d_4a, two 3x3 stride-2 max pools), Mixed_5b..5d (InceptionA), 6a (B),
  6b..6e (C), 7a (D), 7b/7c (E), branch outputs concatenated in torchvision's order;
- average pools in the blocks: zero padding 1 + 3x3 stride-1 average over all 9 cells.

Attribute names are torchvision's module names (``Mixed_6e.branch7x7dbl_3.conv``), so a state-dict key maps to
a layer by its path (:func:`t2i_tf.import_torch.attngan.load_inception`). The network is frozen: kernels and
BatchNorm scale/offset are non-trainable. ``batch_stats=True`` makes its BatchNorms use the batch's statistics
in ``training=True`` calls (and update their running averages), as the official DAMSM pre-training does: its
``cnn_model.train()`` (pretrain_DAMSM.py:51) puts the frozen Inception's BatchNorms in training mode.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


class TorchBatchNorm(layers.BatchNormalization):
    """BatchNorm with torch's defaults for Inception (eps 0.001, momentum 0.1 = Keras 0.9) and frozen scale/offset.

    Batch statistics are used in ``training=True`` calls only when ``batch_stats``; otherwise always the
    running statistics. Keras updates the running variance with the biased batch variance (torch: unbiased).
    """

    def __init__(self, batch_stats: bool = False, **kwargs):
        super().__init__(epsilon=1e-3, momentum=0.9, **kwargs)
        self.batch_stats = bool(batch_stats)

    def build(self, input_shape):
        super().build(input_shape)
        self.gamma.trainable = False
        self.beta.trainable = False

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=bool(training) and self.batch_stats, mask=mask)


class BasicConv2d(layers.Layer):
    """conv (no bias) -> BatchNorm(eps 0.001) -> ReLU, torchvision's ``BasicConv2d``."""

    def __init__(self, filters: int, kernel, strides: int = 1, padding: str = "same", batch_stats: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, trainable=False,
                                  name="conv")
        self.bn = TorchBatchNorm(batch_stats, name="bn")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build(self.conv.compute_output_shape(input_shape))

    def call(self, x, training=None):
        return tf.nn.relu(self.bn(self.conv(x), training=training))


def _avg_pool_3x3(x):
    """torch ``F.avg_pool2d(x, 3, stride=1, padding=1)`` (count_include_pad=True): zero pad, then average 9."""
    return tf.nn.avg_pool2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 1, "VALID")


def _max_pool_3x3_s2(x):
    return tf.nn.max_pool2d(x, 3, 2, "VALID")


# Block specs: branch name -> (filters, kernel, strides, padding); the order of each block's outputs is the
# order of the ``_OUT`` lists (torchvision's ``_forward``).
_SPECS = {
    "A": lambda pool: {"branch1x1": (64, 1, 1, "same"), "branch5x5_1": (48, 1, 1, "same"),
                       "branch5x5_2": (64, 5, 1, "same"), "branch3x3dbl_1": (64, 1, 1, "same"),
                       "branch3x3dbl_2": (96, 3, 1, "same"), "branch3x3dbl_3": (96, 3, 1, "same"),
                       "branch_pool": (pool, 1, 1, "same")},
    "B": lambda _: {"branch3x3": (384, 3, 2, "valid"), "branch3x3dbl_1": (64, 1, 1, "same"),
                    "branch3x3dbl_2": (96, 3, 1, "same"), "branch3x3dbl_3": (96, 3, 2, "valid")},
    "C": lambda c7: {"branch1x1": (192, 1, 1, "same"), "branch7x7_1": (c7, 1, 1, "same"),
                     "branch7x7_2": (c7, (1, 7), 1, "same"), "branch7x7_3": (192, (7, 1), 1, "same"),
                     "branch7x7dbl_1": (c7, 1, 1, "same"), "branch7x7dbl_2": (c7, (7, 1), 1, "same"),
                     "branch7x7dbl_3": (c7, (1, 7), 1, "same"), "branch7x7dbl_4": (c7, (7, 1), 1, "same"),
                     "branch7x7dbl_5": (192, (1, 7), 1, "same"), "branch_pool": (192, 1, 1, "same")},
    "D": lambda _: {"branch3x3_1": (192, 1, 1, "same"), "branch3x3_2": (320, 3, 2, "valid"),
                    "branch7x7x3_1": (192, 1, 1, "same"), "branch7x7x3_2": (192, (1, 7), 1, "same"),
                    "branch7x7x3_3": (192, (7, 1), 1, "same"), "branch7x7x3_4": (192, 3, 2, "valid")},
    "E": lambda _: {"branch1x1": (320, 1, 1, "same"), "branch3x3_1": (384, 1, 1, "same"),
                    "branch3x3_2a": (384, (1, 3), 1, "same"), "branch3x3_2b": (384, (3, 1), 1, "same"),
                    "branch3x3dbl_1": (448, 1, 1, "same"), "branch3x3dbl_2": (384, 3, 1, "same"),
                    "branch3x3dbl_3a": (384, (1, 3), 1, "same"), "branch3x3dbl_3b": (384, (3, 1), 1, "same"),
                    "branch_pool": (192, 1, 1, "same")},
}


class InceptionBlock(layers.Layer):
    """One of torchvision's InceptionA..E blocks (``kind``), ``arg`` = pool_features (A) or channels_7x7 (C)."""

    def __init__(self, kind: str, arg: int = 0, batch_stats: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.branch_names = list(_SPECS[kind](arg))
        for name, (filters, kernel, strides, padding) in _SPECS[kind](arg).items():
            setattr(self, name, BasicConv2d(filters, kernel, strides, padding, batch_stats, name=name))

    def call(self, x, training=None):
        def b(name, y):
            return getattr(self, name)(y, training=training)

        if self.kind == "A":
            out = [b("branch1x1", x), b("branch5x5_2", b("branch5x5_1", x)),
                   b("branch3x3dbl_3", b("branch3x3dbl_2", b("branch3x3dbl_1", x))),
                   b("branch_pool", _avg_pool_3x3(x))]
        elif self.kind == "B":
            out = [b("branch3x3", x), b("branch3x3dbl_3", b("branch3x3dbl_2", b("branch3x3dbl_1", x))),
                   _max_pool_3x3_s2(x)]
        elif self.kind == "C":
            y7 = b("branch7x7_3", b("branch7x7_2", b("branch7x7_1", x)))
            d = x
            for i in range(1, 6):
                d = b(f"branch7x7dbl_{i}", d)
            out = [b("branch1x1", x), y7, d, b("branch_pool", _avg_pool_3x3(x))]
        elif self.kind == "D":
            y7 = x
            for i in range(1, 5):
                y7 = b(f"branch7x7x3_{i}", y7)
            out = [b("branch3x3_2", b("branch3x3_1", x)), y7, _max_pool_3x3_s2(x)]
        else:  # E
            y3 = b("branch3x3_1", x)
            d = b("branch3x3dbl_2", b("branch3x3dbl_1", x))
            out = [b("branch1x1", x), tf.concat([b("branch3x3_2a", y3), b("branch3x3_2b", y3)], -1),
                   tf.concat([b("branch3x3dbl_3a", d), b("branch3x3dbl_3b", d)], -1),
                   b("branch_pool", _avg_pool_3x3(x))]
        return tf.concat(out, axis=-1)


STEM = (("Conv2d_1a_3x3", 32, 3, 2, "valid"), ("Conv2d_2a_3x3", 32, 3, 1, "valid"),
        ("Conv2d_2b_3x3", 64, 3, 1, "same"), ("Conv2d_3b_1x1", 80, 1, 1, "valid"),
        ("Conv2d_4a_3x3", 192, 3, 1, "valid"))
BLOCKS = (("Mixed_5b", "A", 32), ("Mixed_5c", "A", 64), ("Mixed_5d", "A", 64), ("Mixed_6a", "B", 0),
          ("Mixed_6b", "C", 128), ("Mixed_6c", "C", 160), ("Mixed_6d", "C", 160), ("Mixed_6e", "C", 192),
          ("Mixed_7a", "D", 0), ("Mixed_7b", "E", 0), ("Mixed_7c", "E", 0))


class TorchInceptionV3(keras.Model):
    """Images [N, 299, 299, 3] -> (Mixed_6e [N, 17, 17, 768], Mixed_7c [N, 8, 8, 2048]); see the module docstring.

    The input goes in as given (the official CNN_ENCODER calls the blocks directly, so torchvision's
    ``transform_input`` never applies: [-1, 1] images).
    """

    def __init__(self, batch_stats: bool = False, **kwargs):
        super().__init__(**kwargs)
        for name, filters, kernel, strides, padding in STEM:
            setattr(self, name, BasicConv2d(filters, kernel, strides, padding, batch_stats, name=name))
        for name, kind, arg in BLOCKS:
            setattr(self, name, InceptionBlock(kind, arg, batch_stats, name=name))

    def call(self, x, training=None):
        for name, *_ in STEM[:3]:
            x = getattr(self, name)(x, training=training)
        x = _max_pool_3x3_s2(x)
        for name, *_ in STEM[3:]:
            x = getattr(self, name)(x, training=training)
        x = _max_pool_3x3_s2(x)
        mixed_6e = None
        for name, *_ in BLOCKS:
            x = getattr(self, name)(x, training=training)
            if name == "Mixed_6e":
                mixed_6e = x
        return mixed_6e, x
