"""StackGAN Stage-I / Stage-II generators and discriminators."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.models.stackgan import (StageIDiscriminator, StageIGenerator, StageIIDiscriminator, StageIIGenerator,
                                    SyncBatchNorm, check_stage_sizes)


def _relative_change(a, b):
    """Largest change relative to the output scale (outputs are tiny at init with N(0, 0.02) weights)."""
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(a)).max())


@pytest.mark.parametrize("size,ups", [(16, [16, 8]), (32, [16, 8, 4]), (64, [16, 8, 4, 2])])
def test_stage1_generator_shapes_channels_and_tanh_range(size, ups):
    g = StageIGenerator(size, ngf=4, z_dim=6, c_dim=5)
    z, emb, noise = tf.random.normal([3, 6], seed=1), tf.random.normal([3, 7], seed=2), tf.random.normal([3, 5], seed=3)
    images, mu, logvar = g((z, emb, noise), training=True)
    assert images.shape == (3, size, size, 3) and mu.shape == (3, 5) and logvar.shape == (3, 5)
    # 8 ngf at 4x4, then halving, never below ngf / 2 (64 px: the reference's 4, 2, 1, 1/2 ngf).
    assert g.fc.units == 4 * 4 * 8 * 4
    assert [getattr(g, f"up{k}").conv.filters for k in range(g.num_ups)] == ups
    g.to_rgb.kernel.assign(g.to_rgb.kernel * 1e5)  # saturate tanh: values stay within [-1, 1]
    images = g((z, emb, noise), training=True)[0].numpy()
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert (np.abs(images) > 0.99).mean() > 0.5


def test_stage1_generator_channel_floor_beyond_64_px():
    g = StageIGenerator(128, ngf=8, z_dim=4, c_dim=3)
    assert [getattr(g, f"up{k}").conv.filters for k in range(g.num_ups)] == [32, 16, 8, 4, 4]


def test_stage1_generator_depends_on_text_and_z():
    g = StageIGenerator(16, ngf=4, z_dim=6, c_dim=5)
    z = tf.random.normal([2, 6], seed=1)
    emb_a, emb_b = tf.ones([2, 7]), -tf.ones([2, 7])

    def out(z_, emb, noise=None):
        return g((z_, emb, noise), training=False)[0].numpy()

    base = out(z, emb_a)
    # Seeds 0-4 give 3%-12% for the text and ~100% for z.
    assert _relative_change(base, out(z, emb_b)) > 0.01
    assert _relative_change(base, out(-z, emb_a)) > 0.3
    np.testing.assert_array_equal(base, out(z, emb_a))  # no CA noise: deterministic
    np.testing.assert_array_equal(base, out(z, emb_a, tf.zeros([2, 5])))  # zero noise is the same as none
    assert _relative_change(base, out(z, emb_a, 3.0 * tf.ones([2, 5]))) > 0.3  # the noise moves c
    # The text enters only through the CA: with its kernel zeroed the text no longer matters.
    g.ca.fc.kernel.assign(tf.zeros_like(g.ca.fc.kernel))
    np.testing.assert_array_equal(out(z, emb_a), out(z, emb_b))


def test_generators_return_their_ca_statistics():
    g = StageIGenerator(16, ngf=4, z_dim=6, c_dim=5)
    emb = tf.random.normal([2, 7], seed=4)
    _, mu, logvar = g((tf.zeros([2, 6]), emb), training=False)  # a 2-tuple means no CA noise
    _, ca_mu, ca_logvar = g.ca(emb)
    np.testing.assert_array_equal(mu.numpy(), ca_mu.numpy())
    np.testing.assert_array_equal(logvar.numpy(), ca_logvar.numpy())


@pytest.mark.parametrize("s1,s2,ups", [(16, 32, [8, 4, 2]), (16, 64, [8, 4, 2, 1])])
def test_stage2_generator_output_size(s1, s2, ups):
    g = StageIIGenerator(s1, s2, ngf=4, c_dim=5, num_residual=2)
    images, mu, logvar = g((tf.random.uniform([2, s1, s1, 3], -1, 1, seed=1), tf.random.normal([2, 7]),
                            tf.random.normal([2, 5])), training=True)
    assert images.shape == (2, s2, s2, 3) and mu.shape == (2, 5) and logvar.shape == (2, 5)
    assert np.abs(images.numpy()).max() <= 1.0
    assert [getattr(g, f"up{j}").conv.filters for j in range(g.num_ups)] == ups
    assert g.num_residual == 2 and g.res1.block2.conv.filters == 16


def test_stage2_generator_reference_layout_64_to_256():
    g = StageIIGenerator(ngf=8, c_dim=5)
    assert (g.stage1_size, g.image_size, g.num_residual) == (64, 256, 4)  # GAN.R_NUM = 4
    assert [g.enc0.conv.filters, g.enc1.conv.filters, g.enc2.conv.filters, g.joint.conv.filters] == [8, 16, 32, 32]
    # 16x16 -> 256x256: 2 ngf, ngf, ngf / 2, ngf / 4.
    assert [getattr(g, f"up{j}").conv.filters for j in range(g.num_ups)] == [16, 8, 4, 2]
    images, _, _ = g((tf.zeros([1, 64, 64, 3]), tf.zeros([1, 7])), training=False)
    assert images.shape == (1, 256, 256, 3)


def test_stage2_generator_depends_on_stage1_image_and_text():
    g = StageIIGenerator(16, 32, ngf=4, c_dim=5, num_residual=1)
    low = tf.random.uniform([2, 16, 16, 3], -1, 1, seed=2)

    def out(images, emb):
        return g((images, emb, None), training=False)[0].numpy()

    base = out(low, tf.ones([2, 7]))
    # Seeds 0-4: the text moves the output by 75%-170%, the image by 7%-14%.
    assert _relative_change(base, out(low, -tf.ones([2, 7]))) > 0.1
    assert _relative_change(base, out(-low, tf.ones([2, 7]))) > 0.01
    with pytest.raises(ValueError, match=r"\[N, 16, 16, 3\]"):
        g((tf.zeros([2, 32, 32, 3]), tf.ones([2, 7])))


def test_stage2_residual_corrects_the_upsampled_stage1_image():
    g = StageIIGenerator(16, 32, ngf=4, c_dim=5, num_residual=1, residual=True)
    low = tf.random.uniform([2, 16, 16, 3], -0.95, 0.95, seed=3)
    low = tf.concat([low[:, :-1], tf.ones([2, 1, 16, 3])], axis=1)  # a saturated row: atanh is clipped, not inf
    emb = tf.random.normal([2, 7], seed=4)
    up = tf.image.resize(low, [32, 32], method="bilinear").numpy()
    clipped = np.clip(up, -0.999, 0.999)
    g((low, emb, None))

    g.to_rgb.kernel.assign(tf.zeros_like(g.to_rgb.kernel))  # a zero correction gives Stage-I's picture back
    np.testing.assert_allclose(g((low, emb, None), training=False)[0].numpy(), clipped, atol=1e-5)

    g.to_rgb.kernel.assign(tf.random.normal(g.to_rgb.kernel.shape, stddev=0.2, seed=5))
    plain = StageIIGenerator(16, 32, ngf=4, c_dim=5, num_residual=1, residual=False)
    plain((low, emb, None))
    plain.set_weights(g.get_weights())
    drawn = plain((low, emb, None), training=False)[0].numpy().astype(np.float64)  # tanh(correction)
    assert np.abs(drawn).max() < 0.99  # arctanh below reads the correction back accurately
    expected = np.tanh(np.arctanh(drawn) + np.arctanh(clipped))
    got = g((low, emb, None), training=False)[0].numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, atol=2e-4)
    assert np.abs(got - drawn).max() > 0.1  # the option changes the output


def test_stage1_discriminator_one_conditional_logit_per_image():
    d = StageIDiscriminator(32, ndf=4, c_dim=5)
    images = tf.random.uniform([3, 32, 32, 3], -1, 1, seed=3)
    out = d((images, tf.ones([3, 5])), training=True)
    assert set(out) == {"cond", "features"}
    assert out["cond"].shape == (3,) and out["features"].shape == (3, 4, 4, 16)
    assert [getattr(d, f"down{i}").conv.filters for i in range(d.num_downs)] == [4, 8, 16]
    assert d.down0.norm is None and d.down1.norm is not None  # no BN on the first conv
    a = d((images, tf.ones([3, 5])), training=False)["cond"].numpy()
    b = d((images, -tf.ones([3, 5])), training=False)["cond"].numpy()
    assert np.abs(a - b).max() > 1e-4  # the condition matters (seeds 0-4: 3e-3 to 5e-2 at 16 px)
    # And so does the image (compared in training mode, where BN lifts the tiny init activations;
    # seeds 0-4: 0.1-0.7).
    a = d((images, tf.ones([3, 5])), training=True)["cond"].numpy()
    c = d((-images, tf.ones([3, 5])), training=True)["cond"].numpy()
    assert np.abs(a - c).max() > 0.01


def test_stage2_discriminator_cond_uses_the_condition_uncond_does_not():
    d = StageIIDiscriminator(32, ndf=4, c_dim=5)
    images = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=3)
    a = {k: v.numpy() for k, v in d((images, tf.ones([2, 5])), training=False).items()}
    b = {k: v.numpy() for k, v in d((images, -tf.ones([2, 5])), training=False).items()}
    assert set(a) == {"cond", "uncond", "features"}
    assert a["cond"].shape == a["uncond"].shape == (2,)
    assert np.abs(a["cond"] - b["cond"]).max() > 1e-4  # seeds 0-4: 5e-3 to 0.1
    np.testing.assert_array_equal(a["uncond"], b["uncond"])
    np.testing.assert_array_equal(a["features"], b["features"])
    uncond = d((images, tf.ones([2, 5])), training=True)["uncond"].numpy()
    assert np.abs(uncond - d((-images, tf.ones([2, 5])), training=True)["uncond"].numpy()).max() > 0.01


def test_discriminator_gradients_reach_the_right_layers():
    d = StageIIDiscriminator(32, ndf=4, c_dim=5)
    images, cond = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=5), tf.random.normal([2, 5], seed=6)
    with tf.GradientTape(persistent=True) as tape:
        out = d((images, cond), training=True)
        cond_sum, uncond_sum = tf.reduce_sum(out["cond"]), tf.reduce_sum(out["uncond"])
    reached_by = {name: {v.path for v, g in zip(d.trainable_variables, tape.gradient(loss, d.trainable_variables))
                         if g is not None}
                  for name, loss in (("cond", cond_sum), ("uncond", uncond_sum))}
    all_paths = {v.path for v in d.trainable_variables}
    assert reached_by["cond"] == {p for p in all_paths if "uncond_logit" not in p}
    assert reached_by["uncond"] == {p for p in all_paths if "joint" not in p and "/cond_logit" not in p}


@pytest.mark.parametrize("size,downs,reduce", [(16, [2, 4], []), (64, [2, 4, 8, 16], []),
                                                (128, [2, 4, 8, 16, 32], [16]),
                                                (256, [2, 4, 8, 16, 32, 64], [32, 16]),
                                                (512, [2, 4, 8, 16, 32, 64, 64], [32, 16])])
def test_stage2_discriminator_channel_rule(size, downs, reduce):
    d = StageIIDiscriminator(size, ndf=2, c_dim=5)  # 256 px: the reference's ndf .. 32 ndf, then 16, 8 ndf
    assert [getattr(d, f"down{i}").conv.filters for i in range(d.num_downs)] == downs
    assert [getattr(d, f"reduce{i}").conv.filters for i in range(d.num_reduce)] == reduce
    assert d.code_channels == min(downs[-1], 16)


def test_stage2_discriminator_256_px_features_are_8_ndf_at_4x4():
    d = StageIIDiscriminator(ndf=2, c_dim=5)
    out = d((tf.zeros([1, 256, 256, 3]), tf.zeros([1, 5])), training=False)
    assert out["features"].shape == (1, 4, 4, 16) and out["cond"].shape == (1,) and out["uncond"].shape == (1,)


@pytest.mark.filterwarnings("ignore:.*unbuilt state")  # Keras's build-by-tracing meets the same ValueError first
def test_bad_sizes_raise_clear_errors():
    with pytest.raises(ValueError, match=r"stage1_size must be 4 \* 2\^k and at least 16.*got 48"):
        check_stage_sizes(48)
    with pytest.raises(ValueError, match="at least 16.*got 8"):
        check_stage_sizes(8)
    with pytest.raises(ValueError, match=r"stage2_size must be stage1_size \* 2\^m with m >= 1.*got 64"):
        check_stage_sizes(64, 64)
    with pytest.raises(ValueError, match="stage2_size.*got 96"):
        check_stage_sizes(64, 96)
    with pytest.raises(ValueError, match="stage2_size.*got 32"):
        check_stage_sizes(64, 32)
    check_stage_sizes(16)
    check_stage_sizes(16, 32)
    check_stage_sizes(64, 256)
    with pytest.raises(ValueError, match="StageIGenerator image_size.*got 48"):
        StageIGenerator(48, ngf=4)
    with pytest.raises(ValueError, match="StageIDiscriminator image_size.*got 12"):
        StageIDiscriminator(12, ndf=4)
    with pytest.raises(ValueError, match="StageIIDiscriminator image_size.*got 100"):
        StageIIDiscriminator(100, ndf=4)
    with pytest.raises(ValueError, match="stage2_size.*got 48"):
        StageIIGenerator(16, 48, ngf=4)
    with pytest.raises(ValueError, match="takes a tuple"):
        StageIGenerator(16, ngf=4, z_dim=6)(tf.zeros([2, 6]))
    with pytest.raises(ValueError, match=r"condition must be \[N, 5\]"):
        StageIDiscriminator(16, ndf=4, c_dim=5)((tf.zeros([2, 16, 16, 3]), tf.zeros([2, 6])))


def test_models_run_inside_tf_function():
    g = StageIGenerator(16, ngf=4, z_dim=6, c_dim=5)
    d = StageIDiscriminator(16, ndf=4, c_dim=5)
    z, emb, noise = tf.random.normal([2, 6]), tf.random.normal([2, 7]), tf.random.normal([2, 5])

    def step(z, emb, noise):
        images, mu, _ = g((z, emb, noise), training=False)
        return images, d((images, mu), training=False)["cond"]

    eager = step(z, emb, noise)
    graph = tf.function(step)(z, emb, noise)
    for a, b in zip(eager, graph):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_checkpoint_restores_every_variable_and_the_outputs(tmp_path):
    # Stage II: its nested blocks (residual blocks inside the model) are the ones at risk of not being tracked.
    def build():
        return StageIIGenerator(16, 32, ngf=4, c_dim=5, num_residual=1), StageIIDiscriminator(32, ndf=4, c_dim=5)

    low, emb, noise = (tf.random.uniform([4, 16, 16, 3], -1, 1, seed=1), tf.random.normal([4, 7], seed=2),
                       tf.random.normal([4, 5], seed=3))

    def run(models, training):
        g, d = models
        high, mu, _ = g((low, emb, noise), training=training)
        out = d((high, mu), training=training)
        return [high, out["cond"], out["uncond"]]

    models = build()
    run(models, training=True)  # moves the BN statistics away from their initial values
    moving = [v for v in models[0].weights if "res0" in v.path and "moving_mean" in v.path]
    assert moving and max(float(tf.reduce_max(tf.abs(v))) for v in moving) > 0.0
    names = ("g", "d")
    path = tf.train.Checkpoint(**dict(zip(names, models))).write(str(tmp_path / "ckpt"))
    restored = build()
    fresh = run(restored, training=False)
    tf.train.Checkpoint(**dict(zip(names, restored))).read(path).assert_consumed()
    for a, b in zip(models, restored):
        assert len(a.weights) == len(b.weights)
        for va, vb in zip(a.weights, b.weights):
            np.testing.assert_array_equal(va.numpy(), vb.numpy())
    expected, got = run(models, training=False), run(restored, training=False)
    assert any(np.abs(e.numpy() - f.numpy()).max() > 0 for e, f in zip(expected, fresh))  # restoring changed them
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e.numpy(), g.numpy())


def test_paper_preset_conditioning_augmentation_is_stackgans():
    """StackGAN-Pytorch code/model.py:50-54: Linear(1024 -> 2 c_dim) + ReLU, so official weights fit: 262,400
    parameters for c_dim 128 (the StackGAN++ GLU form has twice as many)."""
    from configs import stackgan

    sizes = {}
    for activation in ("relu", "glu"):
        g = StageIGenerator(16, ngf=4, z_dim=8, c_dim=stackgan.PAPER["c_dim"], ca_activation=activation)
        g((tf.zeros([2, 8]), tf.zeros([2, 1024]), None))
        sizes[activation] = g.ca.count_params()
    assert stackgan.PAPER["ca_activation"] == "relu" and sizes["relu"] == 1024 * 256 + 256 == 262_400
    assert sizes["glu"] - sizes["relu"] == 262_400


def test_sync_batchnorm_variance_is_two_pass():
    """Keras' synchronised moments (E[x^2] - E[x]^2 in float32) lose the variance of values far from 0; ours do
    not: training-mode outputs are those of the exact batch statistics (computed in float64)."""
    x = (1000.0 + np.random.default_rng(0).normal(0.0, 0.05, (64, 8))).astype(np.float32)
    mean, var = x.astype(np.float64).mean(0), x.astype(np.float64).var(0)
    exact = (x - mean) / np.sqrt(var + 1e-5)
    ours = SyncBatchNorm(epsilon=1e-5, synchronized=True)
    keras_bn = keras.layers.BatchNormalization(epsilon=1e-5, synchronized=True)
    assert np.abs(ours(x, training=True).numpy() - exact).max() < 1e-2
    assert np.abs(keras_bn(x, training=True).numpy() - exact).max() > 0.1  # what the subclass fixes
    np.testing.assert_allclose(ours.moving_variance.numpy(), 0.99 + 0.01 * var, rtol=1e-3)


@pytest.mark.parametrize("cls,size", [(StageIDiscriminator, 16), (StageIIDiscriminator, 32)])
def test_discriminator_encode_and_heads_are_its_call(cls, size):
    """encode / cond_logits / uncond_logits (the official netD(image), get_cond_logits, get_uncond_logits) compose
    to the same outputs as the call."""
    d = cls(size, ndf=4, c_dim=5)
    images, cond = tf.random.normal([3, size, size, 3], seed=1), tf.random.normal([3, 5], seed=2)
    out = d((images, cond), training=False)
    codes = d.encode(images, training=False)
    np.testing.assert_allclose(codes.numpy(), out["features"].numpy(), rtol=1e-6)
    np.testing.assert_allclose(d.cond_logits(codes, cond, training=False).numpy(), out["cond"].numpy(), rtol=1e-5)
    if "uncond" in out:
        np.testing.assert_allclose(d.uncond_logits(codes).numpy(), out["uncond"].numpy(), rtol=1e-5)
