"""Anime faces converter on generated fixtures in the published layouts (deep_t2i imgs/ + tags.csv, MLDS 2018
extra_data/, MLDS 2017 faces/ + tags_clean.csv): records, classes, stratified split, every skip counted and listed,
malformed rows as errors; and the fixture itself: its colours are where the colour check reads them."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from t2i_tf.data.records import read_info
from t2i_tf.datasets.anime import convert
from t2i_tf.datasets.anime.colour_check import records_accuracy, score
from t2i_tf.datasets.anime.faces import EYES, HAIR, draw_face
from t2i_tf.datasets.anime.generate import generate_anime
from t2i_tf.errors import UserError
from tests.fixtures_t2i import read_records

N = 24


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    """(raw dir, manifest, records dir, info) of 24 faces (2 hair x 2 eye colours, 32 px) with one of each defect."""
    root = tmp_path_factory.mktemp("anime")
    raw, out = str(root / "raw"), str(root / "records")
    manifest = generate_anime(raw, num_images=N, image_size=32, seed=1, num_hair=2, num_eyes=2, defects=True)
    info = convert.convert_anime(raw, out, image_size=16, test_fraction=0.25)
    return raw, manifest, out, info


def test_records_classes_and_captions(fixture):
    _, manifest, out, info = fixture
    train, test = read_records(out, "train"), read_records(out, "test")
    assert len(train) + len(test) == N
    assert info["splits"]["train"]["num_examples"] == len(train) and info["splits"]["test"]["num_examples"] == len(test)
    tag_strings = sorted({f"{f['hair']} hair {f['eyes']} eyes" for f in manifest["faces"].values()})
    assert info["class_names"] == {str(i + 1): t for i, t in enumerate(tag_strings)}
    for r in train + test:
        face = manifest["faces"][r["name"]]
        assert r["captions"] == [f"{face['hair']} hair {face['eyes']} eyes"]
        assert info["class_names"][str(r["class_id"])] == r["captions"][0]
        img = Image.open(io.BytesIO(r["image"]))
        assert img.format == "PNG" and img.size == (16, 16) and img.mode == "RGB"
    assert info["image_size"] == 16 and info["image_format"] == "png" and info["format"] == "t2i-v1"
    assert {w for w, _ in info["vocabulary"]["words"]} == {"hair", "eyes"} | {w for t in tag_strings for w in t.split()}
    assert read_info(out)["anime"]["tags_format"] == "plain"


def test_split_is_stratified_by_tags_and_deterministic(fixture, tmp_path):
    raw, _, out, info = fixture
    train, test = read_records(out, "train"), read_records(out, "test")
    per_class = {c: sum(r["class_id"] == c for r in train + test) for c in {r["class_id"] for r in train + test}}
    for c, n in per_class.items():
        assert sum(r["class_id"] == c for r in test) == min(n - 1, round(0.25 * n))
    again = convert.convert_anime(raw, str(tmp_path / "again"), image_size=16, test_fraction=0.25)
    assert read_records(str(tmp_path / "again"), "test") == test and again["splits"] == info["splits"]
    other = convert.convert_anime(raw, str(tmp_path / "seed"), image_size=16, test_fraction=0.25, seed=7)
    assert {r["name"] for r in read_records(str(tmp_path / "seed"), "test")} != {r["name"] for r in test}
    assert other["splits"]["test"]["num_examples"] == len(test)


def test_every_skip_is_counted_and_listed(fixture, capsys):
    _, manifest, _, info = fixture
    defects = manifest["defects"]
    counted = {}
    for reasons in info["skipped"].values():
        for reason, n in reasons.items():
            counted[reason] = counted.get(reason, 0) + n
    assert counted == {"corrupt_image": 1, "missing_image": 1, "empty_tags": 1, "unsupported_format": 1,
                       "untagged_image": 1}
    listed = {reason: name for _, reason, name, _ in info["skipped_items"]}
    assert listed == defects
    assert info["skipped"]["unassigned"] == {"empty_tags": 1, "missing_image": 1, "untagged_image": 1}
    corrupt = next(i for i in info["skipped_items"] if i[1] == "corrupt_image")
    assert corrupt[0] in ("train", "test") and corrupt[3].startswith("a JPEG file that does not decode: 24.jpg")


def test_the_report_is_printed(tmp_path, capsys):
    raw = str(tmp_path / "raw")
    generate_anime(raw, num_images=6, image_size=16, num_hair=2, num_eyes=1, defects=True)
    capsys.readouterr()
    assert convert.main(["--anime_dir", raw, "--out_dir", str(tmp_path / "out"), "--image_size=16",
                         "--image_format=jpeg", "--test_fraction=0"]) == 0
    out, err = capsys.readouterr()
    assert "anime: wrote train=6" in out and "skipped 5" in out
    assert "skipped 1 corrupt_image: 6.jpg (a JPEG file that does not decode: 6.jpg" in err
    assert "skipped 1 unsupported_format: 9.gif" in err and "all 5 skipped images are listed" in err
    info = read_info(str(tmp_path / "out"))
    assert list(info["splits"]) == ["train"] and info["warnings"] == []
    assert all(Image.open(io.BytesIO(r["image"])).format == "JPEG" for r in read_records(str(tmp_path / "out"), "train"))


@pytest.mark.parametrize("layout, names, tag_filter", [("extra_data", "file", "all"), ("mlds2017", "stem", "colours")])
def test_the_other_published_layouts_give_the_same_records(tmp_path, layout, names, tag_filter):
    ref, other = str(tmp_path / "ref"), str(tmp_path / layout)
    generate_anime(ref, num_images=8, image_size=16, seed=2, num_hair=2, num_eyes=2)
    generate_anime(other, num_images=8, image_size=16, seed=2, num_hair=2, num_eyes=2, layout=layout, names=names)
    a = convert.convert_anime(ref, str(tmp_path / "a"), image_size=16, test_fraction=0)
    b = convert.convert_anime(other, str(tmp_path / "b"), image_size=16, test_fraction=0, tag_filter=tag_filter)
    assert read_records(str(tmp_path / "a"), "train") == read_records(str(tmp_path / "b"), "train")
    assert a["class_names"] == b["class_names"]
    assert b["anime"]["tags_format"] == ("counted" if layout == "mlds2017" else "plain")
    assert b["anime"]["images_dir"].endswith({"extra_data": "extra_data/images", "mlds2017": "faces"}[layout])


def test_malformed_rows_stop_the_conversion_or_are_counted(fixture, tmp_path, capsys):
    raw, _, _, _ = fixture
    bad = str(tmp_path / "bad")
    os.makedirs(bad)
    os.symlink(os.path.join(raw, "imgs"), os.path.join(bad, "imgs"))
    with open(os.path.join(raw, "tags.csv")) as f:
        lines = f.read().splitlines()
    lines.insert(3, "this row has no comma")
    with open(os.path.join(bad, "tags.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    out = str(tmp_path / "out")
    with pytest.raises(UserError, match=r"tags\.csv line 4: expected '<image>,<tags>'"):
        convert.convert_anime(bad, out, image_size=16)
    assert not os.path.exists(out)
    assert convert.main(["--anime_dir", bad, "--out_dir", out, "--image_size=16"]) == 1
    assert capsys.readouterr().err.startswith("error: ") and not os.path.exists(out)
    info = convert.convert_anime(bad, out, image_size=16, bad_rows="skip")
    assert info["skipped"]["unassigned"]["bad_row"] == 1
    assert ["unassigned", "bad_row", "line 4"] == next(i for i in info["skipped_items"] if i[1] == "bad_row")[:3]
    assert sum(s["num_examples"] for s in info["splits"].values()) == N


def test_layout_errors(tmp_path):
    with pytest.raises(UserError, match="is not a folder"):
        convert.convert_anime(str(tmp_path / "nope"), str(tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no tag file in .*tags.csv or tags_clean.csv"):
        convert.convert_anime(str(tmp_path / "empty"), str(tmp_path / "out"))
    (tmp_path / "empty" / "tags.csv").write_text("0,blue hair red eyes\n")
    with pytest.raises(UserError, match="no images folder next to .*imgs, images, faces"):
        convert.convert_anime(str(tmp_path / "empty"), str(tmp_path / "out"))
    (tmp_path / "empty" / "imgs").mkdir()
    for kwargs, message in [({"image_format": "gif"}, "--image_format must be one of png, jpeg"),
                            ({"test_fraction": 1.0}, r"--test_fraction must be in \[0, 1\)"),
                            ({"image_size": 2}, "--image_size must be >= 4")]:
        with pytest.raises(UserError, match=message):
            convert.convert_anime(str(tmp_path / "empty"), str(tmp_path / "out"), **kwargs)


def test_fixture_colours_are_where_the_check_reads_them(fixture):
    rng = np.random.default_rng(0)
    hairs = [HAIR[i % len(HAIR)] for i in range(48)]
    eyes = [EYES[(i * 7) % len(EYES)] for i in range(48)]
    faces = np.stack([draw_face(h, e, rng, 64) for h, e in zip(hairs, eyes)])
    for images in (faces, faces[:, :, ::-1]):  # a horizontal flip keeps them
        assert score(images, hairs, eyes, HAIR, EYES) == {"hair": 1.0, "eyes": 1.0, "both": 1.0, "images": 48}
    shuffled = score(faces, hairs[1:] + hairs[:1], eyes, HAIR, EYES)
    assert shuffled["hair"] == 0.0 and shuffled["eyes"] == 1.0  # the check reads each region's own colour
    _, manifest, out, _ = fixture
    real = records_accuracy(out, "train", manifest["hair_colours"], manifest["eye_colours"])
    assert real["both"] == 1.0 and real["images"] == len(read_records(out, "train"))


def test_generator_manifest_and_errors(fixture, tmp_path):
    raw, manifest, _, _ = fixture
    with open(os.path.join(raw, "generated.json")) as f:
        assert json.load(f) == manifest
    assert set(manifest["hair_colours"]) == set(HAIR[:2]) and len(manifest["faces"]) == N
    with pytest.raises(UserError, match="--layout must be one of"):
        generate_anime(str(tmp_path / "x"), layout="kaggle")
    with pytest.raises(UserError, match="--num_hair must be in 1..12"):
        generate_anime(str(tmp_path / "x"), num_hair=13)
