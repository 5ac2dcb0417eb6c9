"""The scene-graph record reader: VG's choice of objects, COCO's one relation per object, masks, JSON graphs in a
dataset's vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.data import scene_graph as sg
from t2i_tf.data.scene_graph_records import (
    ONE_RELATION_PER_OBJECT,
    RELATIONSHIPS,
    parse_graph,
)
from t2i_tf.errors import UserError


def example(objects, triples, masks=None):
    n = len(objects)
    boxes = np.array([[k / 10, 0.1, k / 10 + 0.05, 0.2] for k in range(n)], np.float32)
    ex = {"objects": tf.sparse.from_dense(tf.constant(objects, tf.int64)),
          "boxes": tf.sparse.from_dense(tf.constant(boxes.reshape(-1))),
          "triples": tf.sparse.from_dense(tf.constant(np.asarray(triples, np.int64).reshape(-1)))}
    if masks is not None:
        ex["masks"] = tf.constant(np.asarray(masks, np.uint8).tobytes())
    return ex, boxes


def real(triples):
    return [tuple(t) for t in triples.numpy().tolist() if t[0] >= 0]


def test_vg_keeps_related_objects_first_as_the_official_loader():
    # Objects 0, 2, 4 are related; max_objects 3 (4 slots): three related ones -> all three, no orphan.
    ex, boxes = example([10, 11, 12, 13, 14, 15], [[0, 1, 2], [2, 2, 4], [4, 3, 0]])
    g = parse_graph(ex, RELATIONSHIPS, slots=4, rows=8, training=False, seed=tf.constant([0, 0], tf.int64))
    assert g["objects"].numpy().tolist() == [sg.IMAGE_ID, 10, 12, 14]
    np.testing.assert_allclose(g["boxes"][1:].numpy(), boxes[[0, 2, 4]])
    assert real(g["triples"]) == [(1, 1, 2), (2, 2, 3), (3, 3, 1), (1, 0, 0), (2, 0, 0), (3, 0, 0)]
    # Two related of max_objects 3: both, then orphans up to max_objects - 1 = 2 in all -> none.
    ex, _ = example([10, 11, 12, 13], [[3, 1, 1]])
    g = parse_graph(ex, RELATIONSHIPS, slots=4, rows=8, training=False, seed=tf.constant([0, 0], tf.int64))
    assert g["objects"].numpy().tolist() == [sg.IMAGE_ID, 11, 13, 0]
    assert real(g["triples"]) == [(2, 1, 1), (1, 0, 0), (2, 0, 0)]
    # One related object of max_objects 4: it, then orphans in file order up to 3 objects.
    ex, _ = example([10, 11, 12, 13, 14], [[4, 2, 4]])
    g = parse_graph(ex, RELATIONSHIPS, slots=5, rows=8, training=False, seed=tf.constant([0, 0], tf.int64))
    assert g["objects"].numpy().tolist() == [sg.IMAGE_ID, 14, 10, 11, 0]
    # Training draws the related objects at random: always 3 of the 4 related ones, in varying choices.
    ex, _ = example([10, 11, 12, 13, 14], [[0, 1, 1], [2, 1, 3]])
    chosen = set()
    for k in range(12):
        g = parse_graph(ex, RELATIONSHIPS, slots=4, rows=8, training=True, seed=tf.constant([k, 1], tf.int64))
        objects = g["objects"].numpy().tolist()
        assert len(set(objects[1:])) == 3 and set(objects[1:]) <= {10, 11, 12, 13}
        chosen.add(tuple(sorted(objects[1:])))
    assert len(chosen) > 1


def test_coco_draws_one_relation_per_object_from_the_stored_pairs():
    pred = {(0, 1): 1, (1, 0): 2, (0, 2): 3, (2, 0): 4, (1, 2): 5, (2, 1): 6}  # distinct ids per ordered pair
    masks = np.zeros([3, 8, 8], np.uint8)
    masks[:, :, :4] = 1  # the left half
    masks[2, :, :2] = 0  # the second quarter only
    ex, _ = example([5, 6, 7], [[s, p, o] for (s, o), p in pred.items()], masks)
    seen = set()
    for k in range(10):
        g = parse_graph(ex, ONE_RELATION_PER_OBJECT, slots=5, rows=8, training=True,
                        seed=tf.constant([k, 3], tf.int64), stored_mask_size=8, mask_size=4)
        triples = real(g["triples"])
        rel, in_image = triples[:3], triples[3:]
        assert in_image == [(1, 0, 0), (2, 0, 0), (3, 0, 0)]
        for i, (s, p, o) in enumerate(rel):
            assert i + 1 in (s, o) and s != o and pred[s - 1, o - 1] == p  # object i's own relation, as stored
        seen.update(rel)
    assert len(seen) == 6  # every pair and direction is drawn
    m = g["masks"].numpy()
    assert m.shape == (5, 4, 4) and m[0].all() and not m[4].any()
    np.testing.assert_array_equal(m[1], [[1, 1, 0, 0]] * 4)
    np.testing.assert_array_equal(m[3], [[0, 1, 0, 0]] * 4)
    one, _ = example([5], [])
    g = parse_graph(one, ONE_RELATION_PER_OBJECT, slots=3, rows=4, training=False, seed=tf.constant([0, 0], tf.int64))
    assert real(g["triples"]) == [(1, 0, 0)]


def test_json_graphs_in_a_dataset_vocabulary():
    vocab = sg.GraphVocab("vg", ("__image__", "man", "tree", "street sign"), ("__in_image__", "on", "near"))
    objects, triples = sg.encode_graph({"objects": ["man", "Street  Sign"], "relationships": [[0, "near", 1]]},
                                       vocab=vocab)
    assert objects.tolist() == [1, 2, 4] and triples.tolist() == [[1, 2, 2], [1, 0, 0], [2, 0, 0]]
    with pytest.raises(UserError, match="unknown object 'dog'.*3 vg object names"):
        sg.encode_graph({"objects": ["dog"]}, vocab=vocab)
    with pytest.raises(UserError, match="relates two objects"):
        sg.encode_graph({"objects": ["man"], "relationships": [[0, "on", "image"]]}, vocab=vocab)
    with pytest.raises(UserError, match="first object name must be '__image__'"):
        sg.GraphVocab("x", ("man",), ("__in_image__",))
