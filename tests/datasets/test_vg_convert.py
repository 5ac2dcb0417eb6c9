"""Visual Genome -> scene-graph records: preprocess_vg.py's filtering on a fixture in download_vg.sh's layout."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i_tf.data.scene_graph_records import read_vocab
from t2i_tf.datasets.vg.convert import VgFilter, convert_vg, main
from t2i_tf.errors import UserError

W, H = 32, 24
# Low thresholds for a dozen images (the official defaults need thousands).
SETTINGS = VgFilter(min_image_size=20, min_object_instances=2, min_object_size=4, min_objects_per_image=2,
                    max_objects_per_image=4, min_relationship_instances=2, min_relationships_per_image=1,
                    max_relationships_per_image=3, max_objects=3)


def obj(oid, names, x=1, y=2, w=8, h=6):
    return {"object_id": oid, "names": names, "x": x, "y": y, "w": w, "h": h}


def rel(rid, s, pred, o):
    return {"relationship_id": rid, "predicate": pred, "subject": {"object_id": s, "name": "x"},
            "object": {"object_id": o, "name": "y"}}


# image id -> (objects, relationships)
GRAPHS = {
    1: ([obj(11, ["man"], 0, 0, 10, 10), obj(12, ["guy"], 12, 2, 10, 10), obj(13, ["tree"], 20, 4, 10, 12),
         obj(14, ["cat"], 5, 5, 2, 2)],  # too small, but counted for the vocabulary
        [rel(1, 11, "on", 13), rel(2, 12, "ON TOP OF ", 13), rel(3, 14, "near", 11), rel(4, 11, "holds", 12)]),
    2: ([obj(21, ["man"]), obj(22, ["tree"]), obj(23, ["dog"])], [rel(5, 23, "near", 21), rel(6, 21, "holds", 23)]),
    3: ([obj(31, ["bush", "tree"]), obj(32, ["man"])], [rel(7, 32, "near", 31), rel(8, 32, "wears", 31)]),
    4: ([obj(41 + k, ["man" if k % 2 else "tree"]) for k in range(4)] + [obj(45, ["man"])],
        [rel(9, 41, "on", 42)]),  # 5 objects: too many
    5: ([obj(51, ["dog"]), obj(52, ["cat"])], [rel(10, 51, "chases", 52)]),  # 'chases' not in the vocabulary
    6: ([obj(61, ["man"], w="wide"), obj(62, ["tree"])], [rel(11, 61, "on", 62)]),  # malformed object
    7: ([obj(71, ["horse"])] * 3, []),  # image smaller than min_image_size
    8: ([obj(81, ["man"]), obj(82, ["tree"])],
        [rel(12, 81, "on", 82), rel(13, 82, "near", 81), rel(14, 81, "holds", 82), rel(15, 81, "near", 82)]),
    9: ([obj(91, ["man"]), obj(92, ["tree"])], [rel(16, 91, "on", 92)]),  # its image is corrupt
    10: ([obj(101, ["men"]), obj(102, ["dog"], 2, 3, 20, 15)], [rel(17, 102, "near", 101)]),  # PNG image
    11: ([obj(111, ["man"]), obj(112, ["tree"])], [rel(18, 111, "on", 112)]),  # its image is missing
    13: ([obj(131, ["man"]), obj(132, ["tree"])], [rel(19, 131, "on", 132)]),  # in no split
    14: ([obj(141, ["man"]), obj(142, ["tree"])], [{"predicate": "on", "subject": {"object_id": 141}}]),  # no object
}
SPLITS = {"train": [1, 2, 3, 4, 5, 6, 7, 14], "val": [8, 9], "test": [10, 11, 12]}  # 12: not in objects.json


def write_vg(root) -> str:
    """A Visual Genome folder as download_vg.sh leaves it (plus sg2im's vg_splits.json)."""
    vg = os.path.join(root, "vg")
    for folder in ("VG_100K", "VG_100K_2"):
        os.makedirs(os.path.join(vg, "images", folder))
    image_data = []
    for image_id in range(1, 15):
        folder = "VG_100K_2" if image_id == 2 else "VG_100K"
        ext = "png" if image_id == 10 else "jpg"
        width = 16 if image_id == 7 else W
        image_data.append({"image_id": image_id, "width": width, "height": H, "coco_id": None, "flickr_id": None,
                           "url": f"https://cs.stanford.edu/people/rak248/{folder}/{image_id}.{ext}"})
        path = os.path.join(vg, "images", folder, f"{image_id}.{ext}")
        if image_id == 9:
            with open(path, "wb") as f:
                f.write(b"\xff\xd8 not really a jpeg")
        elif image_id != 11:
            rgb = np.random.default_rng(image_id).integers(0, 255, [H, width, 3], dtype=np.uint8)
            Image.fromarray(rgb).save(path)
    ids = [i for i in range(1, 15) if i in GRAPHS]
    files = {"image_data.json": image_data,  # plus an entry of each file without image_id
             "objects.json": [{"image_id": i, "image_url": "u", "objects": GRAPHS[i][0]} for i in ids] + [{}],
             "relationships.json": [{"image_id": i, "relationships": GRAPHS[i][1]} for i in ids] + [{}],
             "attributes.json": [{"image_id": i, "attributes": []} for i in ids], "vg_splits.json": SPLITS}
    for name, data in files.items():
        with open(os.path.join(vg, name), "w") as f:
            json.dump(data, f, indent=1)
    with open(os.path.join(vg, "object_alias.txt"), "w") as f:
        f.write("man,men,guy\nhorse,pony\n")
    with open(os.path.join(vg, "relationship_alias.txt"), "w") as f:
        f.write("on,on top of\n")
    return vg


def read_records(out, split):
    spec = {"objects": tf.io.VarLenFeature(tf.int64), "boxes": tf.io.VarLenFeature(tf.float32),
            "triples": tf.io.VarLenFeature(tf.int64), "image_id": tf.io.FixedLenFeature([], tf.int64),
            "name": tf.io.FixedLenFeature([], tf.string), "image": tf.io.FixedLenFeature([], tf.string)}
    files = sorted(f for f in os.listdir(out) if f.startswith(split + "-"))
    out_rows = {}
    for raw in tf.data.TFRecordDataset([os.path.join(out, f) for f in files]):
        ex = tf.io.parse_single_example(raw, spec)
        out_rows[int(ex["image_id"])] = {
            "objects": tf.sparse.to_dense(ex["objects"]).numpy().tolist(),
            "boxes": tf.sparse.to_dense(ex["boxes"]).numpy().reshape(-1, 4),
            "triples": tf.sparse.to_dense(ex["triples"]).numpy().reshape(-1, 3).tolist(),
            "name": ex["name"].numpy().decode(), "image": ex["image"].numpy()}
    return out_rows


def test_filtering_vocabulary_and_records_match_a_hand_count(tmp_path):
    vg = write_vg(tmp_path)
    out = str(tmp_path / "records")
    info = convert_vg(vg, out, settings=SETTINGS)
    # Vocabulary by hand: aliased name sets per training object (small image 7 and malformed image 6 left out):
    # man 8 (1: man, guy; 2; 3; 4: three; 14), tree 6, cat 2, dog 2 (ties in order of first appearance), bush 1.
    vocab = read_vocab(out)
    assert vocab.object_names == ("__image__", "man", "tree", "cat", "dog")
    # Predicates between kept objects of the training images (4 included: its count is filtered later): on 3
    # ("on", "on top of" -> on), holds 2, near 2 (image 1's cat is too small), wears 1, chases 1 (< 2).
    assert vocab.predicates == ("__in_image__", "on", "holds", "near")
    assert info["skipped"] == {"train": {"bad_annotation": 2, "small_image": 1, "too_few_relationships": 1,
                                         "too_many_objects": 1},
                               "val": {"corrupt_image": 1, "too_many_relationships": 1},
                               "test": {"missing_image": 1, "no_annotations": 1}}
    counts = {s: v["num_examples"] for s, v in info["splits"].items()}
    assert counts == {"train": 3, "val": 0, "test": 1}
    # No image is lost: every split image is written or skipped with a reason.
    skipped = sum(sum(r.values()) for r in info["skipped"].values())
    assert sum(counts.values()) + skipped == sum(len(ids) for ids in SPLITS.values())
    assert info["filtering"]["objects_too_small"] == 1 and info["filtering"]["entries_without_image_id"] == 1
    assert info["graph_max_objects"] == 4 and info["graph_max_relations"] == 3 and info["mask_size"] == 0

    train = read_records(out, "train")
    man, tree, dog = 2, 3, 5  # ids = vocabulary index + 1
    assert train[1]["objects"] == [man, man, tree]
    assert train[1]["triples"] == [[0, 1, 2], [1, 1, 2], [0, 2, 1]]
    np.testing.assert_allclose(train[1]["boxes"][2], [20 / W, 4 / H, 30 / W, 16 / H], rtol=1e-6)
    assert train[2]["objects"] == [man, tree, dog] and train[2]["triples"] == [[2, 3, 0], [0, 2, 2]]
    assert train[2]["name"] == "VG_100K_2/2.jpg"
    assert train[3]["objects"] == [tree, man] and train[3]["triples"] == [[1, 3, 0]]
    test = read_records(out, "test")
    assert test[10]["objects"] == [man, dog] and test[10]["image"][:4] == b"\x89PNG"
    np.testing.assert_allclose(test[10]["boxes"][1], [2 / W, 3 / H, 22 / W, 18 / H], rtol=1e-6)


def test_official_defaults_keep_nothing_of_a_small_subset_and_say_so(tmp_path):
    info = convert_vg(write_vg(tmp_path), str(tmp_path / "out"))
    assert info["settings"]["min_object_instances"] == 2000 and info["settings"]["min_object_size"] == 32
    assert info["filtering"]["object_names"] == 0
    assert all(v["num_examples"] == 0 for v in info["splits"].values())


def test_missing_and_malformed_files_are_one_line_errors(tmp_path, capsys):
    vg = write_vg(tmp_path)
    os.rename(os.path.join(vg, "vg_splits.json"), os.path.join(tmp_path, "splits.json"))
    with pytest.raises(UserError, match="vg_splits.json not found.*--splits_json"):
        convert_vg(vg, str(tmp_path / "out"), settings=SETTINGS)
    splits = str(tmp_path / "splits.json")
    with open(os.path.join(vg, "relationships.json"), "r+") as f:
        text = f.read()
        f.seek(0)
        f.write(text[:len(text) // 2])
        f.truncate()
    assert main(["--vg_dir", vg, "--out_dir", str(tmp_path / "out"), "--splits_json", splits,
                 "--min_object_instances", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "relationships.json: not a JSON array" in err and "\n" not in err
    assert not os.path.exists(tmp_path / "out")  # nothing half-written
    os.remove(os.path.join(vg, "objects.json"))
    with pytest.raises(UserError, match="objects.json not found"):
        convert_vg(vg, str(tmp_path / "out"), splits_json=splits, settings=SETTINGS)
