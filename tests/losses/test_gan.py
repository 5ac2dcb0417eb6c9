"""GAN losses: each term's value against a direct formula."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.losses import gan


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _bce(x, target):
    return -(target * np.log(_sigmoid(x)) + (1 - target) * np.log(1 - _sigmoid(x)))


LOGITS = np.array([-2.0, -0.3, 0.0, 0.7, 3.0], np.float32)


def test_bce_terms_and_one_sided_label_smoothing():
    np.testing.assert_allclose(gan.d_real_loss(LOGITS, "bce"), _bce(LOGITS, 1.0), rtol=1e-5)
    smoothed = gan.d_real_loss(LOGITS, "bce", label_smoothing=0.1).numpy()
    np.testing.assert_allclose(smoothed, _bce(LOGITS, 0.9), rtol=1e-5)  # the real target is 0.9
    assert not np.allclose(smoothed, _bce(LOGITS, 1.0))
    # One-sided: fake targets stay 0 and the generator still aims at 1.
    np.testing.assert_allclose(gan.d_fake_loss(LOGITS, "bce"), _bce(LOGITS, 0.0), rtol=1e-5)
    np.testing.assert_allclose(gan.generator_loss(LOGITS, "bce"), _bce(LOGITS, 1.0), rtol=1e-5)


def test_wgan_and_hinge_terms():
    np.testing.assert_allclose(gan.d_real_loss(LOGITS, "wgan"), -LOGITS)
    np.testing.assert_allclose(gan.d_fake_loss(LOGITS, "wgan"), LOGITS)
    np.testing.assert_allclose(gan.generator_loss(LOGITS, "wgan"), -LOGITS)
    np.testing.assert_allclose(gan.d_real_loss(LOGITS, "hinge"), np.maximum(0, 1 - LOGITS))
    np.testing.assert_allclose(gan.d_fake_loss(LOGITS, "hinge"), np.maximum(0, 1 + LOGITS))
    np.testing.assert_allclose(gan.generator_loss(LOGITS, "hinge"), -LOGITS)
    with pytest.raises(ValueError, match="loss_type"):
        gan.d_real_loss(LOGITS, "lsgan")


@pytest.mark.parametrize("loss_type", ["bce", "wgan", "hinge"])
def test_matching_aware_discriminator_loss(loss_type):
    real, fake, wrong = LOGITS, LOGITS[::-1].copy(), np.array([0.5, -1.0, 2.0, 0.1, -0.4], np.float32)
    r = gan.d_real_loss(real, loss_type).numpy()
    f = gan.d_fake_loss(fake, loss_type).numpy()
    w = gan.d_fake_loss(wrong, loss_type).numpy()
    np.testing.assert_allclose(gan.discriminator_loss(real, fake, None, loss_type), r + f, rtol=1e-6)
    np.testing.assert_allclose(gan.discriminator_loss(real, fake, wrong, loss_type), r + 0.5 * (w + f), rtol=1e-6)


def test_gradient_penalty_on_a_linear_critic_matches_closed_form():
    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(size=[4, 4, 3]).astype(np.float32))
    real = tf.constant(rng.normal(size=[6, 4, 4, 3]).astype(np.float32))
    fake = tf.constant(rng.normal(size=[6, 4, 4, 3]).astype(np.float32))
    eps = tf.constant(rng.uniform(size=[6]).astype(np.float32))

    def critic(x):  # D(x) = <w, x> + 1: the gradient is w everywhere
        return tf.reduce_sum(x * w, axis=[1, 2, 3]) + 1.0

    gp = gan.gradient_penalty(critic, real, fake, eps, weight=10.0).numpy()
    expected = 10.0 * (np.linalg.norm(w.numpy()) - 1.0) ** 2
    assert gp.shape == (6,)
    np.testing.assert_allclose(gp, np.full(6, expected), rtol=1e-4)


def test_gradient_penalty_uses_per_example_interpolates():
    rng = np.random.default_rng(1)
    real = tf.constant(rng.normal(size=[5, 3, 3, 3]).astype(np.float32))
    fake = tf.constant(rng.normal(size=[5, 3, 3, 3]).astype(np.float32))
    eps = tf.constant([0.0, 0.25, 0.5, 0.75, 1.0])

    def critic(x):  # D(x) = ||x||^2 / 2: the gradient at x is x itself
        return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    gp = gan.gradient_penalty(critic, real, fake, eps, weight=1.0).numpy()
    e = eps.numpy()[:, None, None, None]
    x_hat = e * real.numpy() + (1 - e) * fake.numpy()
    expected = (np.linalg.norm(x_hat.reshape(5, -1), axis=1) - 1.0) ** 2
    np.testing.assert_allclose(gp, expected, rtol=1e-4)


def test_gradient_penalty_is_differentiable_for_the_critic():
    w = tf.Variable(tf.fill([2, 2, 3], 0.1))
    real, fake = tf.ones([3, 2, 2, 3]), tf.zeros([3, 2, 2, 3])
    with tf.GradientTape() as tape:
        gp = tf.reduce_mean(gan.gradient_penalty(lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3]), real, fake,
                                                 tf.fill([3], 0.5)))
    grad = tape.gradient(gp, w).numpy()
    # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    norm = np.sqrt(12 * 0.01)
    np.testing.assert_allclose(grad, np.full([2, 2, 3], 20 * (norm - 1) * 0.1 / norm), rtol=1e-4)


def test_interpolate_embeddings_mixes_each_text_with_the_previous_one():
    t = tf.constant([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    out = gan.interpolate_embeddings(t, beta=0.5).numpy()
    np.testing.assert_allclose(out, [[2.5, 2.0], [0.5, 1.0], [2.0, 3.0]])
    assert not np.allclose(out, t.numpy())
    np.testing.assert_allclose(gan.interpolate_embeddings(t, beta=1.0), t)


def test_l1_and_feature_matching():
    fake = tf.constant(np.arange(8, dtype=np.float32).reshape(2, 2, 2, 1))
    real = tf.zeros_like(fake)
    np.testing.assert_allclose(gan.l1_loss(fake, real), [1.5, 5.5])
    real_f = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    fake_f = tf.constant([[0.0, 0.0], [2.0, 2.0]])
    # batch means (2, 3) vs (1, 1): ((1)^2 + (2)^2) / 2
    assert float(gan.feature_matching_loss(real_f, fake_f, global_batch_size=2)) == pytest.approx(2.5)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([real_f, fake_f])
        value = gan.feature_matching_loss(real_f, fake_f, 2)
    assert tape.gradient(value, real_f) is None  # real features are not differentiated
    assert tape.gradient(value, fake_f) is not None
