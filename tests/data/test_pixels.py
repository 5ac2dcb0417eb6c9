"""area_resize: the same numbers as ResizeArea, and it compiles with XLA."""

import numpy as np
import tensorflow as tf

from t2i_tf.data.pixels import area_resize


def _images(size: int, seed: int = 0) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (2, size, size, 3)).astype("float32"))


def test_area_resize_matches_resize_area_for_whole_factors():
    images = _images(32)
    for size in (16, 8, 4):
        np.testing.assert_allclose(area_resize(images, size).numpy(),
                                   tf.image.resize(images, [size, size], method="area").numpy(), atol=1e-6)


def test_area_resize_falls_back_to_resize_area_and_keeps_same_size():
    images = _images(30)
    np.testing.assert_allclose(area_resize(images, 16).numpy(),
                               tf.image.resize(images, [16, 16], method="area").numpy(), atol=1e-6)
    assert area_resize(images, 30) is images


def test_area_resize_compiles_with_xla():
    images = _images(32)
    compiled = tf.function(lambda x: area_resize(x, 16), jit_compile=True)
    np.testing.assert_allclose(compiled(images).numpy(), tf.image.resize(images, [16, 16], method="area").numpy(),
                               atol=1e-6)
