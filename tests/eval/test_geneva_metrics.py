"""GeNeVA's relational similarity and the per-turn aggregation over CSS cell codes."""

import numpy as np
import pytest

from t2i_tf.data.css_cells import encode_object
from t2i_tf.eval.css_semantic import semantic_scores
from t2i_tf.eval.geneva_metrics import per_turn_scores, relation_graph, relational_similarity

RED = encode_object("large", "red", "circle")
BLUE = encode_object("small", "blue", "rectangle")
GRAY = encode_object("small", "gray", "triangle")


def scene(**cells):
    out = np.zeros(9, np.int64)
    for cell, code in cells.items():
        out[int(cell[1:])] = code
    return out


def test_relation_graph_signs_and_the_centre_on_the_diagonal():
    g = relation_graph(np.array([[0, 0], [2, 1]]))  # (x, y): top-left, middle-right
    assert g.shape == (2, 2, 2)
    assert g[0, 0, 1] == -1 and g[0, 1, 0] == 1 and g[1, 0, 1] == -1  # left of / above the other
    assert g[0, 0, 0] == -1 and g[1, 1, 1] == 0  # vs the centre: left of it; same row


def test_rsim_rewards_the_right_objects_in_the_right_arrangement():
    target = scene(c0=RED, c8=BLUE)
    assert relational_similarity([target], [target]) == pytest.approx([1.0])
    assert relational_similarity([np.zeros(9, int)], [np.zeros(9, int)]) == pytest.approx([1.0])
    assert relational_similarity([scene(c4=GRAY)], [target]) == pytest.approx([0.0])  # no shared type
    # one of two types found, its relation to the centre right: recall 1/2 x agreement 1
    assert relational_similarity([scene(c0=RED)], [target]) == pytest.approx([0.5])
    # both found but swapped: every pairwise relation is reversed, the centre relations are too
    swapped = relational_similarity([scene(c8=RED, c0=BLUE)], [target])[0]
    assert 0.0 <= swapped < 0.5
    # shifted by one cell keeping the pair's arrangement: pairwise relations agree, some centre ones do not
    shifted = relational_similarity([scene(c1=RED, c5=BLUE)], [target])[0]
    assert swapped < shifted < 1.0


def test_per_turn_scores_use_only_real_turns():
    target = np.stack([np.stack([scene(c0=RED), scene(c0=RED, c1=BLUE)]), np.stack([scene(c2=GRAY), scene()])])
    pred = target.copy()
    pred[0, 1] = scene(c0=RED)  # misses the blue object at turn 2 of sequence 0
    pred[1, 1] = scene(c4=GRAY)  # padding turn of sequence 1: must not count
    mask = np.array([[True, True], [True, False]])
    out = per_turn_scores(pred, target, mask)
    assert set(out) == {"turn1", "turn2", "all"}
    assert out["turn1"]["object_f1"] == 1.0 and out["turn1"]["images"] == 2
    assert out["turn2"]["images"] == 1 and out["turn2"]["object_recall"] == 0.5 and out["turn2"]["rsim"] == 0.5
    assert out["all"]["object_recall"] == semantic_scores(pred[mask], target[mask])["object_recall"] == 0.75
    with pytest.raises(ValueError, match="do not match"):
        per_turn_scores(pred, target, mask[:, :1])


def test_edit_accuracy_scores_the_changed_cell_and_is_zero_for_copying():
    before = np.stack([scene(c0=RED), scene(c0=RED, c4=GRAY)])
    target = np.stack([scene(c0=RED, c8=BLUE), scene(c0=RED)])  # an add, a remove
    mask = np.ones([2, 1], bool)
    copy = per_turn_scores(before[:, None], target[:, None], mask, before[:, None])["all"]
    assert copy["edit_accuracy"] == copy["add_accuracy"] == copy["remove_accuracy"] == 0.0
    assert copy["object_f1"] > 0.5  # yet copying keeps most objects
    drawn = np.stack([scene(c0=RED, c8=GRAY), scene(c0=RED)])  # wrong object added, removal right
    out = per_turn_scores(drawn[:, None], target[:, None], mask, before[:, None])["turn1"]
    assert out["add_accuracy"] == 0.0 and out["remove_accuracy"] == 1.0 and out["edit_accuracy"] == 0.5
    assert np.isnan(per_turn_scores(target[:1, None], target[:1, None], mask[:1], before[:1, None])["all"]["remove_accuracy"])
