"""Captioned CSS: generated scenes -> text-to-image records (one example per distinct scene)."""

import glob
import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i_tf.datasets.css import captions as cc
from t2i_tf.data.css_scene import pos_cell, render_scene, scene_caption
from t2i_tf.datasets.css.generate import NPY_NAME, generate_css, generated_dir_name
from t2i_tf.data.css_cells import cells_objects, decode_object
from t2i_tf.data.records import read_info
from t2i_tf.data.safe_pickle import load_npy
from t2i_tf.data.t2i import t2i_dataset
from t2i_tf.errors import UserError


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("css_raw"))
    generate_css(path, seed=5, num_base_scenes=4, edits_per_scene=3, image_size=16)
    return path


def _records(out_dir, split):
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "name": tf.io.FixedLenFeature([], tf.string),
            "class_id": tf.io.FixedLenFeature([], tf.int64), "captions": tf.io.VarLenFeature(tf.string),
            "embeddings": tf.io.VarLenFeature(tf.float32)}
    out = []
    for s in tf.data.TFRecordDataset(sorted(glob.glob(os.path.join(out_dir, f"{split}-*.tfrecord")))):
        ex = tf.io.parse_single_example(s, spec)
        out.append({"image": np.asarray(Image.open(io.BytesIO(ex["image"].numpy()))),
                    "name": ex["name"].numpy().decode(), "class_id": int(ex["class_id"]),
                    "captions": [c.decode() for c in ex["captions"].values.numpy()],
                    "embeddings": ex["embeddings"].values.numpy()})
    return out


def test_one_record_per_distinct_scene_with_its_caption_image_and_class(raw, tmp_path):
    out = str(tmp_path / "rec")
    info = cc.convert_css_captions(raw, out, image_size=24, captions_per_image=3, num_classes=7)
    data = load_npy(os.path.join(raw, NPY_NAME))
    for split in ("train", "test"):
        objects_img, labels = data[split]["objects_img"], data[split]["labels"]
        recs = _records(out, split)
        assert len(recs) == len(set(labels)) == info["splits"][split]["num_examples"]  # duplicates dropped
        assert len({r["captions"][0] for r in recs}) == len(recs)
        for r in recs:
            objs = objects_img[int(r["name"].rsplit("_", 1)[1])]
            assert r["captions"][0] == scene_caption(objs)
            assert len(r["captions"]) == 3 and len(set(r["captions"])) == 3
            np.testing.assert_array_equal(r["image"], render_scene(objs, 24))  # rendered at 24 px, lossless
            assert r["class_id"] == cc.class_id_of(r["captions"][0], 7)
            assert 1 <= r["class_id"] <= 7
            assert r["embeddings"].size == 0
    assert info["dataset"] == "css_captions" and info["format"] == "t2i-v1" and info["image_size"] == 24
    assert info["embedding_dim"] is None
    assert "crc32" in info["class_id_rule"] and "7" in info["class_id_rule"]
    assert read_info(out)["splits"]["train"]["num_examples"] == info["splits"]["train"]["num_examples"]


def test_paraphrases_name_every_object():
    objs = [{"pos": (0.2, 0.8), "size": "large", "color": "red", "shape": "circle"},
            {"pos": (0.5, 0.5), "size": "small", "color": "blue", "shape": "triangle"}]
    caps = cc.scene_captions(objs, 4)
    assert caps[0] == scene_caption(objs) == "a large red circle at the top right and a small blue triangle in the center"
    assert caps[1] == "a white picture with a small blue triangle at the center and a large red circle at the top right"
    assert len(set(caps)) == 4
    for c in caps:
        for word in ("large", "red", "circle", "small", "blue", "triangle", "right", "center"):
            assert word in c, (word, c)
    assert caps[2].startswith("two objects:")
    assert cc.scene_captions(objs, 1) == [scene_caption(objs)]
    with pytest.raises(UserError, match="captions_per_image"):
        cc.scene_captions(objs, 5)


def test_attribute_embeddings_and_reader(raw, tmp_path):
    out = str(tmp_path / "rec_attr")
    info = cc.convert_css_captions(raw, out, image_size=16, captions_per_image=2, attribute_embeddings=True)
    assert info["embedding_dim"] == cc.ATTRIBUTE_DIM == 126
    data = load_npy(os.path.join(raw, NPY_NAME))
    for r in _records(out, "train"):
        objs = data["train"]["objects_img"][int(r["name"].rsplit("_", 1)[1])]
        emb = r["embeddings"].reshape(2, 126)
        np.testing.assert_array_equal(emb[0], emb[1])
        np.testing.assert_array_equal(emb[0], cc.attribute_embedding(objs))
        assert emb[0].sum() == 4 * len(objs)  # present + size + colour + shape per object
    batch = next(iter(t2i_dataset(out, "train", 4, image_size=16, training=True, seed=0)))
    assert batch["image"].shape == (4, 16, 16, 3) and batch["wrong_image"].shape == (4, 16, 16, 3)
    assert batch["embedding"].shape == (4, 126)
    assert all(c.decode().startswith(("a ", "an ")) for c in batch["caption"].numpy())


def test_prepare_default_is_made_once_and_reused(tmp_path, monkeypatch):
    sizes = dict(num_base_scenes=2, edits_per_scene=2)
    first = cc.prepare_default_css_captions(str(tmp_path), seed=0, image_size=16, **sizes)
    assert os.path.basename(first).startswith(generated_dir_name(0, **sizes))  # raw scenes shared with TIRG's default
    assert first.endswith("_captions_px16_c3_k50_v2") and read_info(first)["image_size"] == 16
    assert read_info(first)["extra_int64"] == {"scene_cells": 9}  # caches from before scene_cells are not reused
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]  # built in a temp dir, renamed into place

    def fail(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(cc, "convert_css_captions", fail)
    assert cc.prepare_default_css_captions(str(tmp_path), seed=0, image_size=16, **sizes) == first


def test_scene_cells_name_each_cells_object(raw, tmp_path):
    out = str(tmp_path / "rec_cells")
    info = cc.convert_css_captions(raw, out, image_size=16)
    assert info["extra_int64"] == {"scene_cells": 9} and "scene_cells" in info["features"]
    assert "1 + (size * 8 + colour) * 3 + shape" in info["scene_cells_rule"]
    data = load_npy(os.path.join(raw, NPY_NAME))
    spec = {"name": tf.io.FixedLenFeature([], tf.string), "scene_cells": tf.io.FixedLenFeature([9], tf.int64)}
    n_objects = 0
    for split in ("train", "test"):
        for s in tf.data.TFRecordDataset(sorted(glob.glob(os.path.join(out, f"{split}-*.tfrecord")))):
            ex = tf.io.parse_single_example(s, spec)
            objs = data[split]["objects_img"][int(ex["name"].numpy().decode().rsplit("_", 1)[1])]
            cells = ex["scene_cells"].numpy()
            want = {pos_cell(o["pos"]): (o["size"], o["color"], o["shape"]) for o in objs}
            for cell in range(9):
                assert decode_object(cells[cell]) == want.get(cell), (split, cell, cells, objs)
            n_objects += len(objs)
    assert n_objects > 20


def test_reader_passes_scene_cells_through(raw, tmp_path):
    out = str(tmp_path / "rec_reader")
    cc.convert_css_captions(raw, out, image_size=16)
    ev = next(iter(t2i_dataset(out, "test", 64, image_size=16, training=False)))
    assert ev["scene_cells"].dtype == tf.int64 and ev["scene_cells"].shape[1:] == (9,)
    tr = next(iter(t2i_dataset(out, "test", 8, image_size=16, training=True, seed=1, random_flip=False,
                               random_crop=False)))
    assert tr["scene_cells"].shape == (8, 9)
    for batch in (ev, tr):
        for image, cells in zip(batch["image"].numpy(), batch["scene_cells"].numpy()):
            # Generated objects sit at cell centres: the cells alone re-render the very image they came with
            # (and with random_crop=False a training image is the whole scene, as in evaluation).
            np.testing.assert_allclose(image, render_scene(cells_objects(cells), 16) / 127.5 - 1.0, atol=1e-5)


def test_clear_errors(tmp_path, raw):
    with pytest.raises(UserError, match=NPY_NAME):
        cc.convert_css_captions(str(tmp_path), str(tmp_path / "out"))
    with pytest.raises(UserError, match="num_classes"):
        cc.convert_css_captions(raw, str(tmp_path / "out"), num_classes=1)
    assert cc.main(["--raw_dir", str(tmp_path), "--out_dir", str(tmp_path / "o")]) == 1
