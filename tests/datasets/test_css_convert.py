"""Tests of the CSS converter on generated data and on a fixture in the official (Python 2) layout."""

from __future__ import annotations

import io
import json
import os
import pickle

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i_tf.data import css_scene
from t2i_tf.datasets.css import convert, generate
from t2i_tf.data.records import read_info
from t2i_tf.data.safe_pickle import load_npy, save_object_npy, write_object_npy
from t2i_tf.errors import UserError
from tests.py2_pickle import Py2Pickler


def read_records(out_dir: str, name: str) -> list[dict]:
    """All examples of a record set, as dicts of python values (independent of the project reader)."""
    rows = []
    for path in sorted(tf.io.gfile.glob(os.path.join(out_dir, f"{name}-*.tfrecord"))):
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            feats = tf.train.Example.FromString(raw).features.feature
            rows.append({k: (list(v.int64_list.value) or list(v.bytes_list.value))[0] for k, v in feats.items()})
    return rows


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    raw, out = str(root / "raw"), str(root / "tf")
    generate.generate_css(raw, seed=0, num_base_scenes=10, edits_per_scene=3, image_size=32)
    info = convert.convert_css(raw, out, image_size=32, examples_per_shard=16)
    return raw, out, info


def test_generated_counts_and_info(generated):
    raw, out, info = generated
    assert read_info(out) == json.loads(json.dumps(info))
    for split in ("train", "test"):
        c = info["splits"][split]
        assert c["num_images"] == c["num_image_ids"] == 40 and c["num_queries"] == 30
        assert info["skipped"][split] == {}
        assert len(tf.io.gfile.glob(os.path.join(out, f"images_{split}-*.tfrecord"))) == 3  # 16 per shard
    assert info["dataset"] == "css" and info["image_size"] == 32 and info["texts_vocabulary_source"] == "train"
    assert info["generation"]["held_out_combos"] == [list(c) for c in css_scene.held_out_combos()]


def test_generated_images_labels_and_queries_roundtrip(generated):
    raw, out, info = generated
    d = load_npy(os.path.join(raw, generate.NPY_NAME))
    for split in ("train", "test"):
        images = read_records(out, f"images_{split}")
        assert [r["image_id"] for r in images] == list(range(40))
        labels = d[split]["labels"]
        for r in images:
            assert r["label"] == labels[r["image_id"]]
            pixels = decode(r["image"])
            assert pixels.shape == (32, 32, 3)
            np.testing.assert_array_equal(pixels, css_scene.render_scene(d[split]["objects_img"][r["image_id"]], 32))
        expected = [(i, f, t, m["to_str"]) for i, m in enumerate(d[split]["mods"]) for f, t in zip(m["from"], m["to"])]
        rows = read_records(out, f"queries_{split}")
        got = [(r["mod_id"], r["source_id"], r["target_id"], r["text"].decode()) for r in rows]
        assert got == expected
        for r in read_records(out, f"queries_{split}"):
            assert (r["source_label"], r["target_label"]) == (labels[r["source_id"]], labels[r["target_id"]])
        assert info["splits"][split]["num_labels"] == len(set(labels))


def test_generated_images_carry_their_scene_cells(generated):
    from t2i_tf.data.css import read_scene_cells
    from t2i_tf.data.css_cells import scene_cells

    raw, out, info = generated
    d = load_npy(os.path.join(raw, generate.NPY_NAME))
    for split in ("train", "test"):
        cells = read_scene_cells(out, split)
        expected = np.array([scene_cells(objs) for objs in d[split]["objects_img"]])
        np.testing.assert_array_equal(cells, expected)
        assert (cells > 0).any(axis=1).all()  # every generated scene has objects


def test_scene_cells_of_uncodable_objects_are_minus_one_and_counted(tmp_path):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "tf")
    generate.generate_css(raw, seed=1, num_base_scenes=3, edits_per_scene=1, image_size=16)
    npy = os.path.join(raw, generate.NPY_NAME)
    d = load_npy(npy)
    objs = d["train"]["objects_img"][0]
    d["train"]["objects_img"][0] = objs + [dict(objs[0])]  # a second object in an occupied cell
    save_object_npy(npy, d)
    info = convert.convert_css(raw, out, image_size=16)
    from t2i_tf.data.css import read_scene_cells

    cells = read_scene_cells(out, "train")
    assert (cells[0] == -1).all() and (cells[1:] >= 0).all()
    assert info["skipped"]["train"] == {"images_without_scene_cells": 1}
    assert info["splits"]["train"]["num_images"] == info["splits"]["train"]["num_image_ids"]  # the image is kept


def test_records_without_scene_cells_are_a_clear_error(generated, tmp_path):
    import shutil

    from t2i_tf.data.css import read_scene_cells

    _, out, _ = generated
    old = str(tmp_path / "old")
    shutil.copytree(out, old)
    info = read_info(old)
    info["image_features"] = ["image", "image_id", "label"]
    with open(os.path.join(old, "info.json"), "w") as f:
        json.dump(info, f)
    with pytest.raises(UserError, match="no scene cells"):
        read_scene_cells(old, "train")


# --- official layout ---------------------------------------------------------------------------



OFFICIAL_COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (128, 128, 128)]


def official_split(n: int, as_bytes: bool) -> dict:
    s = (lambda x: x.encode("ascii")) if as_bytes else (lambda x: x)
    objects = [[{s("pos"): (0.5, 0.5), s("size"): s("large"), s("color"): s("red"), s("shape"): s("cube")}]] * n
    mods = [{s("from"): np.array([0, 0]), s("to"): np.array([1, 2]), s("to_str"): s("make middle-center cube green")},
            {s("from"): [1], s("to"): [3], s("to_str"): s("add blue sphere to top-left")}]
    split = {s("objects_img"): objects, s("mods"): mods}
    if as_bytes:
        split[s("labels")] = np.array([200, 1000, 70000, 13], np.int64)[:n]  # non-ASCII raw bytes
    return split


def write_official(raw: str, pickled: bytes, n: int = 4) -> None:
    """The official layout: a Python 2 object npy and large RGBA / grey PNGs."""
    os.makedirs(os.path.join(raw, "images"), exist_ok=True)
    write_object_npy(os.path.join(raw, generate.NPY_NAME), pickled)
    for split in ("train", "test"):
        for i in range(n):
            rgba = np.zeros((120, 120, 4), np.uint8)
            rgba[..., :3], rgba[..., 3] = OFFICIAL_COLORS[i], 255
            rgba[:20, :, 3] = 0  # transparent top band: composited on white
            im = Image.fromarray(rgba, "RGBA") if i != 3 else Image.fromarray(rgba[..., 0], "L")
            im.save(os.path.join(raw, "images", f"css_{split}_{i:06d}.png"))


@pytest.mark.parametrize("style", ["protocol2_str", "py2_byte_strings"])
def test_official_layout(tmp_path, style):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "tf")
    as_bytes = style == "py2_byte_strings"
    data = np.array({"train": official_split(4, as_bytes), "test": official_split(4, as_bytes)}, dtype=object)
    if as_bytes:
        buf = io.BytesIO()
        Py2Pickler(buf, protocol=2, fix_imports=True).dump(data)
        pickled = buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
        assert b"U\x06labels" in pickled and b"_codecs" not in pickled
        write_official(raw, pickled)
        with pytest.raises(UserError):  # py2 byte strings with non-ASCII bytes: only latin1 reads them
            load_npy(os.path.join(raw, generate.NPY_NAME), encoding="ascii")
    else:
        pickled = pickle.dumps(data, protocol=2)
    write_official(raw, pickled)
    info = convert.convert_css(raw, out, image_size=64)
    assert info["splits"]["train"] == {"num_images": 4, "num_image_ids": 4, "num_queries": 3, "num_labels": 4,
                                       "num_mods": 2}
    images = read_records(out, "images_test")
    for r in images:
        px = decode(r["image"])
        assert px.shape == (64, 64, 3)
        expected = OFFICIAL_COLORS[r["image_id"]] if r["image_id"] != 3 else (128, 128, 128)
        np.testing.assert_allclose(px[32, 32], expected, atol=1)
        if r["image_id"] != 3:
            np.testing.assert_array_equal(px[2, 32], [255, 255, 255])
    assert [r["label"] for r in images] == ([200, 1000, 70000, 13] if as_bytes else [0, 1, 2, 3])
    q = read_records(out, "queries_train")
    assert [(r["source_id"], r["target_id"], r["text"]) for r in q] == [
        (0, 1, b"make middle-center cube green"), (0, 2, b"make middle-center cube green"),
        (1, 3, b"add blue sphere to top-left")]


def test_bad_pngs_and_ids_are_skipped_and_counted(tmp_path, capsys):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "tf")
    split = official_split(4, False)
    split["mods"].append({"from": [0, 7], "to": [9, 1], "to_str": "remove everything"})  # both out of range
    write_official(raw, pickle.dumps(np.array({"train": split}, dtype=object), protocol=2))
    os.remove(os.path.join(raw, "images", "css_train_000002.png"))
    with open(os.path.join(raw, "images", "css_train_000003.png"), "r+b") as f:
        f.truncate(60)  # a corrupt PNG
    info = convert.convert_css(raw, out)
    assert info["skipped"]["train"] == {"missing_png": 1, "corrupt_png": 1, "query_image_skipped": 2,
                                        "query_id_out_of_range": 2,
                                        "images_without_scene_cells": 2}  # 'cube' is not a CSS 2D shape code
    assert info["splits"]["train"]["num_images"] == 2 and info["splits"]["train"]["num_queries"] == 1
    assert [r["image_id"] for r in read_records(out, "images_train")] == [0, 1]
    assert [(r["source_id"], r["target_id"]) for r in read_records(out, "queries_train")] == [(0, 1)]
    summary = [line for line in capsys.readouterr().out.splitlines() if line.startswith("css converted")]
    assert len(summary) == 1 and "1 missing_png" in summary[0] and "1 corrupt_png" in summary[0]


def test_bad_input_raises_user_error(tmp_path):
    raw = str(tmp_path / "raw")
    os.makedirs(os.path.join(raw, "images"))
    with pytest.raises(UserError, match=generate.NPY_NAME):
        convert.convert_css(raw, str(tmp_path / "out"))
    save_object_npy(os.path.join(raw, generate.NPY_NAME), {"train": {"objects_img": [[]]}})
    with pytest.raises(UserError, match="missing key 'mods'"):
        convert.convert_css(raw, str(tmp_path / "out"))
    save_object_npy(os.path.join(raw, generate.NPY_NAME), {"foo": {}})
    with pytest.raises(UserError, match="missing key 'train'"):
        convert.convert_css(raw, str(tmp_path / "out"))
    os.rmdir(os.path.join(raw, "images"))
    with pytest.raises(UserError, match="images"):
        convert.convert_css(raw, str(tmp_path / "out"))
    assert convert.main([f"--raw_dir={raw}", f"--out_dir={tmp_path / 'out'}"]) == 1


def test_prepare_default_css_converts_once(tmp_path, monkeypatch):
    kw = dict(num_base_scenes=3, edits_per_scene=2)
    out = convert.prepare_default_css(str(tmp_path), seed=4, image_size=16, **kw)
    assert out.endswith("_tfrecords_v2") and os.path.isdir(out[: -len("_tfrecords_v2")])
    info = read_info(out)
    assert info["image_size"] == 16 and info["splits"]["train"]["num_queries"] == 6

    def fail(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(convert, "convert_css", fail)
    assert convert.prepare_default_css(str(tmp_path), seed=4, image_size=16, **kw) == out
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(out), os.path.basename(out)[: -len("_tfrecords_v2")]])


def test_cli(generated, tmp_path):
    raw, _, _ = generated
    assert convert.main([f"--raw_dir={raw}", f"--out_dir={tmp_path}", "--image_size=16"]) == 0
    px = decode(read_records(str(tmp_path), "images_train")[0]["image"])
    assert px.shape == (16, 16, 3)


def test_sixteen_bit_pngs_keep_their_pixels_and_other_formats_are_counted(tmp_path):
    """A 16-bit greyscale PNG was converted to a blank white image and kept; now its grey levels survive. A file
    that is not PNG (a GIF renamed .png) is a counted corrupt_png skip."""
    raw, out = str(tmp_path / "raw"), str(tmp_path / "tf")
    write_official(raw, pickle.dumps(np.array({"train": official_split(4, False)}, dtype=object), protocol=2))
    path = os.path.join(raw, "images", "css_train_000001.png")
    grey8 = np.asarray(Image.open(path).convert("L"))
    Image.fromarray(grey8.astype(np.uint16) * 257).save(path)  # the same picture in 16-bit greyscale
    assert Image.open(path).mode == "I;16"
    Image.open(os.path.join(raw, "images", "css_train_000002.png")).save(
        os.path.join(raw, "images", "css_train_000002.png"), format="GIF")
    info = convert.convert_css(raw, out, image_size=grey8.shape[0])
    assert info["skipped"]["train"]["corrupt_png"] == 1
    records = {r["image_id"]: r for r in read_records(out, "images_train")}
    assert 2 not in records
    got = np.asarray(Image.open(io.BytesIO(records[1]["image"])).convert("RGB"))
    np.testing.assert_array_equal(got[..., 0], grey8)
    assert grey8.min() < 200  # there is something that is not white to keep


def test_a_failed_reconversion_leaves_the_previous_records_whole(tmp_path, monkeypatch):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "tf")
    splits = {"train": official_split(4, False), "test": official_split(3, False)}
    write_official(raw, pickle.dumps(np.array(splits, dtype=object), protocol=2))
    convert.convert_css(raw, out)
    before = {name: open(os.path.join(out, name), "rb").read() for name in os.listdir(out)}
    real = convert._convert_split

    def dies_on_test(split, *args):  # a kill / full disk half-way: train rewritten, test not
        if split == "test":
            raise KeyboardInterrupt
        return real(split, *args)

    monkeypatch.setattr(convert, "_convert_split", dies_on_test)
    with pytest.raises(KeyboardInterrupt):
        convert.convert_css(raw, out, image_size=32)
    after = {name: open(os.path.join(out, name), "rb").read() for name in os.listdir(out)}
    assert after == before  # info.json and every shard as they were
    monkeypatch.setattr(convert, "_convert_split", real)
    info = convert.convert_css(raw, out, image_size=32)  # the next conversion replaces them, clears leftovers
    assert read_info(out) == info and info["image_size"] == 32
    assert not [n for n in os.listdir(tmp_path) if ".staging-" in n or ".old-" in n]


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.update(labels=["0", "1", "2", "3"]), r"labels\[0\] must be an int64, got '0'"),
    (lambda sd: sd.update(labels=[0, 1, 1e30, 3]), r"labels\[2\] must be an int64, got 1e\+30"),
    (lambda sd: sd.update(labels=[0, 1, 2, 2**70]), r"labels\[3\] must be an int64"),
    (lambda sd: sd.update(mods=7), "'mods' must be a list of"),
    (lambda sd: sd.update(objects_img=None), "'objects_img' must be a list of object lists, got NoneType"),
    (lambda sd: sd["mods"][1].update({"from": "0"}), "mods\\[1\\] 'from': expected a list of image indices, got str"),
])
def test_wrong_typed_fields_are_clear_errors(tmp_path, change, message):
    raw = str(tmp_path / "raw")
    split = official_split(4, False)
    change(split)
    write_official(raw, pickle.dumps(np.array({"train": split}, dtype=object), protocol=2))
    with pytest.raises(UserError, match=message):
        convert.convert_css(raw, str(tmp_path / "out"))


def test_silently_wrong_queries_are_now_counted_skips(tmp_path):
    """A to_str of None used to become the text "None", an index of 1.7 the image 1."""
    raw = str(tmp_path / "raw")
    split = official_split(4, False)
    split["mods"].append({"from": [0], "to": [1], "to_str": None})
    split["mods"].append({"from": [1.7], "to": [2], "to_str": "remove the cube"})
    split["mods"].append({"from": [2.0], "to": [3], "to_str": "remove the cube"})  # 2.0 is index 2
    write_official(raw, pickle.dumps(np.array({"train": split}, dtype=object), protocol=2))
    info = convert.convert_css(raw, str(tmp_path / "out"))
    skipped = info["skipped"]["train"]
    assert skipped["query_text_not_a_string"] == 1 and skipped["query_id_out_of_range"] == 1
    texts = [r["text"] for r in read_records(str(tmp_path / "out"), "queries_train")]
    assert "None" not in texts and info["splits"]["train"]["num_queries"] == 4  # the 3 official + the 2.0 one
