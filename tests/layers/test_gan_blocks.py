"""GLU, UpBlock, ResidualBlock and the spectral-norm helper of t2i_tf.layers.gan_blocks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.layers.gan_blocks import GLU, ResidualBlock, UpBlock, maybe_spectral_norm


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _spectral_norm(kernel) -> float:
    k = np.asarray(kernel)
    return float(np.linalg.norm(k.reshape(-1, k.shape[-1]), 2))


def test_glu_gates_the_first_half_with_the_second():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 8)).astype("float32")
    out = GLU()(x).numpy()
    assert out.shape == (2, 3, 3, 4)
    np.testing.assert_allclose(out, x[..., :4] * _sigmoid(x[..., 4:]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="even"):
        GLU()(np.zeros((2, 5), "float32"))


def test_up_block_is_nearest_upsample_conv_bn_glu():
    block = UpBlock(3)
    x = tf.random.normal([2, 4, 4, 5], seed=1)
    out = block(x, training=False).numpy()
    assert out.shape == (2, 8, 8, 3)
    conv, bn = block.conv, block.bn
    assert conv.filters == 6 and conv.kernel_size == (3, 3) and not conv.use_bias
    assert bn.synchronized and bn.momentum == pytest.approx(0.9) and bn.epsilon == pytest.approx(1e-5)
    # The same computation by hand: nearest x2 (pixel repeat), 3x3 'same' conv, inference BN, GLU.
    up = np.repeat(np.repeat(x.numpy(), 2, axis=1), 2, axis=2)
    y = tf.nn.conv2d(up, conv.kernel, 1, "SAME").numpy()
    y = (y - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + 1e-5) * bn.gamma.numpy() + bn.beta.numpy()
    np.testing.assert_allclose(out, y[..., :3] * _sigmoid(y[..., 3:]), rtol=1e-4, atol=1e-6)


def test_residual_block_adds_its_branch_to_the_input():
    block = ResidualBlock(6)
    x = tf.random.normal([2, 5, 5, 6], seed=2)
    out = block(x, training=True).numpy()
    assert out.shape == (2, 5, 5, 6)
    assert [block.conv1.filters, block.conv2.filters] == [12, 6]
    assert np.abs(out - x.numpy()).max() > 0.1  # the branch is BN-normalised: order 1, not negligible
    # With the last BN's scale and shift zeroed the branch is 0 and the block is the identity.
    block.bn2.gamma.assign(tf.zeros_like(block.bn2.gamma))
    block.bn2.beta.assign(tf.zeros_like(block.bn2.beta))
    np.testing.assert_array_equal(block(x, training=True).numpy(), x.numpy())
    with pytest.raises(ValueError, match="channels"):
        ResidualBlock(4)(x)


def test_maybe_spectral_norm_wraps_only_when_enabled_and_normalises_in_training():
    conv = keras.layers.Conv2D(4, 3, name="c")
    assert maybe_spectral_norm(conv, False) is conv
    wrapped = maybe_spectral_norm(keras.layers.Conv2D(8, 3, name="c"), True)
    assert isinstance(wrapped, keras.layers.SpectralNormalization) and wrapped.name == "c_sn"
    x = tf.random.normal([2, 6, 6, 5], seed=3)
    wrapped(x, training=False)
    wrapped.layer.kernel.assign(wrapped.layer.kernel * 50.0)
    before = _spectral_norm(wrapped.layer.kernel)
    assert before > 5.0
    wrapped(x, training=False)  # inference leaves the kernel alone
    assert _spectral_norm(wrapped.layer.kernel) == pytest.approx(before)
    norms = []
    for _ in range(20):  # one power iteration per training call, each dividing the stored kernel by its estimate
        wrapped(x, training=True)
        norms.append(_spectral_norm(wrapped.layer.kernel))
    # Power iteration under-estimates sigma, so the first calls leave the norm above 1 (1.29 here, with the
    # top two singular values only 10% apart); it then falls monotonically towards 1.
    assert norms[0] > 1.05
    assert all(b <= a + 1e-5 for a, b in zip(norms, norms[1:]))
    assert norms[-1] == pytest.approx(1.0, abs=2e-3)


def test_blocks_with_spectral_norm_wrap_their_convs():
    up, res = UpBlock(3, spectral_norm=True), ResidualBlock(4, spectral_norm=True)
    assert isinstance(up.conv, keras.layers.SpectralNormalization)
    assert isinstance(res.conv1, keras.layers.SpectralNormalization)
    assert isinstance(res.conv2, keras.layers.SpectralNormalization)
    assert up(tf.zeros([1, 2, 2, 4]), training=True).shape == (1, 4, 4, 3)
    assert res(tf.ones([1, 2, 2, 4]), training=True).shape == (1, 2, 2, 4)
