"""Tests of the CSS tf.data readers on generated + converted data."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i_tf.data import css_scene
from t2i_tf.datasets.css import convert, generate
from t2i_tf.data import css
from t2i_tf.data.safe_pickle import load_npy
from t2i_tf.errors import UserError

SIZE = 32


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("css")
    raw, out = str(root / "raw"), str(root / "tf")
    generate.generate_css(raw, seed=1, num_base_scenes=12, edits_per_scene=4, image_size=SIZE)
    convert.convert_css(raw, out, image_size=SIZE, examples_per_shard=10)
    return raw, out


def test_read_gallery_roundtrip(dirs):
    raw, out = dirs
    d = load_npy(os.path.join(raw, generate.NPY_NAME))
    images, labels = css.read_gallery(out, "test")
    assert images.shape == (60, SIZE, SIZE, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, d["test"]["labels"])
    for i in (0, 17, 59):
        png = np.asarray(Image.open(os.path.join(raw, "images", f"css_test_{i:06d}.png")))
        np.testing.assert_array_equal(images[i], png)


def test_read_queries_roundtrip(dirs):
    raw, out = dirs
    d = load_npy(os.path.join(raw, generate.NPY_NAME))["train"]
    q = css.read_queries(out, "train")
    pairs = [(i, f, t, m["to_str"]) for i, m in enumerate(d["mods"]) for f, t in zip(m["from"], m["to"])]
    assert list(zip(q["mod_id"], q["source_id"], q["target_id"], q["text"])) == pairs
    assert q["text"].dtype == object and isinstance(q["text"][0], str)
    for k in ("source_id", "target_id", "source_label", "target_label", "mod_id"):
        assert q[k].dtype == np.int64
    np.testing.assert_array_equal(q["target_label"], np.asarray(d["labels"])[q["target_id"]])
    np.testing.assert_array_equal(q["source_label"], np.asarray(d["labels"])[q["source_id"]])


def test_missing_split_is_a_user_error(dirs):
    with pytest.raises(UserError, match="val"):
        css.read_gallery(dirs[1], "val")


def test_train_dataset_batches(dirs):
    _, out = dirs
    images, labels = css.read_gallery(out, "train")
    q = css.read_queries(out, "train")
    ds = css.train_dataset(out, batch_size=8, seed=3)
    batches = list(ds.take(5).as_numpy_iterator())
    for b in batches:
        assert b["source_image"].shape == b["target_image"].shape == (8, SIZE, SIZE, 3)
        assert b["source_image"].dtype == np.float32 and b["text"].dtype == object
        assert b["target_label"].dtype == np.int64 and b["source_id"].dtype == np.int64
        assert -1.0 <= b["source_image"].min() and b["source_image"].max() <= 1.0
        assert b["source_image"].max() == 1.0  # white background
        np.testing.assert_array_equal(b["source_id"][0::2], b["source_id"][1::2])
        np.testing.assert_allclose(b["source_image"], images[b["source_id"]] / 127.5 - 1.0, atol=1e-6)
        assert np.all(b["text"][0::2] != b["text"][1::2])
        for i in range(0, 8, 2):
            assert np.abs(b["target_image"][i] - b["target_image"][i + 1]).max() > 0
        for row in range(8):  # each row is a real query of the split
            text = b["text"][row].decode()
            hit = (q["source_id"] == b["source_id"][row]) & (q["text"] == text)
            assert hit.sum() == 1
            t = q["target_id"][hit][0]
            assert b["target_label"][row] == labels[t]
            np.testing.assert_allclose(b["target_image"][row], images[t] / 127.5 - 1.0, atol=1e-6)
    first_again = next(iter(css.train_dataset(out, batch_size=8, seed=3)))
    for k in batches[0]:
        np.testing.assert_array_equal(first_again[k].numpy(), batches[0][k])
    other = next(iter(css.train_dataset(out, batch_size=8, seed=4)))
    assert not np.array_equal(other["source_id"].numpy(), batches[0]["source_id"])


def test_train_dataset_input_context_and_batch_checks(dirs):
    _, out = dirs
    ctx = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i, num_replicas_in_sync=2)
           for i in range(2)]
    a, b = (next(iter(css.train_dataset(out, batch_size=6, seed=0, input_context=c))) for c in ctx)
    assert a["source_image"].shape[0] == b["source_image"].shape[0] == 6
    assert not np.array_equal(a["source_id"].numpy(), b["source_id"].numpy())
    for bad in (7, 0):
        with pytest.raises(UserError, match="even"):
            css.train_dataset(out, batch_size=bad, seed=0)


def test_to_float_image():
    x = tf.constant([[0, 127, 255]], tf.uint8)
    np.testing.assert_allclose(css.to_float_image(x).numpy(), [[-1.0, 127 / 127.5 - 1, 1.0]], atol=1e-7)
    assert css.to_float_image(x).dtype == tf.float32


def test_gallery_keeps_ids_when_a_png_was_skipped(tmp_path):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "tf")
    generate.generate_css(raw, seed=0, num_base_scenes=3, edits_per_scene=2, image_size=16)
    os.remove(os.path.join(raw, "images", "css_train_000004.png"))
    convert.convert_css(raw, out, image_size=16)
    images, labels = css.read_gallery(out, "train")
    d = load_npy(os.path.join(raw, generate.NPY_NAME))["train"]
    assert images.shape[0] == 9 and labels[4] == -1 and not images[4].any()
    keep = np.arange(9) != 4
    np.testing.assert_array_equal(labels[keep], np.asarray(d["labels"])[keep])
    np.testing.assert_array_equal(images[5], css_scene.render_scene(d["objects_img"][5], 16))
    assert 4 not in css.read_queries(out, "train")["target_id"]
