"""KL(N(mu, sigma^2) || N(0, I)) of conditioning augmentation."""

import numpy as np
import tensorflow as tf

from t2i_tf.losses.kl import kl_divergence


def _kl_closed_form(mu, logvar):
    """Textbook per-dimension KL(N(m, s^2) || N(0, 1)) = -log s + (s^2 + m^2) / 2 - 1/2, mean over dims."""
    s = np.exp(0.5 * logvar)
    return np.mean(-np.log(s) + (s**2 + mu**2) / 2.0 - 0.5, axis=-1)


def test_zero_for_the_standard_normal():
    kl = kl_divergence(tf.zeros([3, 4]), tf.zeros([3, 4])).numpy()
    assert kl.shape == (3,)
    np.testing.assert_array_equal(kl, 0.0)


def test_matches_the_closed_form_for_hand_picked_values():
    mu = np.array([[1.0, 2.0], [0.0, 0.0]], np.float32)
    logvar = np.array([[0.0, np.log(4.0)], [np.log(0.25), 0.0]], np.float32)
    kl = kl_divergence(mu, logvar).numpy()
    # Row 0: dim 1 (m=1, s=1) 0.5; dim 2 (m=2, s=2) -log 2 + 4 - 0.5. Row 1: dim 1 (s=0.5) log 2 + 0.125 - 0.5.
    expected = [(0.5 + (3.5 - np.log(2.0))) / 2, (np.log(2.0) - 0.375) / 2]
    np.testing.assert_allclose(kl, expected, rtol=1e-6)
    np.testing.assert_allclose(kl, _kl_closed_form(mu, logvar), rtol=1e-6)


def test_batch_mean_is_the_reference_scalar_and_examples_are_independent():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(5, 6)).astype(np.float32)
    logvar = rng.normal(size=(5, 6)).astype(np.float32)
    kl = kl_divergence(mu, logvar).numpy()
    reference = -0.5 * np.mean(1 + logvar - mu**2 - np.exp(logvar))  # StackGAN-Pytorch KL_loss
    np.testing.assert_allclose(kl.mean(), reference, rtol=1e-5)
    assert kl.min() > 0.0
    np.testing.assert_allclose(kl_divergence(mu[2:3], logvar[2:3]).numpy(), kl[2:3], rtol=1e-6)


def test_gradient_descent_pulls_towards_the_prior():
    mu = tf.Variable([[2.0, -3.0]])
    logvar = tf.Variable([[1.5, -2.0]])
    start = float(kl_divergence(mu, logvar)[0])

    @tf.function
    def descend():
        for _ in tf.range(100):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(kl_divergence(mu, logvar))
            grad_mu, grad_logvar = tape.gradient(loss, [mu, logvar])
            mu.assign_sub(grad_mu)
            logvar.assign_sub(grad_logvar)

    descend()
    assert float(kl_divergence(mu, logvar)[0]) < 1e-3 * start
    np.testing.assert_allclose(mu.numpy(), 0.0, atol=0.05)
    np.testing.assert_allclose(logvar.numpy(), 0.0, atol=0.05)
