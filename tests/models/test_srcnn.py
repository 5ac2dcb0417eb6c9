"""SRCNN model and its helpers: shapes, the paper's degradation, PSNR, residual start at bicubic."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.data.pixels import from_uint8, to_uint8
from t2i_tf.models.srcnn import SRCNN, bicubic_upscale, degrade, downscale, psnr, psnr_from_mse, super_resolve


def _scene(n=2, size=32, seed=0):
    """Sharp-edged images in [-1, 1]: random coloured squares on a white background."""
    rng = np.random.default_rng(seed)
    images = np.ones([n, size, size, 3], np.float32)
    for i in range(n):
        for _ in range(3):
            y, x = rng.integers(0, size - size // 4, 2)
            images[i, y: y + size // 4, x: x + size // 4] = rng.uniform(-1, 1, 3)
    return tf.constant(images)


@pytest.mark.parametrize("residual", [True, False])
def test_output_has_the_input_size_for_any_size(residual):
    model = SRCNN(n1=8, n2=4, residual=residual)
    for shape in ([2, 16, 16, 3], [1, 20, 28, 3], [3, 7, 5, 3]):
        assert model(tf.zeros(shape), training=False).shape == shape
    assert model.receptive_field == 13
    assert [model.patch_extraction.kernel.shape, model.mapping.kernel.shape, model.reconstruction.kernel.shape] == [
        (9, 9, 3, 8), (1, 1, 8, 4), (5, 5, 4, 3)]


def test_super_resolve_upscales_8_to_32():
    model = SRCNN(n1=8, n2=4)
    out = super_resolve(model, tf.random.uniform([2, 8, 8, 3], -1, 1, seed=1), 4)
    assert out.shape == (2, 32, 32, 3)
    assert float(tf.reduce_min(out)) >= -1.0 and float(tf.reduce_max(out)) <= 1.0
    assert bicubic_upscale(tf.zeros([1, 5, 6, 3]), 3).shape == (1, 15, 18, 3)


def test_residual_model_starts_at_the_bicubic_image():
    """He init with a N(0, 1e-3) last layer: the residual model's first output is (almost) its input."""
    x = degrade(_scene(), 4)
    out = SRCNN(n1=16, n2=8, residual=True)(x, training=False)
    assert float(tf.reduce_max(tf.abs(out - x))) < 0.15
    assert float(tf.reduce_mean(psnr(out, x))) > 35.0
    # The direct (paper) model must learn the whole image: at init it is nowhere near its input.
    direct = SRCNN(n1=16, n2=8, residual=False, init="paper")(x, training=False)
    assert float(tf.reduce_mean(psnr(direct, x))) < 15.0


def test_degrade_keeps_the_size_and_blurs():
    hr = _scene(n=3, size=32)
    low = downscale(hr, 4)
    assert low.shape == (3, 8, 8, 3)
    lr = degrade(hr, 4)
    assert lr.shape == hr.shape
    assert float(tf.reduce_min(lr)) >= -1.0 and float(tf.reduce_max(lr)) <= 1.0

    def gradient_energy(x):  # mean squared horizontal + vertical difference: blur spreads edges, lowering it
        dy, dx = x[:, 1:] - x[:, :-1], x[:, :, 1:] - x[:, :, :-1]
        return float(tf.reduce_mean(tf.square(dy)) + tf.reduce_mean(tf.square(dx)))

    assert gradient_energy(lr) < 0.5 * gradient_energy(hr)
    assert float(tf.reduce_mean(psnr(lr, hr))) < 30.0  # edges are lost ...
    assert float(tf.reduce_mean(psnr(lr, hr))) > 10.0  # ... but it is the same picture
    # A bigger factor loses more, and both antialiased methods are available.
    assert float(tf.reduce_mean(psnr(degrade(hr, 2), hr))) > float(tf.reduce_mean(psnr(lr, hr)))
    assert degrade(hr, 4, "area").shape == hr.shape
    # A flat image survives exactly (up to float rounding).
    flat = tf.fill([1, 16, 16, 3], 0.25)
    np.testing.assert_allclose(degrade(flat, 4).numpy(), flat.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="method"):
        degrade(hr, 4, "nearest")


def test_psnr_identity_and_known_values():
    a = _scene(n=2)
    same = psnr(a, a).numpy()
    assert same.shape == (2,) and np.all(same > 100) and np.all(np.isfinite(same))  # capped, not inf
    b = tf.clip_by_value(a - 0.1, -1.0, 1.0)  # white background -> 0.9: not all pixels move by 0.1
    np.testing.assert_allclose(psnr(a, b).numpy(), tf.image.psnr(a, b, max_val=2.0).numpy(), rtol=1e-5)
    c = tf.zeros([1, 4, 4, 3])
    # MSE 0.01 of a [-1, 1] image: 10 log10(2^2 / 0.01) = 26.02 dB.
    np.testing.assert_allclose(psnr(c, c + 0.1).numpy(), [10 * np.log10(4 / 0.01)], rtol=1e-5)
    np.testing.assert_allclose(float(psnr_from_mse(0.04)), 10 * np.log10(100), rtol=1e-6)


def test_uint8_round_trip():
    u = tf.constant(np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, -1))
    x = from_uint8(u)
    assert float(tf.reduce_min(x)) == -1.0 and float(tf.reduce_max(x)) == 1.0
    assert (to_uint8(x).numpy() == u.numpy()).all()
    assert to_uint8(tf.constant([[-3.0, 3.0]])).numpy().tolist() == [[0, 255]]


def test_bad_arguments():
    with pytest.raises(ValueError, match="n1"):
        SRCNN(n1=0)
    with pytest.raises(ValueError, match="init"):
        SRCNN(init="xavier")
    with pytest.raises(ValueError, match="scale"):
        bicubic_upscale(tf.zeros([1, 4, 4, 3]), 0)
