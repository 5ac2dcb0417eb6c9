"""Official google/sg2im checkpoints (small, written by torch.save; see make_sg2im_fixtures.py) through our
Sg2ImGenerator (the CLI import into a run: test_sg2im_cli.py).

No PyTorch needed. Agreement is max |ours - official| / max |official| per tensor, <= 1e-5 for boxes, masks, the
layout and images, in eval mode and in train mode (batch statistics over 8 objects / 2 images); measured <= 1.2e-6.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.data import scene_graph as sg
from t2i_tf.errors import UserError
from t2i_tf.import_torch import pth
from t2i_tf.import_torch import sg2im as imp

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "sg2im")


def _load(name: str) -> tuple[dict, dict, dict[str, np.ndarray]]:
    ckpt = pth.load_checkpoint(os.path.join(FIX, f"{name}.pt"))
    with np.load(os.path.join(FIX, f"{name}_io.npz")) as z:
        io = {k: z[k] for k in z.files}
    return ckpt["model_state"], ckpt["model_kwargs"], io


def _rel(ours, ref) -> float:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-12))


def _nhwc(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 2, 3, 1))


def _css_inputs(kwargs: dict, io: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixture's packed official graphs as our padded CSS graphs (ids by name), and (image, slot) per object."""
    v = kwargs["vocab"]
    object_ids = np.array([sg.OBJECT_IDS[n] for n in v["object_idx_to_name"]])
    predicate_ids = np.array([sg.PREDICATE_IDS[n] for n in v["pred_idx_to_name"]])
    return imp.padded_graphs(io["objs"], io["triples"], io["obj_to_img"], object_ids, predicate_ids)


@pytest.fixture(scope="module")
def small():
    sd, kwargs, io = _load("sg2im_small")
    gen, config = imp.import_generator(sd, kwargs, object_names=sg.OBJECT_NAMES, predicates=sg.PREDICATES)
    objects, triples, where = _css_inputs(kwargs, io)
    return {"sd": sd, "kwargs": kwargs, "io": io, "gen": gen, "config": config, "objects": objects,
            "triples": triples, "where": where}


def test_generator_matches_official_boxes_masks_layout_and_image(small):
    io, where = small["io"], small["where"]
    assert small["config"] == {"image_size": 16, "embedding_dim": 8, "gconv_dim": 8, "gconv_hidden_dim": 12,
                               "gconv_layers": 3, "gconv_pooling": "avg", "refinement_dims": (16, 8),
                               "normalization": "batch", "slope": 0.2, "mask_size": 4, "layout_noise_dim": 2,
                               "box_net_final_relu": True}
    # two graphs of 4 and 2 objects (+ __image__) packed with obj_to_img there, padded per image here
    assert small["objects"].shape == (2, 5) and (small["objects"][1, 3:] == 0).all()
    out = small["gen"]({"objects": small["objects"], "triples": small["triples"], "noise": _nhwc(io["noise"])},
                       training=False)
    at = tuple(where.T)
    assert _rel(out["boxes"].numpy()[at], io["boxes"]) <= 1e-5
    assert (io["boxes"] == 0).any()  # coordinates the official final ReLU clipped
    assert _rel(tf.sigmoid(out["mask_logits"]).numpy()[at], io["masks"]) <= 1e-5
    assert _rel(out["layout"], _nhwc(io["layout"])) <= 1e-5
    assert _rel(out["images"], _nhwc(io["images"])) <= 1e-5


def test_linear_box_net_is_the_official_one_without_its_final_relu(small):
    """box_net_final_relu=False (the cpu preset) gives the pre-activations: the clipped coordinates go negative."""
    gen, _ = imp.import_generator(small["sd"], small["kwargs"], object_names=sg.OBJECT_NAMES,
                                  predicates=sg.PREDICATES, box_net_final_relu=False)
    boxes = gen({"objects": small["objects"], "triples": small["triples"]}, training=False)["boxes"].numpy()
    linear = boxes[tuple(small["where"].T)]
    assert _rel(linear, small["io"]["box_pre"]) <= 1e-5
    assert (linear < 0).sum() == (small["io"]["box_pre"] < 0).sum() > 0


def test_train_mode_matches_official_batch_statistics_of_the_real_objects(small):
    """training=True with ground-truth boxes and masks (as train.py:527): the BatchNorms of the mask net see the 8
    real objects only, as the official packed batch; counting the 2 padding slots would change the masks."""
    io, where, gen = small["io"], small["where"], small["gen"]
    n, o = small["objects"].shape
    boxes = np.zeros((n, o, 4), np.float32)
    masks = np.zeros((n, o, 4, 4), np.float32)
    boxes[tuple(where.T)], masks[tuple(where.T)] = io["boxes_gt"], io["masks_gt"]
    saved = [v.numpy() for v in gen.non_trainable_weights]
    out = gen({"objects": small["objects"], "triples": small["triples"], "boxes": boxes, "masks": masks,
               "noise": _nhwc(io["noise_train"])}, training=True)
    at = tuple(where.T)
    assert _rel(tf.sigmoid(out["mask_logits"]).numpy()[at], io["masks_train"]) <= 1e-5
    assert _rel(out["images"], _nhwc(io["images_train"])) <= 1e-5
    vecs = gen.encode(tf.constant(small["objects"]), tf.constant(small["triples"]))
    unmasked = tf.sigmoid(gen.mask_net(vecs, None, training=True)).numpy()[at]
    assert _rel(unmasked, io["masks_train"]) > 1e-2
    for v, value in zip(gen.non_trainable_weights, saved):
        v.assign(value)


def test_no_mask_relu_sum_pooling_model_and_the_official_vocabulary_order():
    """The second fixture (zip format): boxes_to_layout (no mask net), 'relu' (= LeakyReLU 0.01 in the official
    get_activation), no normalization, sum pooling; imported with the official ids (ours = official + 1) and fed
    by our encode_scene_graphs of the JSON graphs."""
    sd, kwargs, io = _load("sg2im_nomask")
    gen, config = imp.import_generator(sd, kwargs)
    assert config["slope"] == 0.01 and config["mask_size"] == 0 and config["gconv_pooling"] == "sum"
    objects, triples = imp.encode_scene_graphs(json.loads(str(io["graphs_json"])), kwargs["vocab"])
    o2, t2, where = imp.padded_graphs(io["objs"], io["triples"], io["obj_to_img"])
    np.testing.assert_array_equal(objects, o2)
    np.testing.assert_array_equal(triples, t2)
    out = gen({"objects": objects, "triples": triples}, training=False)
    assert out["mask_logits"] is None
    assert _rel(out["boxes"].numpy()[tuple(where.T)], io["boxes"]) <= 1e-5
    assert _rel(out["layout"], _nhwc(io["layout"])) <= 1e-5
    assert _rel(out["images"], _nhwc(io["images"])) <= 1e-5


def test_wrong_checkpoints_are_refused_naming_the_tensor(small):
    sd, kwargs = small["sd"], small["kwargs"]
    css = {"object_names": sg.OBJECT_NAMES, "predicates": sg.PREDICATES}
    cases = [
        ({k: v for k, v in sd.items() if k != "mask_net.6.weight"}, kwargs, "tensor 'mask_net.6.weight' is missing"),
        (dict(sd, **{"box_net.2.weight": np.zeros((4, 13), np.float32)}), kwargs,
         "box_net.2.weight has shape (4, 13)"),
        (dict(sd, **{"gconv_net.gconvs.2.net1.0.weight": sd["gconv.net1.0.weight"]}), kwargs,
         "'gconv_net.gconvs.2.net1.0.weight' has no place in the generator"),
        (sd, dict(kwargs, mlp_normalization="batch"), "mlp_normalization='batch'"),
        (sd, dict(kwargs, embedding_dim=16), "obj_embeddings.weight has shape (50, 8)"),
    ]
    for state, kw, message in cases:
        with pytest.raises(UserError) as e:
            imp.import_generator(state, kw, **css)
        assert message in str(e.value), str(e.value)
    vocab = json.loads(json.dumps(kwargs["vocab"]))
    del vocab["object_name_to_idx"]["large red circle"]
    with pytest.raises(UserError, match="vocabulary has no object 'large red circle'"):
        imp.import_generator(sd, kwargs, vocab=vocab, **css)
