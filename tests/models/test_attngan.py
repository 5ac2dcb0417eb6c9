"""AttnGAN generator and discriminator (t2i_tf.models.attngan) on tiny sizes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.layers.attention import SelfAttention
from t2i_tf.models.attngan import AttnGanDiscriminator, AttnGanGenerator

Z, C, WORD, SENT, T = 6, 5, 7, 9, 5
LENGTHS = [3, 5, 4]  # caption 0 has two padding words, caption 2 one


def _generator(num_stages=2, **kwargs):
    kwargs.setdefault("base_size", 8)
    kwargs.setdefault("num_residual", 1)
    return AttnGanGenerator(num_stages=num_stages, ngf=4, z_dim=Z, c_dim=C, word_dim=WORD, sentence_dim=SENT, **kwargs)


@pytest.fixture
def g3():
    """A 3-stage generator: 8, 16, 32 px."""
    return _generator(3)


def _inputs(n=3, seed=0, ca_noise=True):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, Z)).astype("float32")
    sentence = rng.normal(size=(n, SENT)).astype("float32")
    words = rng.normal(size=(n, T, WORD)).astype("float32")
    mask = tf.sequence_mask(LENGTHS[:n], T)
    noise = rng.normal(size=(n, C)).astype("float32") if ca_noise else None
    return z, sentence, words, mask, noise


def _np(out):
    return {"images": [i.numpy() for i in out["images"]], "attention": [a.numpy() for a in out["attention"]],
            "mu": out["mu"].numpy(), "logvar": out["logvar"].numpy()}


def _check_shapes(out, num_stages):
    assert [i.shape for i in out["images"]] == [(3, 8 * 2**i, 8 * 2**i, 3) for i in range(num_stages)]
    assert [a.shape for a in out["attention"]] == [(3, 8 * 2**i, 8 * 2**i, T) for i in range(num_stages - 1)]
    assert out["mu"].shape == out["logvar"].shape == (3, C)


def test_three_stage_shapes_and_attention(g3):
    out = _np(g3(_inputs(), training=True))
    _check_shapes(out, 3)
    assert all(np.abs(i).max() <= 1.0 for i in out["images"])
    for att in out["attention"]:  # sums to 1 over real words, exactly 0 on padding words
        np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
        assert np.all(att[0, ..., 3:] == 0.0) and np.all(att[2, ..., 4:] == 0.0)
        assert np.all(att[0, ..., :3] > 0.0) and np.all(att[1] > 0.0)


@pytest.mark.parametrize("num_stages", [1, 2])
def test_generator_shapes_and_range(num_stages):
    g = _generator(num_stages)
    out = _np(g(_inputs(), training=True))
    _check_shapes(out, num_stages)
    for i in range(num_stages):  # huge pre-activations saturate tanh but never leave [-1, 1]
        rgb = getattr(g, f"to_rgb{i}")
        rgb.kernel.assign(rgb.kernel * 1e4)
    images = np.concatenate([i.reshape(-1) for i in _np(g(_inputs(), training=True))["images"]])
    assert images.min() >= -1.0 and images.max() <= 1.0 and (np.abs(images) > 0.99).mean() > 0.5


def test_generator_defaults_follow_the_reference_config():
    g = AttnGanGenerator()  # bird_attn2.yml: GF_DIM 32, Z_DIM 100, CONDITION_DIM 100, R_NUM 2, 256-d text, 3 branches
    assert (g.num_stages, g.base_size, g.ngf, g.z_dim, g.c_dim, g.word_dim, g.sentence_dim) == (3, 64, 32, 100, 100,
                                                                                                 256, 256)
    assert g.image_sizes == [64, 128, 256]
    assert g.init_stage.channels == [512, 256, 128, 64, 32]  # INIT_STAGE_G: 16 ngf at 4x4, halving to ngf at 64
    assert g.init_stage.fc.units == 512 * 4 * 4 * 2
    assert g.stage1.num_residual == 2 and g.stage1.res0.channels == 64 and g.stage1.up.out_channels == 32
    assert not hasattr(g, "stage3")
    # Generalised rule: 4x4 has ngf * min(2^k, 16) channels, halving (or staying at 16 ngf) down to ngf.
    assert _generator(base_size=16).init_stage.channels == [16, 8, 4]
    assert AttnGanGenerator(1, base_size=128, ngf=2).init_stage.channels == [32, 32, 16, 8, 4, 2]
    for bad in (4, 12, 48):
        with pytest.raises(ValueError, match="base_size"):
            AttnGanGenerator(base_size=bad)


def test_padding_words_change_nothing(g3):
    g = g3
    z, sentence, words, mask, noise = _inputs()
    base = _np(g((z, sentence, words, mask, noise), training=True))
    other = words.copy()
    other[0, 3:] = 50.0
    other[2, 4:] = -50.0
    moved = _np(g((z, sentence, other, mask, noise), training=True))
    for key in ("images", "attention"):
        for a, b in zip(base[key], moved[key]):
            np.testing.assert_array_equal(a, b)


def test_real_words_change_later_stages_only(g3):
    g = g3
    z, sentence, words, mask, noise = _inputs()
    base = _np(g((z, sentence, words, mask, noise), training=False))
    other = words.copy()
    other[1, 2] *= -3.0
    moved = _np(g((z, sentence, other, mask, noise), training=False))
    np.testing.assert_array_equal(moved["images"][0], base["images"][0])  # stage 1 sees only sentence + z
    for stage in (1, 2):
        change = np.abs(moved["images"][stage][1] - base["images"][stage][1]).max()
        assert change > 1e-3 * np.abs(base["images"][stage][1]).max()
        np.testing.assert_array_equal(moved["images"][stage][0], base["images"][stage][0])  # inference: per example
    # At init the attention is near uniform (0.2 +- 1e-4), so only ask that caption 1's moved and caption 0's did not.
    assert np.abs(moved["attention"][0][1] - base["attention"][0][1]).max() > 0.0
    np.testing.assert_array_equal(moved["attention"][0][0], base["attention"][0][0])


def test_sentence_and_z_drive_the_first_stage(g3):
    g = g3
    z, sentence, words, mask, noise = _inputs()
    base = g((z, sentence, words, mask, noise), training=False)["images"][0].numpy()
    for changed in ((z + 1.0, sentence), (z, -sentence)):
        out = g((changed[0], changed[1], words, mask, noise), training=False)["images"][0].numpy()
        assert np.abs(out - base).max() > 1e-3 * np.abs(base).max()


def test_conditioning_augmentation_noise(g3):
    g = g3
    z, sentence, words, mask, noise = _inputs()
    det1 = _np(g((z, sentence, words, mask, None), training=False))
    det2 = _np(g((z, sentence, words, mask), training=False))  # ca_noise may be left out
    zero = _np(g((z, sentence, words, mask, np.zeros_like(noise)), training=False))
    noisy = _np(g((z, sentence, words, mask, noise), training=False))
    for a, b, c in zip(det1["images"], det2["images"], zero["images"]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-7)  # None means c = mu
    assert np.abs(noisy["images"][0] - det1["images"][0]).max() > 1e-3 * np.abs(det1["images"][0]).max()
    np.testing.assert_array_equal(noisy["mu"], det1["mu"])
    np.testing.assert_array_equal(noisy["logvar"], det1["logvar"])
    # mu, logvar are the two halves of GLU(Dense(sentence)).
    fc = g.ca.fc
    x = sentence @ fc.kernel.numpy() + fc.bias.numpy()
    glu = x[:, : 2 * C] / (1.0 + np.exp(-x[:, 2 * C :]))
    np.testing.assert_allclose(det1["mu"], glu[:, :C], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(det1["logvar"], glu[:, C:], rtol=1e-5, atol=1e-6)


def test_rgb_skip_adds_the_upsampled_previous_pre_activation():
    g = _generator(3, rgb_skip=True)
    inputs = _inputs()
    g(inputs, training=False)
    for i in (1, 2):
        rgb = getattr(g, f"to_rgb{i}")
        rgb.kernel.assign(tf.zeros_like(rgb.kernel))
    images = _np(g(inputs, training=False))["images"]
    assert np.abs(images[0]).max() < 0.9  # far from saturation: arctanh recovers the pre-activation
    pre = np.arctanh(images[0].astype("float64"))
    for i in (1, 2):
        pre = tf.image.resize(pre, [8 * 2**i] * 2, method="bilinear").numpy()
        np.testing.assert_allclose(images[i], np.tanh(pre), rtol=1e-4, atol=1e-6)
    assert np.abs(images[2]).max() > 0.0
    # Without skips the same zeroed heads give blank (exactly 0) later images.
    plain = _generator(2)
    plain(inputs, training=False)
    plain.to_rgb1.kernel.assign(tf.zeros_like(plain.to_rgb1.kernel))
    images = _np(plain(inputs, training=False))["images"]
    assert np.abs(images[0]).max() > 0.0 and np.all(images[1] == 0.0)


def test_generator_self_attention_placement_and_identity_at_init():
    g = _generator(2, self_attention=True)
    inputs = _inputs()
    base = _np(g(inputs, training=True))
    blocks = [g.init_self_attention, g.stage1.self_attention]
    assert all(isinstance(b, SelfAttention) for b in blocks)
    assert [b.channels for b in blocks] == [4, 8]  # ngf after the init stage, 2 ngf after the concat
    for b in blocks:  # gamma 0 made them identities; make the attention branch order 1
        b.gamma.assign(1.0)
        for conv in (b.query, b.key, b.value, b.out):
            conv.kernel.assign(conv.kernel * 25.0)
    moved = _np(g(inputs, training=True))
    for i in (0, 1):
        assert np.abs(moved["images"][i] - base["images"][i]).max() > 0.05 * np.abs(base["images"][i]).max()
    # Reference sizes: self-attention up to 64x64 inputs only (init output, stage-2 input), not at 128.
    big = AttnGanGenerator(self_attention=True)
    assert big.init_self_attention is not None and big.stage1.self_attention is not None
    assert big.stage2.self_attention is None
    assert AttnGanGenerator().init_self_attention is None


def test_build_from_shapes_matches_the_first_call():
    g, d = _generator(2, self_attention=True), AttnGanDiscriminator(32, ndf=4, sentence_dim=SENT, self_attention=True)
    g.build(((None, Z), (None, SENT), (None, T, WORD), (None, T), (None, C)))
    d.build(((None, 32, 32, 3), (None, SENT)))
    built_g = sorted((v.path, tuple(v.shape)) for v in g.weights)
    built_d = sorted((v.path, tuple(v.shape)) for v in d.weights)
    inputs = _inputs(ca_noise=False)
    eager = _np(g(inputs, training=False))
    d((tf.random.uniform([3, 32, 32, 3], -1, 1, seed=14), inputs[1]), training=False)
    assert sorted((v.path, tuple(v.shape)) for v in g.weights) == built_g  # the call created nothing new
    assert sorted((v.path, tuple(v.shape)) for v in d.weights) == built_d
    fresh_g = _generator(2, self_attention=True)
    fresh_g(inputs, training=False)
    assert len(fresh_g.weights) == len(built_g)
    graph = tf.function(lambda *x: g(x, training=False))(*inputs)  # ca_noise None under tf.function
    for a, b in zip(graph["images"], eager["images"]):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-5, atol=1e-6)


def test_every_generator_variable_gets_a_gradient():
    g = _generator(2, self_attention=True, rgb_skip=True, spectral_norm=True)
    inputs = _inputs()
    with tf.GradientTape() as tape:
        out = g(inputs, training=True)
        loss = sum(tf.reduce_mean(tf.square(i - 0.3)) for i in out["images"]) + tf.reduce_mean(out["logvar"])
    grads = tape.gradient(loss, g.trainable_variables)
    assert g.trainable_variables and all(gr is not None for gr in grads)
    assert sum(isinstance(l, keras.layers.SpectralNormalization) for l in g._flatten_layers()) > 10


@pytest.mark.parametrize("size,code_channels", [(16, 8), (32, 16), (64, 32)])
def test_discriminator_one_cond_and_one_uncond_logit_per_image(size, code_channels):
    d = AttnGanDiscriminator(size, ndf=4, sentence_dim=SENT)
    images = tf.random.uniform([3, size, size, 3], -1, 1, seed=4)
    sentence = tf.random.normal([3, SENT], seed=5)
    out = d((images, sentence), training=True)
    assert sorted(out) == ["cond", "uncond"] and out["cond"].shape == out["uncond"].shape == (3,)
    assert d.encode(images).shape == (3, 4, 4, code_channels)
    # In inference each logit depends on its own image only.
    a = d((images, sentence), training=False)
    b = d((tf.concat([images[:2], -images[2:]], 0), sentence), training=False)
    for key in ("cond", "uncond"):
        np.testing.assert_allclose(a[key].numpy()[:2], b[key].numpy()[:2], rtol=1e-6, atol=1e-7)
        assert a[key].numpy()[2] != b[key].numpy()[2]


def test_discriminator_follows_the_reference_layout():
    d64, d128, d256 = (AttnGanDiscriminator(s) for s in (64, 128, 256))
    assert [getattr(d64, f"down{j}").filters for j in range(4)] == [64, 128, 256, 512]  # encode_image_by_16times
    assert [getattr(d256, f"down{j}").filters for j in range(6)] == [64, 128, 256, 512, 1024, 2048]
    assert (d64.num_squeezes, d128.num_squeezes, d256.num_squeezes) == (0, 1, 2)
    assert [d256.squeeze0.filters, d256.squeeze1.filters] == [1024, 512]  # Block3x3_leakRelu 32 -> 16 -> 8 ndf
    assert d64.code_channels == d128.code_channels == d256.code_channels == 512 == d64.joint.filters
    assert not hasattr(d64, "down0_bn") and hasattr(d64, "down1_bn")  # no BN after the first conv
    assert d64.cond_logits.kernel_size == (4, 4) and d64.cond_logits.padding == "valid" and d64.cond_logits.use_bias
    for bad in (4, 24, 100):
        with pytest.raises(ValueError, match="image_size"):
            AttnGanDiscriminator(bad)


def test_cond_logit_depends_on_the_sentence_and_uncond_does_not():
    d = AttnGanDiscriminator(16, ndf=4, sentence_dim=SENT)
    images = tf.random.uniform([3, 16, 16, 3], -1, 1, seed=6)
    s1, s2 = tf.random.normal([3, SENT], seed=7), tf.random.normal([3, SENT], seed=8)
    for training in (True, False):
        a, b = d((images, s1), training=training), d((images, s2), training=training)
        np.testing.assert_array_equal(a["uncond"].numpy(), b["uncond"].numpy())
        assert np.all(np.abs(a["cond"].numpy() - b["cond"].numpy()) > 1e-6)
    with pytest.raises(ValueError, match="sentence"):
        d((images, tf.zeros([3, SENT + 1])))
    with pytest.raises(ValueError, match="images"):
        d((tf.zeros([3, 32, 32, 3]), s1))


def test_spectral_norm_discriminator():
    d = AttnGanDiscriminator(16, ndf=4, sentence_dim=SENT, spectral_norm=True, self_attention=True)
    images = tf.random.uniform([4, 16, 16, 3], -1, 1, seed=9)
    sentence = tf.random.normal([4, SENT], seed=10)
    d((images, sentence), training=False)
    sublayers = list(d._flatten_layers(include_self=False))
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in sublayers)
    wrapped = [l for l in sublayers if isinstance(l, keras.layers.SpectralNormalization)]
    convs = [l for l in sublayers if isinstance(l, keras.layers.Conv2D)]
    # down0, down1, joint, cond/uncond logits + the self-attention's query/key/value/out: all wrapped.
    assert len(wrapped) == len(convs) == 9
    assert all(getattr(d, name).layer.use_bias for name in ("down0", "down1", "joint"))  # no BN: convs get biases

    def norms():
        return [np.linalg.norm(w.layer.kernel.numpy().reshape(-1, w.layer.kernel.shape[-1]), 2) for w in wrapped]

    before = norms()
    assert max(before) < 0.5  # N(0, 0.02) kernels are far from norm 1 until a training call
    step = tf.function(lambda x, s: d((x, s), training=True))
    for _ in range(30):
        out = step(images, sentence)
    after = norms()
    assert max(after) < 1.02 and min(after) > 0.98, after
    assert np.all(np.isfinite(out["cond"].numpy()))
    d((images, sentence), training=False)
    np.testing.assert_allclose(norms(), after, rtol=1e-6)  # inference leaves the kernels alone


def test_discriminator_self_attention_placement():
    assert AttnGanDiscriminator(32, ndf=2, self_attention=True).attention_after == 0  # 32 -> 16
    assert AttnGanDiscriminator(64, ndf=2, self_attention=True).attention_after == 1  # 64 -> 32 -> 16
    assert AttnGanDiscriminator(16, ndf=2, self_attention=True).attention_after == 0  # 16 -> 8 (middle)
    d = AttnGanDiscriminator(32, ndf=4, sentence_dim=SENT, self_attention=True)
    images, sentence = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=11), tf.random.normal([2, SENT], seed=12)
    base = d((images, sentence), training=False)["uncond"].numpy()
    assert d.self_attention.channels == 4
    d.self_attention.gamma.assign(5.0)
    assert np.all(d((images, sentence), training=False)["uncond"].numpy() != base)


def test_checkpoint_restores_generator_and_discriminator(tmp_path):
    inputs = _inputs()
    g = _generator(2, self_attention=True, rgb_skip=True)
    d = AttnGanDiscriminator(16, ndf=4, sentence_dim=SENT, spectral_norm=True, self_attention=True)
    images = tf.random.uniform([3, 16, 16, 3], -1, 1, seed=13)
    g(inputs, training=True)  # moves BN statistics and spectral-norm state away from their initial values
    d((images, inputs[1]), training=True)
    g.init_self_attention.gamma.assign(0.7)
    path = tf.train.Checkpoint(g=g, d=d).save(str(tmp_path / "ckpt"))
    want_g, want_d = _np(g(inputs, training=False)), d((images, inputs[1]), training=False)

    keras.utils.set_random_seed(99)
    g2 = _generator(2, self_attention=True, rgb_skip=True)
    d2 = AttnGanDiscriminator(16, ndf=4, sentence_dim=SENT, spectral_norm=True, self_attention=True)
    g2(inputs, training=False)
    d2((images, inputs[1]), training=False)
    assert np.abs(_np(g2(inputs, training=False))["images"][1] - want_g["images"][1]).max() > 0
    tf.train.Checkpoint(g=g2, d=d2).restore(path).assert_existing_objects_matched()
    got_g, got_d = _np(g2(inputs, training=False)), d2((images, inputs[1]), training=False)
    for a, b in zip(got_g["images"] + got_g["attention"], want_g["images"] + want_g["attention"]):
        np.testing.assert_array_equal(a, b)
    for key in ("cond", "uncond"):
        np.testing.assert_array_equal(got_d[key].numpy(), want_d[key].numpy())
    assert len(g2.weights) == len(g.weights) and len(d2.weights) == len(d.weights)
