"""CSS cell codes and the semantic scores (cell / object / scene accuracy, GeNeVA-style object F1, domain FID)."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.data.css_scene import COLORS, SHAPES, SIZES, cell_pos
from t2i_tf.data import css_cells as cc
from t2i_tf.errors import UserError
from t2i_tf.eval.css_semantic import domain_fid, load_css_classifier, semantic_scores


def test_codes_round_trip_and_follow_the_documented_rule():
    assert cc.NUM_CODES == 49 and cc.EMPTY == 0
    assert cc.encode_object("large", "red", "circle") == 1 + (1 * 8 + 1) * 3 + 1 == 29
    assert cc.encode_object("small", "gray", "rectangle") == 1
    assert cc.encode_object("large", "yellow", "triangle") == 48
    seen = set()
    for size in SIZES:
        for color in COLORS:
            for shape in SHAPES:
                code = cc.encode_object(size, color, shape)
                assert cc.decode_object(code) == (size, color, shape)
                seen.add(code)
    assert seen == set(range(1, 49))
    assert cc.decode_object(0) is None
    with pytest.raises(ValueError, match="out of range"):
        cc.decode_object(49)
    with pytest.raises(ValueError, match="unknown object"):
        cc.encode_object("huge", "red", "circle")


def test_factors_agree_for_numpy_and_tf():
    codes = np.arange(49, dtype=np.int64).reshape(7, 7)
    np_f = cc.code_factors(codes)
    tf_f = cc.code_factors(tf.constant(codes))
    for a, b in zip(np_f, tf_f):
        np.testing.assert_array_equal(a, b.numpy())
    assert not np_f[0][0, 0] and np_f[0][0, 1:].all()  # only code 0 is empty
    assert all(int(f[0, 0]) == 0 for f in np_f[1:])  # an empty cell's attributes read 0
    np.testing.assert_array_equal(cc.factors_code(*np_f), codes)
    np.testing.assert_array_equal(cc.factors_code(*tf_f).numpy(), codes)


def test_scene_cells_of_an_object_list_and_back():
    objs = [{"pos": cell_pos(2), "size": "large", "color": "red", "shape": "circle"},
            {"pos": (0.8, 0.1), "size": "small", "color": "blue", "shape": "triangle"}]  # bottom-left: cell 6
    cells = cc.scene_cells(objs)
    assert cells == [0, 0, 29, 0, 0, 0, cc.encode_object("small", "blue", "triangle"), 0, 0]
    back = cc.cells_objects(cells)
    got = [(o["size"], o["color"], o["shape"]) for o in back]
    assert got == [("large", "red", "circle"), ("small", "blue", "triangle")]
    assert cc.scene_cells(back) == cells
    assert cc.scene_cells([]) == [0] * 9
    with pytest.raises(ValueError, match="cell 2"):
        cc.scene_cells(objs + [{"pos": (0.1, 0.9), "size": "small", "color": "gray", "shape": "circle"}])


def test_combo_mask_marks_held_out_combinations():
    codes = np.array([[0, cc.encode_object("large", "red", "circle"), cc.encode_object("small", "red", "circle"),
                       cc.encode_object("large", "red", "triangle"), 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(cc.combo_mask(codes, [("red", "circle")])[0, :4], [False, True, True, False])


def _scene(**cells):
    """9 codes from cell=(size, colour, shape) keywords like c0=("large", "red", "circle")."""
    out = [0] * 9
    for k, obj in cells.items():
        out[int(k[1:])] = cc.encode_object(*obj)
    return out


def test_perfect_prediction_scores_one_everywhere():
    rng = np.random.default_rng(0)
    target = np.where(rng.random([20, 9]) < 0.4, rng.integers(1, 49, [20, 9]), 0)
    scores = semantic_scores(target, target)
    assert scores and all(v == 1.0 for v in scores.values()), scores


def test_hand_made_case_with_known_precision_recall_f1():
    target = np.array([_scene(c0=("large", "red", "circle"), c4=("small", "blue", "triangle"),
                              c8=("large", "green", "rectangle")),
                       _scene(c1=("small", "gray", "circle"))])
    pred = np.array([_scene(c0=("large", "red", "circle"),  # right
                            c4=("small", "cyan", "triangle"),  # wrong colour
                            c8=("small", "green", "rectangle"),  # wrong size only
                            c6=("large", "gray", "circle")),  # not in the target
                     _scene(c1=("small", "gray", "circle"))])  # right
    s = semantic_scores(pred, target)
    # objects: 5 predicted, 4 in the targets, 2 identical (image 0 cell 0, image 1 cell 1)
    assert s["object_precision"] == pytest.approx(2 / 5)
    assert s["object_recall"] == pytest.approx(2 / 4)
    assert s["object_f1"] == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    assert s["cell_accuracy"] == pytest.approx(15 / 18)  # image 0: cells 4, 6, 8 wrong
    assert s["scene_accuracy"] == 0.5
    assert s["occupancy_accuracy"] == pytest.approx(17 / 18)  # only cell 6 of image 0
    assert s["size_accuracy"] == pytest.approx(3 / 4) and s["color_accuracy"] == pytest.approx(3 / 4)
    assert s["shape_accuracy"] == 1.0
    # Ignoring size, the green rectangle counts: 3 true positives.
    assert s["object_precision_ignore_size"] == pytest.approx(3 / 5)
    assert s["object_recall_ignore_size"] == pytest.approx(3 / 4)
    assert s["cell_accuracy_ignore_size"] == pytest.approx(16 / 18)


def test_empty_scenes():
    empty = np.zeros([3, 9], np.int64)
    assert all(v == 1.0 for v in semantic_scores(empty, empty).values())
    busy = empty.copy()
    busy[0, 4] = 7
    missed = semantic_scores(empty, busy)  # nothing predicted, one object asked for
    assert missed["object_precision"] == 1.0 and missed["object_recall"] == 0.0 and missed["object_f1"] == 0.0
    assert missed["cell_accuracy"] == pytest.approx(26 / 27) and missed["scene_accuracy"] == pytest.approx(2 / 3)
    invented = semantic_scores(busy, empty)  # an object where the scene is empty
    assert invented["object_precision"] == 0.0 and invented["object_recall"] == 1.0 and invented["object_f1"] == 0.0


def test_bad_inputs():
    with pytest.raises(UserError, match=r"\[N, 9\]"):
        semantic_scores(np.zeros([2, 8], np.int64), np.zeros([2, 8], np.int64))
    with pytest.raises(UserError, match="differ"):
        semantic_scores(np.zeros([2, 9], np.int64), np.zeros([3, 9], np.int64))


def test_domain_fid():
    rng = np.random.default_rng(1)
    real = rng.normal(size=[2000, 4])
    assert domain_fid(real, real) == pytest.approx(0.0, abs=1e-9)
    assert domain_fid(real, real + np.array([3.0, 0, 0, 0])) == pytest.approx(9.0, rel=1e-6)  # ||mu shift||^2


def test_loader_needs_a_trained_workdir(tmp_path):
    with pytest.raises(UserError, match="has no config.json: train one first"):
        load_css_classifier(str(tmp_path))


def test_object_recall_is_split_by_held_out_colour_shape():
    from t2i_tf.eval.css_semantic import object_recall_by_novelty

    red_circle = cc.encode_object("small", "red", "circle")  # held out of training
    blue_triangle = cc.encode_object("large", "blue", "triangle")  # held out
    green_circle = cc.encode_object("small", "green", "circle")  # seen
    target = np.zeros([2, 9], np.int64)
    target[0, [0, 1, 2]] = [red_circle, blue_triangle, green_circle]
    target[1, [4, 5]] = [green_circle, green_circle]
    pred = target.copy()
    pred[0, 1] = 0  # the blue triangle missed
    pred[1, 5] = red_circle  # a seen object drawn as a novel one
    out = object_recall_by_novelty(pred, target)
    assert out == {"object_recall_novel": 0.5, "object_recall_seen": 2 / 3, "objects_novel": 2.0, "objects_seen": 3.0}


def test_text_ignoring_partners_are_other_base_scenes_and_seeded():
    from t2i_tf.eval.css_semantic import text_ignoring_partners

    base = np.zeros(9, np.int64)
    base[[0, 4]] = [3, 7]
    one_edit = base.copy()
    one_edit[8] = 5  # a one-edit neighbour: 1 cell apart
    other = np.zeros(9, np.int64)
    other[[2, 6]] = [9, 9]  # another base scene
    cells = np.stack([base, one_edit, other, other])
    partners = text_ignoring_partners(cells, seed=0)
    assert partners[0] in (2, 3) and partners[1] in (2, 3) and partners[2] in (0, 1) and partners[3] in (0, 1)
    np.testing.assert_array_equal(partners, text_ignoring_partners(cells, seed=0))
    assert (text_ignoring_partners(np.stack([base, one_edit]), seed=0) == -1).all()  # nobody 2 cells apart
