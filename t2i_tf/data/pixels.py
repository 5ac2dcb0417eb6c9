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
