"""sg2im model pieces: the graph convolution's pooling against numpy, the layout against a hand case, the CSS graph
of a scene, shapes of the generator and discriminators."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.data import scene_graph as sg
from t2i_tf.data.css_cells import encode_object
from t2i_tf.errors import UserError
from t2i_tf.models.sg2im import (
    GraphTripleConv,
    ObjectDiscriminator,
    PatchDiscriminator,
    Sg2ImGenerator,
    box_iou,
    masks_to_layout,
)


def test_graph_conv_averages_each_objects_triple_outputs_as_numpy():
    rng = np.random.default_rng(0)
    b, o, t, d, h, dout = 2, 4, 5, 3, 6, 5
    obj = rng.normal(size=[b, o, d]).astype(np.float32)
    pred = rng.normal(size=[b, t, d]).astype(np.float32)
    s = np.array([[0, 1, 2, 0, 0], [3, 0, 1, 0, 0]], np.int32)
    oo = np.array([[1, 2, 0, 2, 0], [0, 3, 3, 0, 0]], np.int32)
    mask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], bool)  # padding rows point at slot 0: must not count
    conv = GraphTripleConv(dout, h)
    new_obj, new_pred = conv(tf.constant(obj), tf.constant(pred), tf.constant(s), tf.constant(oo), tf.constant(mask))
    w = [v.numpy() for v in conv.net1.weights] + [v.numpy() for v in conv.net2.weights]
    relu = lambda x: np.maximum(x, 0)
    net1 = lambda x: relu(relu(x @ w[0] + w[1]) @ w[2] + w[3])
    net2 = lambda x: relu(relu(x @ w[4] + w[5]) @ w[6] + w[7])
    expected = np.zeros([b, o, dout], np.float32)
    for i in range(b):
        pooled, count = np.zeros([o, h]), np.zeros(o)
        for k in range(t):
            if not mask[i, k]:
                continue
            out = net1(np.concatenate([obj[i, s[i, k]], pred[i, k], obj[i, oo[i, k]]]))
            pooled[s[i, k]] += out[:h]
            pooled[oo[i, k]] += out[h + dout:]
            count[s[i, k]] += 1
            count[oo[i, k]] += 1
            np.testing.assert_allclose(new_pred[i, k], out[h:h + dout], rtol=1e-5, atol=1e-6)
        expected[i] = net2(pooled / np.maximum(count, 1)[:, None])
    np.testing.assert_allclose(new_obj.numpy(), expected, rtol=1e-5, atol=1e-6)
    # Object 3 of image 0 is in no triple: its pooled vector is 0, so its output is net2(0).
    np.testing.assert_allclose(new_obj[0, 3], net2(np.zeros(h)), rtol=1e-5, atol=1e-6)


def test_layout_places_masks_in_boxes_by_hand():
    vec = tf.constant([[[2.0, -1.0], [5.0, 0.0], [7.0, 7.0]]])  # [1, 3 objects, 2]
    boxes = tf.constant([[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]])
    masks = tf.constant([[[[1.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    obj_mask = tf.constant([[True, True, False]])  # the third object is padding
    out = masks_to_layout(vec, boxes, masks, obj_mask, 5).numpy()  # pixels at 0, .25, .5, .75, 1
    # Box 1 over [0, .5]: mask coordinates u * (M - 1) = 0, .5, 1, 1.5, 2 -> weights 1, 1, 1, .5, 0 per axis.
    a = np.array([1, 1, 1, 0.5, 0])
    # Box 2 over [.5, 1] with only its top-left mask pixel on: coordinates -1, -.5, 0, .5, 1 -> 0, .5, 1, .5, 0
    # (bilinear between the zero padding at -1 and the pixel at 0, as grid_sample's zero padding).
    c = np.array([0, 0.5, 1, 0.5, 0])
    np.testing.assert_allclose(out[0, :, :, 0], 2 * np.outer(a, a) + 5 * np.outer(c, c), atol=1e-6)
    np.testing.assert_allclose(out[0, :, :, 1], -np.outer(a, a), atol=1e-6)


def test_css_scene_graph_of_a_scene():
    cells = [0] * 9
    cells[0] = encode_object("large", "red", "circle")  # top left
    cells[4] = encode_object("small", "blue", "triangle")  # center
    cells[5] = encode_object("small", "green", "rectangle")  # middle right
    g = sg.graph_from_cells(tf.constant([cells]), mask_size=4)
    objects = g["objects"][0].numpy()
    assert [sg.OBJECT_NAMES[i - 1] if i else None for i in objects[:5]] == [
        "__image__", "large red circle", "small blue triangle", "small green rectangle", None]
    triples = {tuple(t) for t in g["triples"][0].numpy() if t[0] >= 0}
    p = sg.PREDICATE_IDS
    assert triples == {(1, p["at top left"], 0), (2, p["in the center"], 0), (3, p["on the right"], 0),
                       (1, p["above left of"], 2), (1, p["above left of"], 3), (2, p["left of"], 3)}
    c, h = 1 / 6, 0.125  # the top-left cell's centre, a large object's half side
    np.testing.assert_allclose(g["boxes"][0, 1], [c - h, c - h, c + h, c + h], rtol=1e-6)
    np.testing.assert_allclose(g["boxes"][0, 2], [0.5 - 1 / 16, 0.5 - 1 / 16, 0.5 + 1 / 16, 0.5 + 1 / 16], rtol=1e-6)
    np.testing.assert_array_equal(g["masks"][0, 3], np.ones([4, 4]))  # a rectangle fills its box
    assert g["masks"][0, 1].numpy().sum() < 16 and g["masks"][0, 1, 0, 0] == 0  # a diamond does not
    assert g["cells"][0, :4].numpy().tolist() == [-1, 0, 4, 5]
    # The caption of the same scene reads into the same graph.
    objects_c, triples_c = sg.read_graph("a large red circle at the top left, a small blue triangle in the center "
                                         "and a small green rectangle on the right")
    np.testing.assert_array_equal(objects_c, objects[:4])
    assert {tuple(t) for t in triples_c} == triples


def test_json_graphs_and_their_errors(tmp_path):
    objects, triples = sg.encode_graph({"objects": ["large red circle", "small blue triangle"],
                                        "relationships": [[0, "left of", 1], [1, "at bottom right", "image"]]})
    assert objects.tolist() == [1, sg.OBJECT_IDS["large red circle"], sg.OBJECT_IDS["small blue triangle"]]
    # Object 0 has no relation to the image: it gets __in_image__.
    assert triples.tolist() == [[1, sg.PREDICATE_IDS["left of"], 2], [2, sg.PREDICATE_IDS["at bottom right"], 0],
                                [1, 0, 0]]
    bad = {
        "unknown object": {"objects": ["huge red circle"]},
        "unknown predicate": {"objects": ["large red circle", "small red circle"], "relationships": [[0, "near", 1]]},
        "not an object index": {"objects": ["large red circle"], "relationships": [[0, "left of", 3]]},
        "at most 9": {"objects": ["large red circle"] * 10},
        "relates two objects": {"objects": ["large red circle"], "relationships": [[0, "left of", "image"]]},
    }
    for words, graph in bad.items():
        with pytest.raises(UserError, match=words) as e:
            sg.encode_graph(graph)
        assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="not a CSS scene caption"):
        sg.read_graph("a cat on a mat")
    with pytest.raises(UserError, match="not found"):
        sg.read_graph(str(tmp_path / "missing.json"))


def test_generator_and_discriminator_shapes():
    g = sg.graph_from_cells(tf.constant([[1, 0, 0, 0, 30, 0, 0, 0, 48], [0] * 8 + [7]]), mask_size=4)
    gen = Sg2ImGenerator(sg.NUM_OBJECT_IDS, sg.NUM_PREDICATES, 16, 8, 8, 8, 2, "avg", (8, 8), "batch", 0.2, 4, 2)
    noise = tf.zeros([2, 16, 16, 2])
    out = gen({"objects": g["objects"], "triples": g["triples"], "noise": noise})
    assert out["images"].shape == (2, 16, 16, 3) and out["boxes"].shape == (2, 10, 4)
    assert out["mask_logits"].shape == (2, 10, 4, 4) and out["layout"].shape == (2, 16, 16, 8 + 2)
    # Another graph, another image; padding objects do not change the image.
    assert np.abs(out["images"][0] - out["images"][1]).max() > 0
    cut = gen({"objects": g["objects"][:, :4], "triples": g["triples"], "noise": noise})
    np.testing.assert_allclose(cut["images"][0], out["images"][0], atol=1e-5)
    d_img = PatchDiscriminator("C3-8-2,C3-16-2")
    assert d_img(out["images"]).shape == (2, 3, 3)
    d_obj = ObjectDiscriminator("C3-8-2,C3-16-2", sg.NUM_OBJECT_IDS, crop_size=8, hidden_dim=16)
    real, logits = d_obj((out["images"], g["boxes"]))
    assert real.shape == (2, 10) and logits.shape == (2, 10, sg.NUM_OBJECT_IDS)
    np.testing.assert_allclose(box_iou(tf.constant([0.0, 0.0, 0.5, 0.5]), tf.constant([0.25, 0.0, 0.75, 0.5])), 1 / 3,
                               rtol=1e-6)


def test_padding_slots_change_neither_outputs_nor_train_mode_batch_statistics():
    """Padding per image is the official packed batch: extra empty object slots (and -1 triple rows) leave the real
    objects' boxes and masks the same, in training too (the mask net's BatchNorms see the real objects only)."""
    gen = Sg2ImGenerator(10, 5, 8, 8, 8, 8, 2, refinement_dims=(8, 4), mask_size=4, layout_noise_dim=0,
                         box_net_final_relu=True)
    objects = np.array([[1, 3, 4], [1, 2, 0]], np.int32)
    triples = np.array([[[1, 2, 2], [1, 0, 0], [2, 0, 0]], [[1, 3, 0], [-1, -1, -1], [-1, -1, -1]]], np.int32)
    wide_o = np.pad(objects, [[0, 0], [0, 3]])
    wide_t = np.pad(triples, [[0, 0], [0, 2], [0, 0]], constant_values=-1)
    a = gen({"objects": objects, "triples": triples}, training=True)
    b = gen({"objects": wide_o, "triples": wide_t}, training=True)
    real = objects > 0
    np.testing.assert_allclose(b["mask_logits"].numpy()[:, :3][real], a["mask_logits"].numpy()[real], atol=1e-5)
    np.testing.assert_allclose(b["boxes"].numpy()[:, :3][real], a["boxes"].numpy()[real], atol=1e-6)
    assert (a["boxes"].numpy() >= 0).all()  # box_net_final_relu: the official ReLU on the coordinates
    np.testing.assert_allclose(b["images"].numpy(), a["images"].numpy(), atol=1e-5)
