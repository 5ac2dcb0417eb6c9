"""TIRG model shapes, compositions and the normalisation layer."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.models.tirg import COMPOSITIONS, ComposedRetrievalModel, ScaledL2Normalization


def _model(composition, **kw):
    return ComposedRetrievalModel(
        vocab_size=12, composition=composition, embed_dim=8, image_width=4, image_blocks=(1, 1),
        image_stem="small", text_embed_dim=6, text_hidden_dim=8, **kw,
    )


@pytest.mark.parametrize("composition", COMPOSITIONS)
def test_shapes_and_norm(composition):
    m = _model(composition)
    images = tf.random.uniform([3, 16, 16, 3], -1, 1)
    tokens = tf.constant([[2, 3, 0], [4, 0, 0], [5, 6, 7]], tf.int64)
    q, t = m((images, tokens, images), training=False)
    assert q.shape == (3, 8) and t.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(q.numpy(), axis=1), 4.0, rtol=1e-4)  # init scale 4.0


def test_text_changes_query_except_imgonly():
    images = tf.random.uniform([2, 16, 16, 3], -1, 1)
    a = tf.constant([[2, 3], [2, 3]], tf.int64)
    b = tf.constant([[4, 5], [4, 5]], tf.int64)
    for composition in ("tirg", "concat", "textonly", "tirg_lastconv"):
        m = _model(composition)
        assert not np.allclose(m.compose(images, a).numpy(), m.compose(images, b).numpy()), composition
    m = _model("imgonly")
    np.testing.assert_allclose(m.compose(images, a).numpy(), m.compose(images, b).numpy())


def test_padding_does_not_change_text_feature():
    m = _model("textonly")
    images = tf.zeros([1, 16, 16, 3])
    short = m.compose(images, tf.constant([[2, 3]], tf.int64)).numpy()
    padded = m.compose(images, tf.constant([[2, 3, 0, 0, 0]], tf.int64)).numpy()
    np.testing.assert_allclose(short, padded, rtol=1e-5, atol=1e-6)


def test_tirg_initial_weights_follow_paper():
    m = _model("tirg")
    m.compose(tf.zeros([2, 16, 16, 3]), tf.ones([2, 2], tf.int64))
    np.testing.assert_allclose(m.composer.weights_gr.numpy(), [1.0, 10.0])


def test_scaled_l2_normalization_is_learnable():
    layer = ScaledL2Normalization(2.0)
    x = tf.constant([[3.0, 4.0]])
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = tf.reduce_sum(y)
    np.testing.assert_allclose(y.numpy(), [[1.2, 1.6]], rtol=1e-6)
    assert tape.gradient(loss, layer.scale).numpy() == pytest.approx(1.4)


def test_unknown_composition():
    with pytest.raises(ValueError, match="composition must be one of"):
        _model("sum")


@pytest.mark.parametrize("composition", COMPOSITIONS)
def test_checkpoint_holds_every_model_variable(composition, tmp_path):
    """Every variable (BN statistics included) is saved under the model, and restores."""
    m = _model(composition)
    images = tf.random.uniform([2, 16, 16, 3], -1, 1)
    m((images, tf.ones([2, 3], tf.int64), images), training=True)
    path = tf.train.Checkpoint(model=m).save(str(tmp_path / "ckpt"))
    saved = [n for n, _ in tf.train.list_variables(path) if n.startswith("model/")]
    model_vars = [v for v in m.variables if "seed_generator" not in v.path]  # dropout RNG state
    assert len(saved) == len(model_vars)
    fresh = _model(composition)
    fresh((images, tf.ones([2, 3], tf.int64), images), training=False)
    tf.train.Checkpoint(model=fresh).restore(path).assert_consumed()
    for a, b in zip(model_vars, [v for v in fresh.variables if "seed_generator" not in v.path]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_torch_initialize_draws_pytorch_distributions():
    """weight_init=torch: torchvision's ResNet conv init, PyTorch's Linear / Embedding / LSTM defaults, seeded."""
    from t2i_tf.models.tirg import torch_initialize

    def built(seed):
        m = ComposedRetrievalModel(vocab_size=50, composition="tirg", embed_dim=64, image_width=16,
                                   image_blocks=(1, 1), text_embed_dim=32, text_hidden_dim=64)
        x = tf.zeros([2, 32, 32, 3])
        m((x, tf.ones([2, 3], tf.int64), x))
        torch_initialize(m, seed)
        return m

    m = built(0)
    stem = m.image_encoder.stem_conv.kernel.numpy()  # (7, 7, 3, 16): std sqrt(2 / (16 * 49))
    assert stem.std() == pytest.approx(np.sqrt(2 / (16 * 49)), rel=0.1)
    fc1 = m.composer.res_fc1.kernel.numpy()  # Linear(128, 128): U(+-1/sqrt(128))
    assert np.abs(fc1).max() <= 1 / np.sqrt(128) and np.abs(fc1).max() > 0.95 / np.sqrt(128)
    assert m.text_encoder.embedding.embeddings.numpy().std() == pytest.approx(1.0, rel=0.1)
    bias = m.text_encoder.lstm.cell.bias.numpy()  # b_ih + b_hh, each U(+-1/8)
    assert np.abs(bias).max() <= 2 / 8 and np.abs(bias).max() > 1 / 8
    np.testing.assert_allclose(m.composer.weights_gr.numpy(), [1.0, 10.0])
    np.testing.assert_array_equal(stem, built(0).image_encoder.stem_conv.kernel.numpy())
    assert not np.array_equal(stem, built(1).image_encoder.stem_conv.kernel.numpy())
