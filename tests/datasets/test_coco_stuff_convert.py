"""COCO + COCO-Stuff -> scene-graph records: sg2im/data/coco.py's filters, masks and relations on a fixture in
download_coco.sh's layout."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i_tf.data.scene_graph_records import read_vocab
from t2i_tf.datasets.coco_stuff import masks as cm
from t2i_tf.datasets.coco_stuff.convert import CocoFilter, convert_coco_stuff, main
from t2i_tf.datasets.coco_stuff.relations import (
    PREDICATE_IDS,
    geometric_predicate,
    mask_centre,
    pair_triples,
)
from t2i_tf.datasets.scene_graph_writer import BadAnnotation
from t2i_tf.errors import UserError

W, H = 40, 30
P = PREDICATE_IDS


def rle_string(counts):
    """pycocotools' compressed RLE string of run lengths (the inverse of masks.rle_counts_from_string)."""
    out = []
    for i, x in enumerate(counts):
        x = x - counts[i - 2] if i > 2 else x
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr((c | (0x20 if more else 0)) + 48))
    return "".join(out)


def rle_counts(mask):
    """Run lengths of a mask, column-major, starting with a run of 0s."""
    flat = mask.T.reshape(-1)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return ([0] if flat[0] else []) + runs


def band(y0, y1):
    m = np.zeros([H, W], np.uint8)
    m[y0:y1] = 1
    return m


def rect(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def ann(aid, image_id, cat, bbox, seg):
    return {"id": aid, "image_id": image_id, "category_id": cat, "bbox": bbox, "segmentation": seg,
            "area": bbox[2] * bbox[3], "iscrowd": int(isinstance(seg, dict))}


SKY = {"size": [H, W], "counts": rle_counts(band(0, 8))}  # uncompressed RLE
GRASS = {"size": [H, W], "counts": rle_string(rle_counts(band(24, 30)))}  # compressed RLE
PERSON = ann(1, 100, 1, [2, 10, 8, 12], rect(2, 10, 9, 21))  # PIL fills x 2..9, y 10..21: 8 x 12 pixels
CAR = ann(2, 100, 3, [28, 12, 10, 8], rect(28, 12, 37, 19))
INSTANCES = {
    "train": [PERSON, CAR,
              ann(3, 101, 1, [1, 1, 2, 2], rect(1, 1, 2, 2)),  # 4 / 1200 of the image: too small
              ann(4, 102, 1, [2, 2, 20, 20], rect(2, 2, 21, 21)), ann(5, 102, 3, [2, 2, 20, 20], rect(2, 2, 21, 21)),
              ann(6, 103, 1, [2, 2, 20, 20], rect(2, 2, 21, 21)), ann(7, 103, 2, [2, 2, 10, 20], rect(2, 2, 11, 21)),
              {"id": 8, "image_id": 104, "category_id": 1, "segmentation": rect(1, 1, 9, 9)},  # no bbox
              *[ann(10 + k, 106, 1, [k, 2, 10, 10], rect(k, 2, k + 9, 11)) for k in range(9)],
              ann(20, 105, 1, [2, 2, 20, 20], rect(2, 2, 21, 21)), ann(23, 105, 3, [2, 2, 20, 20], rect(2, 2, 21, 21)),
              ann(21, 107, 1, [2, 2, 20, 20], rect(2, 2, 21, 21)), ann(22, 107, 3, [2, 2, 20, 20], rect(2, 2, 21, 21))],
    "val": [ann(30, 200, 1, [2, 2, 20, 20], rect(2, 2, 21, 21)), ann(31, 200, 3, [20, 2, 10, 20], rect(20, 2, 29, 21)),
            ann(32, 201, 1, [2, 2, 20, 20], rect(2, 2, 21, 21)), ann(33, 201, 3, [2, 2, 20, 20], rect(2, 2, 21, 21))],
}
STUFF = {
    "train": [ann(50, 100, 92, [0, 24, 40, 6], GRASS), ann(51, 100, 93, [0, 0, 40, 8], SKY),
              ann(52, 101, 92, [0, 24, 40, 6], GRASS),
              ann(53, 103, 183, [0, 0, 40, 30], GRASS), ann(54, 103, 92, [0, 24, 40, 6], GRASS),
              ann(55, 104, 92, [0, 24, 40, 6], GRASS), ann(56, 105, 92, [0, 24, 40, 6], GRASS),
              ann(57, 106, 92, [0, 24, 40, 6], GRASS),
              ann(58, 107, 92, [0, 24, 40, 6], {"size": [H, W], "counts": [5, 7]})],  # runs do not fill the image
    "val": [ann(60, 200, 93, [0, 0, 40, 8], SKY), ann(61, 201, 93, [0, 0, 40, 8], SKY)],
}
IMAGES = {"train": [100, 101, 102, 103, 104, 105, 106, 107], "val": [200, 201]}


def write_coco(root) -> str:
    """A COCO folder as download_coco.sh leaves it: annotations/*.json and images/{train,val}2017/."""
    coco = os.path.join(root, "coco")
    os.makedirs(os.path.join(coco, "annotations"))
    cats = {"instances": [{"id": 1, "name": "person", "supercategory": "person"},
                          {"id": 2, "name": "bicycle", "supercategory": "vehicle"},
                          {"id": 3, "name": "car", "supercategory": "vehicle"}],
            "stuff": [{"id": 92, "name": "grass", "supercategory": "plant"},
                      {"id": 93, "name": "sky", "supercategory": "sky"},
                      {"id": 183, "name": "other", "supercategory": "other"}]}
    for split, ids in IMAGES.items():
        folder = os.path.join(coco, "images", f"{split}2017")
        os.makedirs(folder)
        images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": W, "height": H} for i in ids]
        for kind, anns in (("instances", INSTANCES[split]), ("stuff", STUFF[split])):
            with open(os.path.join(coco, "annotations", f"{kind}_{split}2017.json"), "w") as f:
                json.dump({"info": {}, "licenses": [], "images": images, "annotations": anns,
                           "categories": cats[kind]}, f)
        for i in ids:
            path = os.path.join(folder, f"{i:012d}.jpg")
            if i == 105:
                with open(path, "wb") as f:
                    f.write(b"GIF89a not an image we read")
            elif i != 201:
                Image.fromarray(np.full([H, W, 3], i % 256, np.uint8)).save(path)
    return coco


SMALL = CocoFilter(max_objects_per_image=8, mask_size=4)


def read_records(out, split):
    spec = {"objects": tf.io.VarLenFeature(tf.int64), "boxes": tf.io.VarLenFeature(tf.float32),
            "triples": tf.io.VarLenFeature(tf.int64), "image_id": tf.io.FixedLenFeature([], tf.int64),
            "masks": tf.io.FixedLenFeature([], tf.string)}
    files = sorted(os.path.join(out, f) for f in os.listdir(out) if f.startswith(split + "-"))
    rows = {}
    for raw in tf.data.TFRecordDataset(files):
        ex = tf.io.parse_single_example(raw, spec)
        n = int(ex["objects"].dense_shape[0])
        rows[int(ex["image_id"])] = {
            "objects": tf.sparse.to_dense(ex["objects"]).numpy().tolist(),
            "boxes": tf.sparse.to_dense(ex["boxes"]).numpy().reshape(-1, 4),
            "triples": [tuple(t) for t in tf.sparse.to_dense(ex["triples"]).numpy().reshape(-1, 3).tolist()],
            "masks": np.frombuffer(ex["masks"].numpy(), np.uint8).reshape(n, 4, 4)}
    return rows


def test_filters_records_and_vocabulary_match_a_hand_count(tmp_path):
    out = str(tmp_path / "records")
    info = convert_coco_stuff(write_coco(tmp_path), out, settings=SMALL)
    # 100: person, car, grass, sky; 101: the person is too small (1 object left); 102: no stuff; 103: person,
    # bicycle, grass ('other' dropped); 104: an annotation without bbox; 105: a GIF; 106: 10 objects; 107: bad RLE.
    assert info["skipped"] == {"train": {"bad_annotation": 2, "corrupt_image": 1, "no_stuff": 1, "too_few_objects": 1,
                                         "too_many_objects": 1},
                               "val": {"missing_image": 1}}
    counts = {s: v["num_examples"] for s, v in info["splits"].items()}
    assert counts == {"train": 2, "val": 1}
    skipped = sum(sum(r.values()) for r in info["skipped"].values())
    assert sum(counts.values()) + skipped == sum(len(v) for v in IMAGES.values())  # no image lost
    assert info["filtering"]["train"]["objects_too_small"] == 1 and info["filtering"]["train"]["objects_other"] == 1
    vocab = read_vocab(out)
    assert vocab.object_names[:4] == ("__image__", "person", "bicycle", "car")
    assert vocab.object_names[92:94] == ("grass", "sky") and vocab.object_names[183] == "other"
    assert vocab.object_names[4] == "NONE" and vocab.object_id("NONE") is None and vocab.object_id("sky") == 94
    assert vocab.predicates == ("__in_image__", "left of", "right of", "above", "below", "inside", "surrounding")

    train = read_records(out, "train")
    r = train[100]
    assert r["objects"] == [2, 4, 93, 94]  # category id + 1: person, car, grass, sky (instances, then stuff)
    np.testing.assert_allclose(r["boxes"][0], [2 / W, 10 / H, 10 / W, 22 / H], rtol=1e-6)
    np.testing.assert_allclose(r["boxes"][3], [0, 0, 1, 8 / H], atol=1e-7)
    # Every mask fills its box (the polygons and RLE bands are the boxes).
    np.testing.assert_array_equal(r["masks"], np.ones([4, 4, 4], np.uint8))
    assert len(r["triples"]) == 12 and len({(s, o) for s, _, o in r["triples"]}) == 12  # every ordered pair
    rel = {(s, o): p for s, p, o in r["triples"]}
    assert rel[0, 1] == P["left of"] and rel[1, 0] == P["right of"]
    assert rel[3, 2] == P["above"] and rel[2, 3] == P["below"]
    assert train[103]["objects"] == [2, 3, 93]
    assert read_records(out, "val")[200]["objects"] == [2, 4, 94]


def test_whitelists_and_include_other(tmp_path):
    coco = write_coco(tmp_path)
    info = convert_coco_stuff(coco, str(tmp_path / "a"), settings=CocoFilter(instance_whitelist=("person",),
                                                                             mask_size=4))
    assert info["filtering"]["train"]["objects_not_whitelisted"] >= 2  # the car of 100, the bicycle of 103
    assert info["splits"]["train"]["num_examples"] == 1  # 100: person, grass, sky; 103: person, grass
    info = convert_coco_stuff(coco, str(tmp_path / "b"), settings=CocoFilter(include_other=True, mask_size=4))
    assert read_records(str(tmp_path / "b"), "train")[103]["objects"] == [2, 3, 184, 93]


def test_rle_decoding_against_a_direct_computation():
    rng = np.random.default_rng(0)
    for shape in ([5, 7], [13, 4], [30, 40]):
        mask = (rng.random(shape) > 0.6).astype(np.uint8)
        mask[0, 0] = 1  # the first run of 0s is empty
        counts = rle_counts(mask)
        np.testing.assert_array_equal(cm.segmentation_mask({"size": shape, "counts": counts}, *shape), mask)
        assert cm.rle_counts_from_string(rle_string(counts)) == counts
        np.testing.assert_array_equal(cm.segmentation_mask({"size": shape, "counts": rle_string(counts)}, *shape),
                                      mask)
    with pytest.raises(BadAnnotation, match="not 5 x 7"):
        cm.segmentation_mask({"size": [5, 7], "counts": [3, 4]}, 5, 7)


def test_polygons_against_a_direct_computation():
    m = cm.segmentation_mask(rect(3, 2, 10, 6) + rect(12, 8, 14, 9), 12, 16)
    expected = np.zeros([12, 16], np.uint8)
    expected[2:7, 3:11] = 1  # PIL fills the outline's pixels too
    expected[8:10, 12:15] = 1
    np.testing.assert_array_equal(m, expected)
    tri = cm.polygons_to_mask([[2, 2, 18, 2, 2, 18]], 20, 20)
    ys, xs = np.mgrid[0:20, 0:20]
    inside = (xs >= 2) & (ys >= 2) & (xs + ys <= 20)  # pixel centres inside the triangle
    assert tri[inside].all() and not tri[xs + ys > 21].any()
    # box_mask: the box shrunk by area, kept where more than half is covered.
    full = np.zeros([20, 20], np.uint8)
    full[4:12, 4:8] = 1
    np.testing.assert_array_equal(cm.box_mask(full, [4, 4, 8, 8], 4), [[1, 1, 0, 0]] * 4)
    with pytest.raises(BadAnnotation):
        cm.segmentation_mask([[1, 2, 3]], 5, 5)


def test_geometric_relations_on_hand_made_boxes():
    big, small = np.array([0.1, 0.1, 0.9, 0.9]), np.array([0.4, 0.4, 0.6, 0.6])
    c = lambda b: mask_centre(b, None)
    assert geometric_predicate(big, small, c(big), c(small)) == "surrounding"
    assert geometric_predicate(small, big, c(small), c(big)) == "inside"
    left, right = np.array([0.0, 0.4, 0.2, 0.6]), np.array([0.6, 0.4, 0.8, 0.6])
    top, bottom = np.array([0.4, 0.0, 0.6, 0.2]), np.array([0.4, 0.7, 0.6, 0.9])
    assert geometric_predicate(left, right, c(left), c(right)) == "left of"
    assert geometric_predicate(right, left, c(right), c(left)) == "right of"
    assert geometric_predicate(top, bottom, c(top), c(bottom)) == "above"
    assert geometric_predicate(bottom, top, c(bottom), c(top)) == "below"
    # The angle's edges: exactly 45 degrees down-right is "below", exactly -135 degrees "left of".
    assert geometric_predicate(left, right, (1.0, 1.0), (0.0, 0.0)) == "below"
    assert geometric_predicate(left, right, (-1.0, -1.0), (0.0, 0.0)) == "left of"
    assert math.isclose(math.atan2(1, 1), math.pi / 4)
    # A mask's centre is its cells' mean position on the box grid: the left column only -> the box's left edge.
    mask = np.zeros([4, 4], np.uint8)
    mask[:, 0] = 1
    assert mask_centre(np.array([0.2, 0.0, 0.6, 1.0]), mask) == pytest.approx((0.2, 0.5))
    # Every ordered pair; left's centre is exactly 135 degrees from top's (d = (-0.4, 0.4)): "left of", and top is
    # exactly -45 degrees from left: "right of".
    triples = pair_triples(np.stack([left, right, top]), None)
    assert sorted(triples) == sorted([(0, P["left of"], 1), (1, P["right of"], 0), (0, P["left of"], 2),
                                      (2, P["right of"], 0), (1, P["below"], 2), (2, P["above"], 1)])


def test_missing_and_malformed_files_are_one_line_errors(tmp_path, capsys):
    coco = write_coco(tmp_path)
    path = os.path.join(coco, "annotations", "instances_val2017.json")
    with open(path, "w") as f:
        f.write('{"images": [')
    assert main(["--coco_dir", coco, "--out_dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "instances_val2017.json: not a readable JSON file" in err and "\n" not in err
    assert not os.path.exists(tmp_path / "out")
    os.remove(os.path.join(coco, "annotations", "stuff_train2017.json"))
    with pytest.raises(UserError, match="stuff_train2017.json not found"):
        convert_coco_stuff(coco, str(tmp_path / "out"))
