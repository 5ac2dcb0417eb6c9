"""DAMSM text and image encoders: shapes, padding invariance, final states, checkpoints, gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.errors import UserError
from t2i_tf.losses.damsm import damsm_loss
from t2i_tf.models.damsm import DamsmImageEncoder, DamsmTextEncoder, token_mask

TOKENS = np.array([[5, 3, 8, 2, 0, 0], [1, 4, 0, 0, 0, 0], [7, 7, 6, 9, 3, 2]], np.int32)


def _text_encoder():
    return DamsmTextEncoder(vocab_size=12, embed_dim=8, hidden_dim=5)


def test_text_encoder_shapes_and_zero_padding():
    enc = _text_encoder()
    words, sentence = enc(tf.constant(TOKENS), training=False)
    assert words.shape == (3, 6, 10) and sentence.shape == (3, 10)
    mask = token_mask(tf.constant(TOKENS)).numpy()
    np.testing.assert_array_equal(mask, TOKENS != 0)
    assert np.all(words.numpy()[~mask] == 0)
    assert np.all(np.abs(words.numpy()[mask]).sum(-1) > 0)


def test_text_encoder_sentence_is_final_states_of_both_directions():
    """Forward half = forward output at the last real token; backward half = backward output at the
    first token (what the reference's h_n of a packed sequence holds)."""
    enc = _text_encoder()
    words, sentence = enc(tf.constant(TOKENS), training=False)
    words, sentence = words.numpy(), sentence.numpy()
    for n, length in enumerate((TOKENS != 0).sum(1)):
        np.testing.assert_allclose(sentence[n, :5], words[n, length - 1, :5], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sentence[n, 5:], words[n, 0, 5:], rtol=1e-5, atol=1e-6)


def test_text_encoder_padding_does_not_change_outputs():
    enc = _text_encoder()
    words, sentence = enc(tf.constant(TOKENS), training=False)
    padded = np.concatenate([TOKENS, np.zeros((3, 4), np.int32)], axis=1)
    words_p, sentence_p = enc(tf.constant(padded), training=False)
    np.testing.assert_allclose(sentence_p.numpy(), sentence.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(words_p.numpy()[:, :6], words.numpy(), rtol=1e-5, atol=1e-6)
    assert np.all(words_p.numpy()[:, 6:] == 0)
    # the short caption alone, unpadded, gives the same as inside the padded batch
    words_1, sentence_1 = enc(tf.constant(TOKENS[1:2, :2]), training=False)
    np.testing.assert_allclose(sentence_1.numpy()[0], sentence.numpy()[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(words_1.numpy()[0], words.numpy()[1, :2], rtol=1e-5, atol=1e-6)


def test_text_encoder_dropout_only_in_training():
    enc = _text_encoder()
    a = enc(tf.constant(TOKENS), training=False)[1].numpy()
    b = enc(tf.constant(TOKENS), training=False)[1].numpy()
    c = enc(tf.constant(TOKENS), training=True)[1].numpy()
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 1e-4


@pytest.mark.parametrize("size,regions", [(16, 4), (32, 4), (64, 8)])
def test_cnn_image_encoder_shapes(size, regions):
    enc = DamsmImageEncoder(size, out_dim=12, width=4)
    reg, glob = enc(tf.random.uniform([2, size, size, 3], -1, 1), training=True)
    assert reg.shape == (2, regions, regions, 12) and glob.shape == (2, 12)
    assert enc.region_size == regions
    bns = [v for v in enc.variables if "moving_mean" in v.path]
    assert len(bns) == enc.num_region_convs + enc.num_global_convs - 1  # BatchNorm from the second conv
    blocks = [getattr(enc, f"block{k}") for k in range(enc.num_region_convs + enc.num_global_convs)]
    norms = [[layer for layer in b.layers if isinstance(layer, keras.layers.BatchNormalization)] for b in blocks]
    assert [len(n) for n in norms] == [0] + [1] * (len(blocks) - 1)
    assert all(n[0].synchronized for n in norms[1:])


def test_cnn_image_encoder_checkpoint_roundtrip(tmp_path):
    images = tf.random.uniform([2, 32, 32, 3], -1, 1)
    enc = DamsmImageEncoder(32, out_dim=8, width=4)
    enc(images, training=True)  # moves the BatchNorm statistics too
    want = enc(images, training=False)
    path = tf.train.Checkpoint(model=enc).write(str(tmp_path / "ckpt"))
    other = DamsmImageEncoder(32, out_dim=8, width=4)
    other(images, training=False)
    assert np.max(np.abs(other(images, training=False)[1].numpy() - want[1].numpy())) > 1e-4
    tf.train.Checkpoint(model=other).read(path).assert_consumed()
    for a, b in zip(other(images, training=False), want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_gradient_reaches_both_encoders():
    text = _text_encoder()
    image = DamsmImageEncoder(16, out_dim=10, width=4)
    tokens = tf.constant(TOKENS)
    images = tf.random.uniform([3, 16, 16, 3], -1, 1)
    with tf.GradientTape() as tape:
        words, sentence = text(tokens, training=True)
        regions, glob = image(images, training=True)
        loss = tf.reduce_mean(damsm_loss(regions, glob, words, sentence, token_mask(tokens), None)["total"])
    variables = text.trainable_variables + image.trainable_variables
    grads = tape.gradient(loss, variables)
    assert len(text.trainable_variables) >= 4 and len(image.trainable_variables) >= 8
    for v, g in zip(variables, grads):
        assert g is not None, v.path
        assert float(tf.norm(tf.convert_to_tensor(g))) > 0, v.path


def test_inception_backbone_random_init_gives_17x17_regions():
    enc = DamsmImageEncoder(32, out_dim=16, backbone="inception_v3", inception_weights=None)
    reg, glob = enc(tf.random.uniform([1, 32, 32, 3], -1, 1), training=True)
    assert reg.shape == (1, 17, 17, 16) and glob.shape == (1, 16)
    mixed_6e, mixed_7c = enc.inception(tf.zeros([1, 299, 299, 3]))
    assert tuple(mixed_6e.shape[1:]) == (17, 17, 768) and tuple(mixed_7c.shape[1:]) == (8, 8, 2048)
    # frozen: only the two projection heads train (1x1 conv kernel; dense kernel + bias)
    assert sorted(tuple(v.shape) for v in enc.trainable_variables) == sorted([(1, 1, 768, 16), (2048, 16), (16,)])
    # torchvision's Inception-v3 up to Mixed_7c: 21,820,000 weights (BN scale included, no fc / AuxLogits)
    assert sum(int(np.prod(v.shape)) for v in enc.inception.weights) == 21_820_000  # = the official state dict without emb_*


def test_inception_batch_stats_mode_uses_batch_statistics_only_when_asked():
    x = tf.random.stateless_uniform([2, 75, 75, 3], (1, 2), -1, 1)
    frozen = DamsmImageEncoder(75, out_dim=4, backbone="inception_v3")
    frozen(x)
    bn = frozen.inception.Conv2d_1a_3x3.bn
    before = bn.moving_mean.numpy().copy()
    a, _ = frozen(x, training=True)
    b, _ = frozen(x, training=False)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)  # running statistics in both calls
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)
    batch = DamsmImageEncoder(75, out_dim=4, backbone="inception_v3", batch_stats=True)
    batch(x)
    for src, dst in zip(frozen.weights, batch.weights):
        dst.assign(src)
    c, _ = batch(x, training=True)
    assert float(tf.reduce_max(tf.abs(c - b))) > 1e-3  # batch statistics
    assert not np.allclose(batch.inception.Conv2d_1a_3x3.bn.moving_mean.numpy(), before)  # running stats moved
    assert len(batch.trainable_variables) == 3


def test_inception_weights_path_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        DamsmImageEncoder(32, backbone="inception_v3", inception_weights=str(tmp_path / "missing.pth"))
    with pytest.raises(UserError, match="does not exist"):
        DamsmImageEncoder(32, backbone="keras_inception_v3", inception_weights=str(tmp_path / "missing.h5"))
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an h5 file")
    with pytest.raises(UserError, match="could not load InceptionV3"):
        DamsmImageEncoder(32, backbone="keras_inception_v3", inception_weights=str(junk))
    with pytest.raises(UserError):
        DamsmImageEncoder(32, backbone="inception_v3", inception_weights=str(junk))
    with pytest.raises(UserError, match="backbone"):
        DamsmImageEncoder(32, backbone="vgg")
