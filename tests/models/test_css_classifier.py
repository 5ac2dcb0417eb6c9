"""CssClassifier: shapes at any input size, cell locality of the two towers, decoding and the per-cell loss."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.data.css_scene import cell_pos, render_scene
from t2i_tf.data.css_cells import NUM_CODES, encode_object
from t2i_tf.models.css_classifier import CssClassifier, cell_loss, cell_max, ink, logits_to_cells


def _images(objects_per_image, size):
    return tf.constant(np.stack([render_scene(objs, size) for objs in objects_per_image]), tf.float32) / 127.5 - 1.0


def _obj(cell, size="large", color="red", shape="circle"):
    return {"pos": cell_pos(cell), "size": size, "color": color, "shape": shape}


@pytest.mark.parametrize("model_size", [16, 32, 64])
def test_shapes_at_any_input_size(model_size):
    model = CssClassifier(model_size, width=4, hidden_dim=8)
    for input_size in (16, 32, 48, 64):
        out = model(tf.zeros([2, input_size, input_size, 3]), training=False)
        assert out["occupied"].shape == (2, 9)
        assert out["size"].shape == (2, 9, 2) and out["color"].shape == (2, 9, 8) and out["shape"].shape == (2, 9, 3)
        assert out["features"].shape == (2, model.feature_dim) == (2, 20)
        cells = model.predict_cells(tf.zeros([3, input_size, input_size, 3]))
        assert cells.dtype == tf.int64 and cells.shape == (3, 9)
        assert ((cells.numpy() >= 0) & (cells.numpy() < NUM_CODES)).all()
        assert model.features(tf.zeros([1, input_size, input_size, 3])).shape == (1, 20)
    with pytest.raises(ValueError, match="image_size"):
        CssClassifier(8)


def test_ink_sees_objects_not_their_colour():
    assert float(ink(tf.ones([1, 1, 1, 3]))[0, 0, 0, 0]) == 0.0  # +1 everywhere = white
    assert float(ink(-tf.ones([1, 1, 1, 3]))[0, 0, 0, 0]) == 1.0  # black
    img = _images([[_obj(4, color=c)] for c in ("gray", "red", "yellow", "cyan")], 32)
    silhouettes = ink(img).numpy()
    assert set(np.unique(silhouettes)) == {0.0, 1.0}  # rendered scenes: exactly white or ink
    for s in silhouettes[1:]:
        np.testing.assert_array_equal(s, silhouettes[0])  # the same circle in any colour looks the same


def test_cell_max_reads_each_cells_own_region():
    fmap = np.zeros([1, 32, 32, 2], np.float32)
    fmap[0, 1, 30, 0] = 5.0  # top-right cell (2)
    fmap[0, 16, 16, 1] = 3.0  # centre cell (4)
    out = cell_max(tf.constant(fmap)).numpy()[0]
    expected = np.zeros([9, 2], np.float32)
    expected[2, 0], expected[4, 1] = 5.0, 3.0
    np.testing.assert_array_equal(out, expected)


def test_a_cell_is_not_changed_by_an_object_two_cells_away():
    model = CssClassifier(32, width=16, hidden_dim=8)
    base = [_obj(8, "small", "blue", "triangle")]
    a = model(_images([base], 32), training=False)
    b = model(_images([base + [_obj(0, "large", "green", "rectangle")]], 32), training=False)
    for k in ("occupied", "size", "color", "shape"):
        np.testing.assert_allclose(a[k].numpy()[0, 8], b[k].numpy()[0, 8], atol=1e-6, err_msg=k)
        assert not np.allclose(a[k].numpy()[0, 0], b[k].numpy()[0, 0]), k  # but cell 0 itself changes


def _logits(cells):
    """Head logits that decode to ``cells`` (int [N, 9])."""
    cells = np.asarray(cells)
    n = cells.shape[0]
    occ = np.where(cells > 0, 4.0, -4.0).astype(np.float32)
    rest = np.maximum(cells - 1, 0)
    one_hot = lambda idx, k: (np.eye(k, dtype=np.float32)[idx] * 8.0 - 4.0)  # noqa: E731
    return {"occupied": tf.constant(occ), "size": tf.constant(one_hot(rest // 24, 2)),
            "color": tf.constant(one_hot((rest // 3) % 8, 8)), "shape": tf.constant(one_hot(rest % 3, 3)),
            "features": tf.zeros([n, 4])}


def test_decoding_and_loss_follow_the_cell_code():
    cells = np.array([[0, encode_object("large", "red", "circle"), 0, 0, 1, 0, 0, 48, 0],
                      [encode_object("small", "cyan", "triangle")] + [0] * 8], np.int64)
    logits = _logits(cells)
    np.testing.assert_array_equal(logits_to_cells(logits).numpy(), cells)
    right = cell_loss(logits, tf.constant(cells)).numpy()
    wrong_colour = cells.copy()
    wrong_colour[0, 1] = encode_object("large", "blue", "circle")
    assert right.shape == (2,) and (right < 0.05).all()
    assert cell_loss(logits, tf.constant(wrong_colour)).numpy()[0] > right[0] + 0.5
    # Attribute logits of an empty target cell do not matter.
    changed = dict(logits, color=tf.tensor_scatter_nd_update(logits["color"], [[0, 0]], [np.full(8, 3.0, np.float32)]))
    np.testing.assert_allclose(cell_loss(changed, tf.constant(cells)).numpy(), right, rtol=1e-6)
