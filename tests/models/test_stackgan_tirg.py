"""SourceSkipGenerator: StackGAN Stage-I that also reads the source image at every decoder resolution."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.models.stackgan import StageIGenerator
from t2i_tf.models.stackgan_tirg import SourceSkipGenerator


@pytest.fixture(scope="module")
def generator():
    g = SourceSkipGenerator(16, ngf=4, z_dim=8, c_dim=6, name="g")
    g((tf.zeros([2, 8]), tf.zeros([2, 10]), tf.zeros([2, 16, 16, 3]), None))
    return g


def _inputs(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.normal(size=(n, 8)), tf.float32), tf.constant(rng.normal(size=(n, 10)), tf.float32),
            tf.constant(rng.uniform(-1, 1, size=(n, 16, 16, 3)), tf.float32))


def test_shapes_and_the_encoder_maps_at_every_decoder_resolution(generator):
    z, emb, src = _inputs()
    images, mu, logvar = generator((z, emb, src, None), training=False)
    assert images.shape == (3, 16, 16, 3) and mu.shape == logvar.shape == (3, 6)
    assert float(tf.reduce_max(tf.abs(images))) <= 1.0
    maps = generator.encode_source(src, training=False)
    assert [tuple(m.shape[1:3]) for m in maps] == [(16, 16), (8, 8), (4, 4)]
    # Half the decoder's channels at each resolution: 8 ngf = 32 at 4x4, 16 at 8x8, 8 at 16x16 (ngf 4).
    assert [int(m.shape[-1]) for m in maps] == [4, 8, 16]
    # The same trunk as Stage-I (CA, fc, up-blocks), plus the encoder.
    plain = StageIGenerator(16, ngf=4, z_dim=8, c_dim=6)
    plain((z, emb, None))
    assert generator.ca.count_params() == plain.ca.count_params()
    assert generator.fc.count_params() == plain.fc.count_params()
    assert generator.num_ups == plain.num_ups == 2
    g32 = SourceSkipGenerator(32, ngf=4, z_dim=8, c_dim=6)
    out = g32((z, emb, tf.zeros([3, 32, 32, 3]), None))[0]
    assert out.shape == (3, 32, 32, 3) and len(g32.encode_source(tf.zeros([1, 32, 32, 3]))) == 4


def test_the_source_reaches_the_output_pixel_by_pixel(generator):
    z, emb, src = _inputs()
    a = generator((z, emb, src, None), training=False)[0].numpy()
    assert np.array_equal(a, generator((z, emb, src, None), training=False)[0].numpy())  # deterministic
    b = generator((z, emb, -src, None), training=False)[0].numpy()
    scale = np.abs(a).mean()  # initial weights are N(0, 0.02): small outputs, so compare relative to them
    assert np.abs(a - b).mean() > 0.05 * scale  # same z and condition, another source: another image
    # Through the full-size skip, output pixel (0, 0) depends on source pixel (0, 0) directly.
    with tf.GradientTape() as tape:
        tape.watch(src)
        out = generator((z, emb, src, None), training=False)[0]
        corner = tf.reduce_sum(out[:, 0, 0, :])
    grad = tape.gradient(corner, src).numpy()
    assert np.abs(grad[:, 0, 0, :]).sum() > 0
    # ... and the composed feature still matters (in the decoder's last map: at initialisation the composite's
    # output is mostly the source).
    x = generator._decode((z, emb, src, None), training=False)[0].numpy()
    y = generator._decode((z, emb + 3.0, src, None), training=False)[0].numpy()
    assert np.abs(x - y).mean() > 1e-3 * np.abs(x).mean()


def test_the_composite_draws_through_its_mask_and_copies_the_source_elsewhere(generator):
    z, emb, src = _inputs()
    images = generator((z, emb, src, None), training=False)[0].numpy()
    x, _, _, _ = generator._decode((z, emb, src, None), training=False)
    mask = generator.mask((z, emb, src, None), training=False).numpy()
    assert mask.shape == (3, 16, 16, 1) and 0.0 < mask.min() and mask.max() < 0.5  # starts near a copy (bias -2)
    drawn = np.tanh(generator.to_rgb(x).numpy())
    np.testing.assert_allclose(images, mask * drawn + (1 - mask) * src.numpy(), atol=1e-5)
    # A mask shut everywhere gives the source itself; open everywhere, the drawn image (no source pixels pass).
    bias = generator.to_mask.bias
    saved = bias.numpy()
    try:
        bias.assign([-60.0])
        np.testing.assert_allclose(generator((z, emb, src, None), training=False)[0].numpy(), src.numpy(), atol=1e-6)
        bias.assign([60.0])
        np.testing.assert_allclose(generator((z, emb, src, None), training=False)[0].numpy(), drawn, atol=1e-5)
    finally:
        bias.assign(saved)
    plain = SourceSkipGenerator(16, ngf=4, z_dim=8, c_dim=6, composite=False)
    out = plain((z, emb, src, None), training=False)[0].numpy()
    assert plain.to_mask is None and np.abs(out).max() < 0.5  # tanh(rgb) alone: no copy of the source
    with pytest.raises(ValueError, match="no mask"):
        plain.mask((z, emb, src, None))


def test_bad_inputs_are_clear_errors(generator):
    z, emb, _ = _inputs()
    with pytest.raises(ValueError, match="source must be \\[N, 16, 16, 3\\]"):
        generator((z, emb, tf.zeros([3, 8, 8, 3]), None))
    with pytest.raises(ValueError, match="takes a tuple"):
        generator((z, emb))
    with pytest.raises(ValueError, match="4 \\* 2\\^k"):
        SourceSkipGenerator(24, ngf=4)
