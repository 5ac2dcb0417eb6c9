"""Conditioning augmentation and GLU."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.layers.conditioning import ConditioningAugmentation, glu


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def test_glu_gates_the_first_half_with_the_second():
    x = np.array([[1.0, -2.0, 0.0, 3.0], [4.0, 5.0, -100.0, 100.0]], np.float32)
    expected = x[:, :2] * _sigmoid(x[:, 2:])
    np.testing.assert_allclose(glu(tf.constant(x)).numpy(), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(glu(tf.constant(x)).numpy()[1], [0.0, 5.0], atol=1e-6)  # gate closed / open
    with pytest.raises(ValueError, match="even"):
        glu(tf.zeros([2, 5]))


@pytest.mark.parametrize("activation,width", [("glu", 12), ("relu", 6)])
def test_shapes_and_the_split_into_mu_and_logvar(activation, width):
    ca = ConditioningAugmentation(3, activation=activation)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(4, 7)).astype(np.float32)
    c, mu, logvar = ca(tf.constant(emb))
    assert c.shape == mu.shape == logvar.shape == (4, 3)
    assert ca.fc.kernel.shape == (7, width)
    # Hand-set weights: mu / logvar are the first / last c_dim outputs of the activation.
    kernel = rng.normal(size=(7, width)).astype(np.float32)
    bias = rng.normal(size=(width,)).astype(np.float32)
    ca.fc.kernel.assign(kernel)
    ca.fc.bias.assign(bias)
    h = emb @ kernel + bias
    h = h[:, : width // 2] * _sigmoid(h[:, width // 2 :]) if activation == "glu" else np.maximum(h, 0.0)
    _, mu, logvar = ca(tf.constant(emb))
    np.testing.assert_allclose(mu.numpy(), h[:, :3], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logvar.numpy(), h[:, 3:], rtol=1e-5, atol=1e-6)
    if activation == "relu":  # StackGAN-Pytorch's CA net: mu, logvar >= 0
        assert mu.numpy().min() >= 0.0 and logvar.numpy().min() >= 0.0


def test_without_noise_c_is_the_mean():
    ca = ConditioningAugmentation(5)
    emb = tf.random.normal([3, 8], seed=1)
    c, mu, _ = ca(emb)
    np.testing.assert_array_equal(c.numpy(), mu.numpy())
    c_zero, _, _ = ca(emb, noise=tf.zeros([3, 5]))
    np.testing.assert_array_equal(c_zero.numpy(), mu.numpy())


def test_reparameterisation_c_minus_mu_is_sigma_times_noise():
    ca = ConditioningAugmentation(5)
    ca.build((None, 8))
    ca.fc.bias.assign(tf.random.normal([20], seed=4))  # logvar far from 0, so sigma != 1
    emb = tf.random.normal([3, 8], seed=2)
    noise = tf.random.normal([3, 5], seed=3)
    c, mu, logvar = ca(emb, noise=noise)
    sigma = np.exp(0.5 * logvar.numpy())
    assert np.abs(sigma - 1.0).max() > 0.1
    np.testing.assert_allclose((c - mu).numpy(), sigma * noise.numpy(), rtol=1e-5, atol=1e-6)
    # Gradients reach logvar through the sample: d c / d logvar = 0.5 * sigma * noise.
    with tf.GradientTape() as tape:
        c, _, logvar = ca(emb, noise=noise)
    assert tape.gradient(c, ca.fc.kernel) is not None
    with pytest.raises(ValueError, match=r"\[N, 5\]"):
        ca(emb, noise=tf.zeros([3, 4]))


def test_sampling_works_inside_tf_function():
    ca = ConditioningAugmentation(4)
    emb = tf.random.normal([2, 6], seed=5)
    noise = tf.random.normal([2, 4], seed=6)
    eager = ca(emb, noise=noise)
    graph = tf.function(lambda e, n: ca(e, noise=n))(emb, noise)
    for a, b in zip(eager, graph):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        ConditioningAugmentation(4, activation="tanh")
    with pytest.raises(ValueError, match="c_dim"):
        ConditioningAugmentation(0)
    assert ConditioningAugmentation(4, activation="relu").get_config()["activation"] == "relu"
