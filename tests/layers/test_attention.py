"""WordAttention (AttnGAN) and SelfAttention (SAGAN) of t2i_tf.layers.attention."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.layers.attention import SelfAttention, WordAttention

LENGTHS = [3, 5]  # caption 0 has two padding words


def _inputs(channels=6, word_dim=7, size=4, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(2, size, size, channels)).astype("float32")
    words = rng.normal(size=(2, 5, word_dim)).astype("float32")
    return h, words, tf.sequence_mask(LENGTHS, 5)


def test_word_attention_is_a_masked_softmax_over_projected_words():
    layer = WordAttention(6)
    h, words, mask = _inputs()
    context, attention = layer(h, words, mask)
    context, attention = context.numpy(), attention.numpy()
    assert context.shape == (2, 4, 4, 6) and attention.shape == (2, 4, 4, 5)
    # Sums to 1 over real words; exactly 0 on padding words.
    np.testing.assert_allclose(attention.sum(-1), 1.0, rtol=1e-5)
    assert np.all(attention[0, ..., 3:] == 0.0) and np.all(attention[0, ..., :3] > 0)
    # The same computation by hand.
    e = words @ layer.project.kernel.numpy()  # [N, T, C]
    scores = np.einsum("nyxc,ntc->nyxt", h, e)
    scores = np.where(mask.numpy()[:, None, None, :], scores, -np.inf)
    expected = np.exp(scores - scores.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(attention, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(context, np.einsum("nyxt,ntc->nyxc", expected, e), rtol=1e-4, atol=1e-5)
    assert not any(v.path.endswith("bias") for v in layer.weights)


def test_padding_words_change_nothing_and_real_words_do():
    layer = WordAttention(6)
    h, words, mask = _inputs()
    context, attention = (t.numpy() for t in layer(h, words, mask))
    padded = words.copy()
    padded[0, 3:] = 100.0 * np.random.default_rng(1).normal(size=padded[0, 3:].shape)
    c2, a2 = (t.numpy() for t in layer(h, padded, mask))
    np.testing.assert_array_equal(c2, context)
    np.testing.assert_array_equal(a2, attention)
    real = words.copy()
    real[0, 1] += 3.0
    c3, _ = layer(h, real, mask)
    assert np.abs(c3.numpy()[0] - context[0]).max() > 1e-3
    np.testing.assert_array_equal(c3.numpy()[1], context[1])  # the other caption is untouched


def test_word_attention_without_mask_or_without_real_words():
    layer = WordAttention(6)
    h, words, _ = _inputs()
    c_none, a_none = layer(h, words, None)
    c_all, a_all = layer(h, words, tf.ones([2, 5], tf.bool))
    np.testing.assert_array_equal(c_none.numpy(), c_all.numpy())
    np.testing.assert_allclose(a_none.numpy().sum(-1), 1.0, rtol=1e-5)
    # A caption with no real word: all-zero attention and context, never NaN.
    c_empty, a_empty = layer(h, words, tf.sequence_mask([0, 5], 5))
    assert np.all(a_empty.numpy()[0] == 0.0) and np.all(c_empty.numpy()[0] == 0.0)
    assert np.all(np.isfinite(c_empty.numpy()))
    with pytest.raises(ValueError, match="channels"):
        WordAttention(4)(h, words, None)


def test_word_attention_under_tf_function_matches_eager():
    layer = WordAttention(6)
    h, words, mask = _inputs()
    eager = layer(h, words, mask)[0].numpy()
    graph = tf.function(lambda a, b, m: layer(a, b, m)[0])(h, words, mask).numpy()
    np.testing.assert_allclose(graph, eager, rtol=1e-5, atol=1e-6)


def test_self_attention_starts_as_the_identity():
    layer = SelfAttention()
    x = tf.random.normal([2, 6, 6, 16], seed=1)
    np.testing.assert_array_equal(layer(x, training=True).numpy(), x.numpy())
    assert layer.gamma.numpy() == 0.0 and layer.gamma.trainable
    assert [layer.query.filters, layer.key.filters, layer.value.filters, layer.out.filters] == [2, 2, 8, 16]
    layer.gamma.assign(1.0)
    assert np.abs(layer(x, training=True).numpy() - x.numpy()).max() > 1e-4


def test_self_attention_matches_a_softmax_over_positions():
    layer = SelfAttention(pool_keys=False)
    x = tf.random.normal([2, 4, 4, 8], seed=2)
    layer(x)
    layer.gamma.assign(0.5)
    for conv in (layer.query, layer.key, layer.value, layer.out):  # make the logits and values order 1
        conv.kernel.assign(conv.kernel * 25.0)
    out = layer(x).numpy()
    flat = x.numpy().reshape(2, 16, 8)
    k = {name: getattr(layer, name).kernel.numpy()[0, 0] for name in ("query", "key", "value", "out")}
    logits = (flat @ k["query"]) @ (flat @ k["key"]).transpose(0, 2, 1)  # [N, 16, 16]
    beta = np.exp(logits - logits.max(-1, keepdims=True))
    beta /= beta.sum(-1, keepdims=True)
    expected = flat + 0.5 * (beta @ (flat @ k["value"])) @ k["out"]
    np.testing.assert_allclose(out.reshape(2, 16, 8), expected, rtol=1e-4, atol=1e-5)


def test_self_attention_is_non_local():
    layer = SelfAttention(spectral_norm=True)
    x = tf.random.normal([1, 8, 8, 8], seed=3)
    layer(x)
    layer.gamma.assign(1.0)
    convs = (layer.query, layer.key, layer.value, layer.out)
    assert all(isinstance(c, keras.layers.SpectralNormalization) for c in convs)
    moved = x.numpy().copy()
    moved[0, 0, 0] += 5.0
    a, b = layer(x).numpy(), layer(moved).numpy()
    # 1x1 convs only: the far corner can only see the change through attention (8.8e-4 here, against an
    # attention branch of at most 3e-3 anywhere at init).
    assert np.abs(a[0, 7, 7] - b[0, 7, 7]).max() > 1e-4
    layer.gamma.assign(0.0)
    np.testing.assert_array_equal(layer(moved).numpy()[0, 7, 7], moved[0, 7, 7])
