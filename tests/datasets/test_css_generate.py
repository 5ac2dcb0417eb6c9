"""Tests of the CSS-compatible scene generator: schema, edits vs texts, held-out combos, rendering."""

from __future__ import annotations

import filecmp
import json
import os
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from t2i_tf.data import css_scene
from t2i_tf.datasets.css import generate as gen
from t2i_tf.data.safe_pickle import load_npy

N_BASE, EDITS, SIZE = 20, 4, 32
CELLS = {name: i for i, name in enumerate(css_scene.CELL_NAMES)}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("css_raw"))
    gen.generate_css(out, seed=3, num_base_scenes=N_BASE, edits_per_scene=EDITS, image_size=SIZE)
    return out


@pytest.fixture(scope="module")
def data(raw) -> dict:
    return load_npy(os.path.join(raw, gen.NPY_NAME))


def scene_of(objects) -> dict[int, tuple[str, str, str]]:
    """cell -> (size, colour, shape), checking the positions are cell centres."""
    out = {}
    for o in objects:
        cell = css_scene.pos_cell(o["pos"])
        assert np.allclose(o["pos"], css_scene.cell_pos(cell))
        assert cell not in out, "two objects in one cell"
        out[cell] = (o["size"], o["color"], o["shape"])
    return out


def apply_text(source: dict, text: str) -> tuple[str, dict]:
    """Parse a modification text independently of the generator and apply it: (kind, new scene)."""
    assert text == text.lower() and text == " ".join(text.split()), text
    w = text.split()
    scene = dict(source)
    if w[0] == "add":
        assert len(w) == 6 and w[4] == "to", text
        cell = CELLS[w[5]]
        assert cell not in scene, f"{text}: cell is occupied"
        scene[cell] = (w[1], w[2], w[3])
        return "add", scene
    cell = CELLS[w[1]]
    size, color, shape = scene[cell]
    if w[0] == "remove":
        desc = w[2:]
        assert desc in ([color, "object"], [size, "object"], [shape], [size, shape]), text
        del scene[cell]
        return "remove", scene
    assert w[0] == "make", text
    if len(w) == 7:
        assert w[2:5] == [size, color, shape] and w[5] == ("an" if w[6][0] in "aeiou" else "a"), text
        assert w[6] in css_scene.SHAPES and w[6] != shape
        scene[cell] = (size, color, w[6])
        return "shape", scene
    assert len(w) == 5, text
    new = w[4]
    if new in css_scene.COLORS:
        assert w[2:4] == [size, shape] and new != color, text
        scene[cell] = (size, new, shape)
        return "color", scene
    assert new in css_scene.SIZES and w[2:4] == [color, shape] and new != size, text
    scene[cell] = (new, color, shape)
    return "size", scene


def queries(split_data):
    for m in split_data["mods"]:
        assert len(m["from"]) == len(m["to"]) >= 1
        for f, t in zip(m["from"], m["to"]):
            yield f, t, m["to_str"]


def test_schema_and_counts(data, raw):
    assert set(data) == {"train", "test"}
    for split, sd in data.items():
        assert set(sd) == {"objects_img", "mods", "labels"}
        n = N_BASE * (1 + EDITS)
        assert len(sd["objects_img"]) == len(sd["labels"]) == n
        for objs in sd["objects_img"]:
            assert isinstance(objs, list) and 1 <= len(objs) <= 6
            for o in objs:
                assert set(o) == {"pos", "size", "color", "shape"}
                assert len(o["pos"]) == 2 and all(0 <= p <= 1 for p in o["pos"])
                assert o["size"] in css_scene.SIZES and o["color"] in css_scene.COLORS and o["shape"] in css_scene.SHAPES
        assert all(isinstance(x, int) for x in sd["labels"])
        texts = [m["to_str"] for m in sd["mods"]]
        assert len(texts) == len(set(texts)), "one mods entry per text"
        assert sum(1 for _ in queries(sd)) == N_BASE * EDITS
        for i in range(n):
            assert os.path.isfile(os.path.join(raw, "images", f"css_{split}_{i:06d}.png"))


def test_labels_identify_scenes(data):
    for sd in data.values():
        keys = [frozenset(scene_of(objs).items()) for objs in sd["objects_img"]]
        label_of_key: dict = {}
        key_of_label: dict = {}
        for key, label in zip(keys, sd["labels"]):
            assert label_of_key.setdefault(key, label) == label, "identical scenes must share a label"
            assert key_of_label.setdefault(label, key) == key, "distinct scenes must have distinct labels"


def test_each_query_is_one_described_edit_from_a_base(data):
    for sd in data.values():
        scenes = [scene_of(objs) for objs in sd["objects_img"]]
        by_source: dict[int, list[int]] = {}
        kinds = Counter()
        targets = set()
        for f, t, text in queries(sd):
            kind, result = apply_text(scenes[f], text)
            assert result == scenes[t], f"{text!r} does not turn image {f} into image {t}"
            kinds[kind] += 1
            by_source.setdefault(f, []).append(t)
            targets.add(t)
        assert len(by_source) == N_BASE and all(len(v) == EDITS for v in by_source.values())
        assert not targets & set(by_source), "queries go base -> variant only"
        for f, ts in by_source.items():
            assert len({sd["labels"][t] for t in ts}) == EDITS, "variants of a base are distinct scenes"
            assert 2 <= len(scenes[f]) <= 5
        total = sum(kinds.values())
        for group in (("add",), ("remove",), ("color", "size", "shape")):
            assert sum(kinds[k] for k in group) >= 0.2 * total, kinds
        assert all(kinds[k] > 0 for k in ("color", "size", "shape")), kinds


def test_held_out_combos(data, raw):
    held = set(css_scene.held_out_combos())
    assert len(held) == 4
    novel = lambda objs: any((o["color"], o["shape"]) in held for o in objs)  # noqa: E731
    assert not any(novel(objs) for objs in data["train"]["objects_img"])
    test = data["test"]
    hits = [novel(test["objects_img"][f]) or novel(test["objects_img"][t]) for f, t, _ in queries(test)]
    assert sum(hits) >= len(hits) / 3
    seen = {(o["color"], o["shape"]) for objs in test["objects_img"] for o in objs}
    assert seen & held
    with open(os.path.join(raw, gen.GENERATION_FILE)) as f:
        record = json.load(f)
    assert {tuple(c) for c in record["held_out_combos"]} == held
    assert record["seed"] == 3 and record["num_queries"] == {"train": N_BASE * EDITS, "test": N_BASE * EDITS}


def test_images_render_their_objects(data, raw):
    for i in (0, 1, 7):
        png = np.asarray(Image.open(os.path.join(raw, "images", f"css_test_{i:06d}.png")))
        assert png.shape == (SIZE, SIZE, 3) and png.dtype == np.uint8
        np.testing.assert_array_equal(png, css_scene.render_scene(data["test"]["objects_img"][i], SIZE))


def test_deterministic_per_seed(tmp_path):
    kw = dict(num_base_scenes=4, edits_per_scene=3, image_size=16)
    a, b, c = (str(tmp_path / n) for n in "abc")
    gen.generate_css(a, seed=5, **kw)
    gen.generate_css(b, seed=5, **kw)
    gen.generate_css(c, seed=6, **kw)
    names = sorted(os.listdir(os.path.join(a, "images")))
    assert names == sorted(os.listdir(os.path.join(b, "images"))) and len(names) == 2 * 4 * 4
    match, mismatch, errors = filecmp.cmpfiles(a, b, [gen.NPY_NAME, gen.GENERATION_FILE], shallow=False)
    assert not mismatch and not errors
    _, mismatch, errors = filecmp.cmpfiles(os.path.join(a, "images"), os.path.join(b, "images"), names, shallow=False)
    assert not mismatch and not errors
    assert not filecmp.cmp(os.path.join(a, gen.NPY_NAME), os.path.join(c, gen.NPY_NAME), shallow=False)


def test_ensure_css_data_generates_once(tmp_path, monkeypatch):
    monkeypatch.setenv("T2I_DATA_DIR", str(tmp_path))
    raw = gen.ensure_css_data(seed=1, num_base_scenes=3, edits_per_scene=2, image_size=16)
    assert os.path.dirname(raw) == str(tmp_path) and os.path.basename(raw).startswith("css_generated_seed1_")
    assert os.path.isfile(os.path.join(raw, gen.NPY_NAME))

    def fail(*a, **k):
        raise AssertionError("regenerated")

    monkeypatch.setattr(gen, "generate_css", fail)
    assert gen.ensure_css_data(seed=1, num_base_scenes=3, edits_per_scene=2, image_size=16) == raw
    assert os.listdir(tmp_path) == [os.path.basename(raw)], "no temp dir left behind"


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    def boom(out_dir, **kw):
        os.makedirs(os.path.join(out_dir, "images"))
        raise KeyboardInterrupt

    monkeypatch.setattr(gen, "generate_css", boom)
    with pytest.raises(KeyboardInterrupt):
        gen.ensure_css_data(str(tmp_path), seed=0, num_base_scenes=2)
    assert os.listdir(tmp_path) == []


def test_cli(tmp_path, capsys):
    out = str(tmp_path / "css")
    assert gen.main([f"--out_dir={out}", "--seed=2", "--num_base_scenes=3", "--num_test_base_scenes=2",
                     "--edits_per_scene=2", "--image_size=16"]) == 0
    d = load_npy(os.path.join(out, gen.NPY_NAME))
    assert len(d["train"]["objects_img"]) == 9 and len(d["test"]["objects_img"]) == 6
    assert "css generated" in capsys.readouterr().out


def test_scene_caption():
    objs = [{"pos": css_scene.cell_pos(4), "size": "small", "color": "blue", "shape": "triangle"},
            {"pos": css_scene.cell_pos(0), "size": "large", "color": "red", "shape": "circle"}]
    assert css_scene.scene_caption(objs) == "a large red circle at the top left and a small blue triangle in the center"
    objs.append({"pos": css_scene.cell_pos(8), "size": "small", "color": "gray", "shape": "rectangle"})
    assert css_scene.scene_caption(objs) == ("a large red circle at the top left, a small blue triangle in the center "
                                       "and a small gray rectangle at the bottom right")


# --- rendering ---------------------------------------------------------------------------------

def one(shape: str, size: str = "small", color: str = "red", cell: int = 4, image_size: int = 64) -> np.ndarray:
    return css_scene.render_scene([{"pos": css_scene.cell_pos(cell), "size": size, "color": color, "shape": shape}], image_size)


def painted(img: np.ndarray) -> np.ndarray:
    return np.any(img != 255, axis=-1)


def test_rectangle_covers_exactly_its_square():
    img = one("rectangle")  # centre (32, 32), half size 4
    expected = np.zeros((64, 64), bool)
    expected[28:36, 28:36] = True
    np.testing.assert_array_equal(painted(img), expected)
    big = painted(one("rectangle", "large", cell=0))  # centre (10.67, 10.67), half size 8
    expected = np.zeros((64, 64), bool)
    expected[2:18, 2:18] = True
    np.testing.assert_array_equal(big, expected)
    small32 = painted(one("rectangle", image_size=32))  # half size scales to 2
    expected = np.zeros((32, 32), bool)
    expected[14:18, 14:18] = True
    np.testing.assert_array_equal(small32, expected)


def test_circle_is_a_diamond():
    mask = painted(one("circle", "large"))
    rows = np.nonzero(mask.any(axis=1))[0]
    widths = mask[rows].sum(axis=1)
    assert widths[list(rows).index(32)] == widths.max() == 16
    assert widths[0] < widths.max() / 2 and widths[-1] < widths.max() / 2
    np.testing.assert_array_equal(mask, mask[:, ::-1])  # symmetric about the centre column
    assert np.all(np.diff(widths[: list(rows).index(32) + 1]) >= 0)  # widening down to the centre row
    assert np.all(np.diff(widths[list(rows).index(32):]) <= 0)


def test_triangle_points_up():
    mask = painted(one("triangle", "large"))
    rows = np.nonzero(mask.any(axis=1))[0]
    widths = mask[rows].sum(axis=1)
    assert widths[0] < widths[-1]
    assert np.all(np.diff(widths) >= 0)
    cols = np.nonzero(mask[rows[0]])[0]
    assert abs(cols.mean() - 31.5) <= 1  # apex centred on x


@pytest.mark.parametrize("color", list(css_scene.COLORS))
def test_colours_exact_and_background_white(color):
    img = one("rectangle", "large", color=color)
    mask = painted(img)
    assert np.all(img[mask] == np.array(css_scene.COLORS[color], np.uint8))
    assert np.all(img[~mask] == 255)
