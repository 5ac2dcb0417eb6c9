"""GAN-CLS generator / discriminator, minibatch discrimination and the sentence encoder."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.layers.minibatch_discrimination import MinibatchDiscrimination
from t2i_tf.models.gan_cls import Discriminator, Generator, num_resamplings
from t2i_tf.models.sentence_encoder import (ImageEncoder, SentenceEncoder, matching_accuracy, matching_loss,
                                            normalize_sentence)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_generator_shapes_and_tanh_range(size):
    g = Generator(size, ngf=4, z_dim=6, proj_dim=5)
    z, text = tf.random.normal([3, 6], seed=1), tf.random.normal([3, 20], seed=2)
    out = g((z, text), training=True).numpy()
    assert out.shape == (3, size, size, 3)
    g.to_rgb.kernel.assign(g.to_rgb.kernel * 1e4)  # huge pre-activations saturate tanh but never leave [-1, 1]
    out = g((z, text), training=True).numpy()
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert (np.abs(out) > 0.99).mean() > 0.5
    # Channels: 8 ngf at 4x4, halving, never below ngf.
    assert g.fc.units == 4 * 4 * 32
    assert [getattr(g, f"up{k}").filters for k in range(g.num_ups)] == [16, 8, 4][: num_resamplings(size) - 1]


def test_generator_uses_the_text():
    keras.utils.set_random_seed(0)
    g = Generator(16, ngf=4, z_dim=6, proj_dim=5)
    z = tf.random.normal([2, 6], seed=1)

    def text_effect():
        a = g((z, tf.ones([2, 7])), training=False).numpy()
        b = g((z, -tf.ones([2, 7])), training=False).numpy()
        return np.abs(a - b).max() / np.abs(a).max()

    # At init the outputs are tiny (N(0, 0.02) weights), so compare relative to the output scale;
    # over seeds 0-9 the text moves the image by 1.6%-10% of its largest value.
    assert text_effect() > 5e-3
    g.project.kernel.assign(tf.zeros_like(g.project.kernel))  # cut the text path: the text no longer matters
    assert text_effect() == 0.0


def test_unconditional_models_have_no_text_path():
    g = Generator(16, ngf=4, z_dim=6, conditional=False)
    d = Discriminator(16, ndf=4, conditional=False)
    images = g(tf.random.normal([2, 6]), training=False)
    scores, feats = d(images, training=False)
    assert images.shape == (2, 16, 16, 3) and scores.shape == (2,) and feats.shape == (2, 4, 4, 8)
    assert not any("text" in v.path for v in g.weights + d.weights)
    with pytest.raises(ValueError, match="takes"):
        Generator(16, ngf=4, z_dim=6)(tf.zeros([2, 6]))


@pytest.mark.parametrize("size,channels", [(16, 8), (32, 16), (64, 32)])
def test_discriminator_scores_and_features(size, channels):
    d = Discriminator(size, ndf=4, proj_dim=5)
    images = tf.random.uniform([3, size, size, 3], -1, 1, seed=3)
    scores, feats = d((images, tf.random.normal([3, 11])), training=True)
    assert scores.shape == (3,) and feats.shape == (3, 4, 4, channels)
    assert np.all(np.isfinite(scores.numpy()))


def test_discriminator_score_depends_on_the_text():
    """Every example's score has a non-zero gradient with respect to its own text, and only through the text
    projection: with that projection zeroed the text has no effect at all."""
    keras.utils.set_random_seed(0)
    d = Discriminator(16, ndf=4, proj_dim=5)
    images = tf.random.uniform([2, 16, 16, 3], -1, 1, seed=4)
    text = tf.constant([[1.0, -0.5, 0.25], [-1.0, 0.5, 2.0]])

    def text_gradient():
        with tf.GradientTape() as tape:
            tape.watch(text)
            score = d((images, text), training=False)[0]
        return tape.gradient(score, text).numpy()

    assert (np.abs(text_gradient()).max(axis=1) > 0).all()
    d.project.kernel.assign(tf.zeros_like(d.project.kernel))
    d.project.bias.assign(tf.zeros_like(d.project.bias))
    np.testing.assert_array_equal(text_gradient(), 0.0)


def test_discriminator_norms_and_minibatch_discrimination():
    images = tf.random.uniform([4, 16, 16, 3], -1, 1, seed=5)
    text = tf.random.normal([4, 3])
    layer_norm = Discriminator(16, ndf=4, norm="layer")
    layer_norm((images, text))
    assert not any("moving" in v.path for v in layer_norm.weights)  # no batch statistics for WGAN-GP
    mbd = Discriminator(16, ndf=4, minibatch_discrimination=True, mbd_kernels=5, mbd_kernel_dim=2)
    scores, _ = mbd((images, text), training=True)
    assert scores.shape == (4,)
    assert mbd.mbd.kernel.shape == (4 * 4 * 8, 10)
    with pytest.raises(ValueError, match="norm"):
        Discriminator(16, ndf=4, norm="spectral")


def test_invalid_image_size():
    with pytest.raises(ValueError, match="image_size"):
        Generator(48)
    with pytest.raises(ValueError, match="image_size"):
        Discriminator(4)


def test_checkpoint_holds_every_variable_including_batch_statistics(tmp_path):
    g = Generator(16, ngf=4, z_dim=6)
    d = Discriminator(16, ndf=4)
    z, text = tf.random.normal([4, 6]), tf.random.normal([4, 3])
    d((g((z, text), training=True), text), training=True)  # moves BN statistics away from their init
    path = tf.train.Checkpoint(g=g, d=d).write(str(tmp_path / "ckpt"))
    g2, d2 = Generator(16, ngf=4, z_dim=6), Discriminator(16, ndf=4)
    d2((g2((z, text)), text))
    tf.train.Checkpoint(g=g2, d=d2).read(path).assert_consumed()
    for a, b in zip(g.weights + d.weights, g2.weights + d2.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_minibatch_discrimination_measures_closeness_to_the_batch():
    layer = MinibatchDiscrimination(num_kernels=3, kernel_dim=2)
    same = tf.ones([4, 5])
    out = layer(same).numpy()
    assert out.shape == (4, 8)
    np.testing.assert_allclose(out[:, :5], 1.0)
    np.testing.assert_allclose(out[:, 5:], 4.0, rtol=1e-6)  # every example equals all 4: sum of exp(0)
    far = tf.constant(np.eye(4, 5, dtype=np.float32) * 1e4)
    np.testing.assert_allclose(layer(far).numpy()[:, 5:], 1.0, atol=1e-3)  # only itself is close


def test_sentence_encoder_ignores_padding_length():
    keras.utils.set_random_seed(0)
    enc = SentenceEncoder(vocab_size=10, embed_dim=4, hidden_dim=3, out_dim=5)
    short = tf.constant([[2, 3, 4, 0], [5, 0, 0, 0]], tf.int64)
    long = tf.concat([short, tf.zeros([2, 5], tf.int64)], axis=1)
    a, b = enc(short).numpy(), enc(long).numpy()
    assert a.shape == (2, 5)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.abs(a[0] - a[1]).max() > 1e-4
    assert ImageEncoder(16, width=4, out_dim=5)(tf.zeros([2, 16, 16, 3])).shape == (2, 5)


def test_normalize_sentence_fixes_the_norm():
    x = tf.constant([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.1, 0.0]])
    np.testing.assert_allclose(np.linalg.norm(normalize_sentence(x).numpy(), axis=1), [2.0, 2.0], rtol=1e-6)


def test_matching_loss_and_accuracy():
    feats = tf.constant(np.eye(4, dtype=np.float32))
    good = matching_loss(feats, feats, gamma=2.0).numpy()
    # Own pair cosine 1, others 0: -log(e^2 / (e^2 + 3)) for both directions.
    np.testing.assert_allclose(good, np.full(4, -np.log(np.exp(2) / (np.exp(2) + 3))), rtol=1e-5)
    shuffled = tf.roll(feats, 1, axis=0)
    assert matching_loss(feats, shuffled).numpy().min() > 5.0
    assert float(matching_accuracy(feats, feats)) == 1.0
    assert float(matching_accuracy(feats, shuffled)) == 0.0


def test_reed_residual_generator_is_the_plain_one_plus_its_residual_branches():
    """With each branch's last BatchNorm zeroed (gamma = beta = 0) a block is relu(x + 0): the plain generator."""
    keras.utils.set_random_seed(0)
    plain = Generator(32, ngf=4, z_dim=6, proj_dim=5)
    reed = Generator(32, ngf=4, z_dim=6, proj_dim=5, reed_residual=True)
    z, text = tf.random.normal([3, 6], seed=1), tf.random.normal([3, 7], seed=2)
    plain((z, text)), reed((z, text))
    # Reed (main_cls_int.lua:114-150): blocks after the 4x4 map (8 ngf, inner 2 ngf) and the 8x8 map (4 ngf, inner ngf)
    assert [(b.conv_a.filters, b.conv_c.filters) for b in (reed.res0, reed.res1)] == [(8, 32), (4, 16)]
    assert reed.res0.conv_b.kernel.shape == (3, 3, 8, 8)
    for layer in plain.layers:
        reed.get_layer(layer.name).set_weights(layer.get_weights())
    a = plain((z, text), training=False).numpy()
    b = reed((z, text), training=False).numpy()
    assert np.abs(a - b).max() > 1e-3 * np.abs(a).max()  # the branches change the image
    for block in (reed.res0, reed.res1):
        block.norm_c.gamma.assign(tf.zeros_like(block.norm_c.gamma))
        block.norm_c.beta.assign(tf.zeros_like(block.norm_c.beta))
    np.testing.assert_allclose(reed((z, text), training=False).numpy(), a, rtol=1e-5, atol=1e-6)


def test_reed_residual_discriminator_layers_follow_main_cls_int():
    """D at 64 px (main_cls_int.lua:172-218): downs ndf..8 ndf, a 4x4 block 8 ndf -> 2 ndf -> 2 ndf -> 8 ndf, the text
    projection Linear -> BatchNorm -> LeakyReLU, then joint 1x1 and the 4x4 logit; no activation after downs 2 and 3."""
    ndf = 4
    d = Discriminator(64, ndf=ndf, proj_dim=5, reed_residual=True)
    images, text = tf.random.normal([4, 64, 64, 3], seed=3), tf.random.normal([4, 7], seed=4)
    scores, features = d((images, text), training=True)
    assert scores.shape == (4,) and features.shape == (4, 4, 4, 8 * ndf)
    kernels = [getattr(d, f"down{k}").kernel.shape for k in range(4)]
    assert kernels == [(4, 4, 3, ndf), (4, 4, ndf, 2 * ndf), (4, 4, 2 * ndf, 4 * ndf), (4, 4, 4 * ndf, 8 * ndf)]
    assert [d.res.conv_a.kernel.shape, d.res.conv_b.kernel.shape, d.res.conv_c.kernel.shape] == [
        (1, 1, 8 * ndf, 2 * ndf), (3, 3, 2 * ndf, 2 * ndf), (3, 3, 2 * ndf, 8 * ndf)]
    assert isinstance(d.project_norm, keras.layers.BatchNormalization)
    assert d.joint.kernel.shape == (1, 1, 8 * ndf + 5, 8 * ndf) and d.logit.kernel.shape == (4, 4, 8 * ndf, 1)
    # Down 2 has no activation: down 3 reads the training-mode BatchNorm output itself (mean 0 per channel, beta = 0);
    # after a LeakyReLU (the plain D) that mean is clearly positive.

    def input_mean_of_down3(model):
        seen, call = {}, model.down3.call

        def spy(x):
            seen["x"] = x
            return call(x)

        model.down3.call = spy
        model((images, text), training=True)
        return float(tf.reduce_mean(seen["x"]))

    assert abs(input_mean_of_down3(d)) < 1e-3
    assert input_mean_of_down3(Discriminator(64, ndf=ndf, proj_dim=5)) > 0.1
    plain = Discriminator(64, ndf=ndf, proj_dim=5)
    assert not hasattr(plain, "res") and not hasattr(plain, "project_norm")
