"""The project's one image convention: uint8 [0, 255] on disk and at model boundaries, float32 [-1, 1] inside."""

from __future__ import annotations

import tensorflow as tf


def from_uint8(images: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] (or float pixel values) -> float32 in [-1, 1]: x / 127.5 - 1."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """Float images in [-1, 1] -> uint8 [0, 255], rounded, values outside clipped."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def quantized(images: tf.Tensor) -> tf.Tensor:
    """What saving as PNG keeps of float [-1, 1] images, back in [-1, 1]."""
    return from_uint8(to_uint8(images))


def area_resize(images: tf.Tensor, size: int) -> tf.Tensor:
    """[N, H, W, C] float images -> [N, size, size, C] by area averaging, as ``tf.image.resize(method="area")``.

    When H and W are whole multiples of ``size`` this is a ``factor x factor`` average pool: the same numbers, and
    unlike ResizeArea it compiles with XLA (``--jit_compile``). Other sizes fall back to ResizeArea."""
    h, w = images.shape[1], images.shape[2]
    if h == size and w == size:
        return images
    if h and w and h % size == 0 and w % size == 0 and h // size == w // size:
        k = h // size
        return tf.nn.avg_pool2d(images, ksize=k, strides=k, padding="VALID")
    return tf.image.resize(images, [size, size], method="area")
