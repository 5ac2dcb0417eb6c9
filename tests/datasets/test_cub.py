"""CUB-200-2011 converter on tiny fixtures in the published layouts (StackGAN / Reed / plain)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from t2i_tf.datasets.cub import convert
from t2i_tf.datasets.t2i_common import stackgan_crop_box
from t2i_tf.data.records import read_info
from t2i_tf.errors import UserError
from tests.fixtures_t2i import (CUB_BOX, CUB_EDGE_BOX, DEFAULT_SPLIT_CLASSES, captions_for, decode, embedding_value,
                                gradient_image, make_cub, read_records)

ALBATROSS0 = "001.Black_footed_Albatross/Black_footed_Albatross_0000_101"
LAYSAN0 = "002.Laysan_Albatross/Laysan_Albatross_0000_103"
LAYSAN1 = "002.Laysan_Albatross/Laysan_Albatross_0001_104"
SOOTY0 = "003.Sooty_Albatross/Sooty_Albatross_0000_105"
SOOTY1 = "003.Sooty_Albatross/Sooty_Albatross_0001_106"
ANI0 = "004.Groove_billed_Ani/Groove_billed_Ani_0000_107"


@pytest.fixture(scope="module")
def stackgan(tmp_path_factory):
    """StackGAN birds layout with embeddings, one image whose embeddings are missing from the pickles."""
    root = str(tmp_path_factory.mktemp("cub_stackgan"))
    fx = make_cub(root, stackgan=True, embeddings=True, edge_box=(SOOTY1,))
    out = os.path.join(root, "out")
    info = convert.convert_cub(fx.cub_dir, out, embeddings_dir=fx.birds_dir)
    return fx, out, info


def test_counts_split_and_info(stackgan):
    fx, out, info = stackgan
    assert info["splits"]["train"]["num_examples"] == 6 and info["splits"]["test"]["num_examples"] == 2
    assert info["splits"]["train"]["class_ids"] == [1, 2, 3] and info["splits"]["test"]["class_ids"] == [4]
    assert info["split_source"].startswith("stackgan_filenames_pickles")
    assert info["skipped"] == {}
    assert info["captions_per_image"] == {"min": 10, "max": 10}
    assert info["embedding_dim"] == 1024 and info["embeddings_per_image"] == {"min": 10, "max": 10}
    assert info["class_names"]["4"] == "004.Groove_billed_Ani"
    assert read_info(out) == json.loads(json.dumps(info))
    train, test = read_records(out, "train"), read_records(out, "test")
    assert {r["name"] for r in train} | {r["name"] for r in test} == set(fx.names)
    assert {r["class_id"] for r in train}.isdisjoint({r["class_id"] for r in test})
    for r in train + test:
        assert r["class_id"] == fx.names[r["name"]]
        assert r["captions"] == captions_for(r["name"], r["class_id"])


def test_embeddings_attached_by_filename(stackgan):
    fx, out, _ = stackgan
    for r in read_records(out, "train") + read_records(out, "test"):
        emb = r["embeddings"].reshape(10, 1024)
        expected = [embedding_value(fx.names[r["name"]], fx.index_in_class[r["name"]], c) for c in range(10)]
        np.testing.assert_array_equal(emb[:, 0], expected)  # pickles list names in reverse order
        np.testing.assert_array_equal(emb, np.repeat(emb[:, :1], 1024, axis=1))


def test_crop_is_stackgan_box_crop(stackgan):
    fx, out, _ = stackgan
    assert stackgan_crop_box(CUB_BOX, 40, 30) == (11, 6, 29, 24)  # R = int(0.75 * 12) = 9 around (20, 15)
    assert stackgan_crop_box(CUB_EDGE_BOX, 40, 30) == (28, 0, 40, 14)  # clipped at the right/top borders
    rows = {r["name"]: r for r in read_records(out, "train")}
    with open(os.path.join(fx.cub_dir, "images", ALBATROSS0 + ".jpg"), "rb") as f:
        source = decode(f.read())
    stored = decode(rows[ALBATROSS0]["image"])
    assert stored.shape == (18, 18, 3)
    expected = source[6:24, 11:29]
    shifted = source[7:25, 12:30]
    assert np.abs(stored - expected).mean() < 2.0
    assert np.abs(stored - shifted).mean() > 4.0  # one pixel off would show
    # pixels say where they came from: red = 6x, green = 8y
    assert abs(stored[0, 0, 0] - 6 * 11) <= 4 and abs(stored[0, 0, 1] - 8 * 6) <= 4
    assert abs(stored[-1, -1, 0] - 6 * 28) <= 4 and abs(stored[-1, -1, 1] - 8 * 23) <= 4
    edge = decode(rows[SOOTY1]["image"])
    assert edge.shape == (14, 12, 3)
    assert np.abs(edge - gradient_image(40, 30, fx.blue[3])[0:14, 28:40]).mean() < 2.0


def test_max_side_shrinks_crops(tmp_path):
    fx = make_cub(str(tmp_path), classes=DEFAULT_SPLIT_CLASSES[:2], per_class=1)
    info = convert.convert_cub(fx.cub_dir, str(tmp_path / "out"), max_side=9)
    assert info["image"]["max_side"] == 9
    for r in read_records(str(tmp_path / "out"), "train"):
        assert decode(r["image"]).shape == (9, 9, 3)


def test_reed_class_lists_and_text_c10(tmp_path):
    fx = make_cub(str(tmp_path), text_layout="text_c10", reed=True, test_classes=(2, 3))
    out = str(tmp_path / "out")
    info = convert.convert_cub(os.path.dirname(fx.cub_dir), out)  # the folder containing CUB_200_2011 also works
    assert info["split_source"].startswith("reed_class_lists")
    assert info["splits"]["train"]["class_ids"] == [1, 4] and info["splits"]["test"]["class_ids"] == [2, 3]
    assert info["sources"]["text_dir"] == os.path.abspath(fx.text_dir)
    assert info["embedding_dim"] is None
    assert all("embeddings" not in r for r in read_records(out, "train"))


def test_default_class_split_is_by_class_id(tmp_path):
    fx = make_cub(str(tmp_path), classes=DEFAULT_SPLIT_CLASSES)
    info = convert.convert_cub(fx.cub_dir, str(tmp_path / "out"))
    assert info["split_source"].startswith("default_class_split: class ids 1-150 train")
    assert info["splits"]["train"]["class_ids"] == [1, 2]
    assert info["splits"]["test"]["class_ids"] == [151, 152]


def test_vocabulary_from_train_captions_only(stackgan):
    _, _, info = stackgan
    words = dict(info["vocabulary"]["words"])
    assert words["shade1"] == 20 and words["shade2"] == 20 and words["bird"] == 60
    assert "shade4" not in words  # class 4 is test only
    counts = [c for _, c in info["vocabulary"]["words"]]
    assert counts == sorted(counts, reverse=True)


def test_bad_files_are_counted_and_the_rest_kept(tmp_path, capsys):
    fx = make_cub(str(tmp_path), stackgan=True, embeddings=True, corrupt=(LAYSAN0,), no_captions=(SOOTY0,),
                  empty_captions=(SOOTY1,), no_image=(ALBATROSS0,), drop_embedding=(LAYSAN1,))
    out = str(tmp_path / "out")
    info = convert.convert_cub(fx.cub_dir, out, embeddings_dir=fx.birds_dir)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    # LAYSAN1 has no embeddings and is also absent from the split pickles: counted as not in any split
    assert info["skipped"] == {"train": {"corrupt_image": 1, "empty_captions": 1, "missing_captions": 1,
                                         "missing_image": 1},
                               "unassigned": {"not_in_split": 1}}
    assert info["skipped_examples"]["train"]["corrupt_image"] == [LAYSAN0]
    assert "skipped 5" in line and "corrupt_image=1" in line and "missing_captions=1" in line
    names = {r["name"] for r in read_records(out, "train")}
    assert names == {"001.Black_footed_Albatross/Black_footed_Albatross_0001_102"}
    assert info["splits"]["train"]["num_examples"] == 1 and info["splits"]["test"]["num_examples"] == 2


def test_image_without_embeddings_is_a_counted_skip(tmp_path):
    fx = make_cub(str(tmp_path), stackgan=True, embeddings=True, drop_embedding=(ANI0,))
    # the split comes from Reed-style lists, so ANI0 is in the test split but has no embeddings
    with open(os.path.join(fx.birds_dir, "trainvalclasses.txt"), "w") as f:
        f.write("001.Black_footed_Albatross\n002.Laysan_Albatross\n003.Sooty_Albatross\n")
    with open(os.path.join(fx.birds_dir, "testclasses.txt"), "w") as f:
        f.write("004.Groove_billed_Ani\n")
    info = convert.convert_cub(fx.cub_dir, str(tmp_path / "out"), embeddings_dir=fx.birds_dir)
    assert info["skipped"]["unassigned"] == {"not_in_split": 1}  # StackGAN lists win when present
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("trainvalclasses.txt", "testclasses.txt"):
        os.replace(os.path.join(fx.birds_dir, name), lists / name)
    info = convert.convert_cub(fx.cub_dir, str(tmp_path / "out2"), embeddings_dir=fx.birds_dir,
                               split_dir=str(lists))
    assert info["split_source"].startswith("reed_class_lists")
    assert info["skipped"] == {"test": {"missing_embeddings": 1}}
    assert info["skipped_examples"]["test"]["missing_embeddings"] == [ANI0]
    assert info["splits"]["test"]["num_examples"] == 1


def test_list_form_embeddings(tmp_path):
    fx = make_cub(str(tmp_path), stackgan=True, embeddings=True, embeddings_as_list=True)
    convert.convert_cub(fx.cub_dir, str(tmp_path / "out"), embeddings_dir=fx.birds_dir)
    row = {r["name"]: r for r in read_records(str(tmp_path / "out"), "test")}[ANI0]
    assert row["embeddings"][1024 * 3] == embedding_value(4, 0, 3)


@pytest.mark.parametrize("missing", ["images.txt", "bounding_boxes.txt", "images"])
def test_missing_root_files_raise_user_error(tmp_path, missing):
    fx = make_cub(str(tmp_path), classes=DEFAULT_SPLIT_CLASSES[:2], per_class=1)
    path = os.path.join(fx.cub_dir, missing)
    if os.path.isdir(path):
        os.rename(path, path + "_gone")
    else:
        os.remove(path)
    with pytest.raises(UserError, match=missing):
        convert.convert_cub(fx.cub_dir, str(tmp_path / "out"))


def test_missing_captions_folder_and_bad_tables(tmp_path):
    fx = make_cub(str(tmp_path), classes=DEFAULT_SPLIT_CLASSES[:2], per_class=1)
    with pytest.raises(UserError, match="--text_dir"):
        convert.convert_cub(fx.cub_dir, str(tmp_path / "out"), text_dir=str(tmp_path / "nope"))
    os.rename(fx.text_dir, fx.text_dir + "_gone")
    with pytest.raises(UserError, match="captions folder"):
        convert.convert_cub(fx.cub_dir, str(tmp_path / "out"))
    os.rename(fx.text_dir + "_gone", fx.text_dir)
    with open(os.path.join(fx.cub_dir, "bounding_boxes.txt"), "a") as f:
        f.write("3 1.0 2.0\n")
    with pytest.raises(UserError, match="line 3"):
        convert.convert_cub(fx.cub_dir, str(tmp_path / "out"))


def test_cli_prints_one_line_error_and_summary(tmp_path, capsys):
    assert convert.main([f"--cub_dir={tmp_path}/nothing", f"--out_dir={tmp_path}/out"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "images.txt" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    fx = make_cub(str(tmp_path), classes=DEFAULT_SPLIT_CLASSES, per_class=1)
    assert convert.main([f"--cub_dir={fx.cub_dir}", f"--out_dir={tmp_path}/out", "--max_side=16"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("cub: wrote train=2, test=2") and "nothing skipped" in out[-1]


def test_corrupt_pickle_is_a_user_error(tmp_path):
    fx = make_cub(str(tmp_path), stackgan=True, embeddings=True)
    with open(os.path.join(fx.birds_dir, "train", "char-CNN-RNN-embeddings.pickle"), "wb") as f:
        f.write(b"\x80\x02cos\nsystem\n(U\x02lstR.")
    with pytest.raises(UserError, match="refused to unpickle"):
        convert.convert_cub(fx.cub_dir, str(tmp_path / "out"), embeddings_dir=fx.birds_dir)


def test_captions_decoding():
    from t2i_tf.datasets.t2i_common import decode_caption_bytes, tokenize

    data = "this bird\ufffd\ufffds beak is short\r\n\n  \nblack-and-white WINGS\n".encode("utf-8")
    assert decode_caption_bytes(data) == ["this bird s beak is short", "black-and-white WINGS"]
    assert decode_caption_bytes(b"caf\xe9\n") == ["caf\xe9"]  # not UTF-8: read as Latin-1
    assert tokenize("Black-and-white WINGS, 2x!") == ["blackandwhite", "wings", "2x"]  # as the in-graph Tokenizer


def test_nan_and_inf_box_rows_are_counted_skips(tmp_path):
    """A NaN/inf row in bounding_boxes.txt used to abort the whole conversion (int(nan) inside the crop)."""
    fx = make_cub(str(tmp_path), reed=True)
    path = os.path.join(fx.cub_dir, "bounding_boxes.txt")
    lines = open(path).read().splitlines()
    lines[1] = "2 nan 11.0 12.0 8.0"  # image 2: Black_footed_Albatross_0001_102
    lines[3] = "4 14.0 11.0 inf 8.0"  # image 4: LAYSAN1
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    info = convert.convert_cub(fx.cub_dir, str(tmp_path / "out"))
    assert info["skipped"] == {"train": {"bad_bbox": 2}}
    assert info["skipped_examples"]["train"]["bad_bbox"] == [
        "001.Black_footed_Albatross/Black_footed_Albatross_0001_102", LAYSAN1]
    assert info["splits"]["train"]["num_examples"] == 4 and info["splits"]["test"]["num_examples"] == 2


def five_class_subset(root):
    """A subset of 5 classes with ids <= 150 and no split files: the default split puts all of them in train."""
    classes = ((1, "001.Black_footed_Albatross"), (2, "002.Laysan_Albatross"), (3, "003.Sooty_Albatross"),
               (4, "004.Groove_billed_Ani"), (5, "005.Crested_Auklet"))
    return make_cub(root, classes=classes, per_class=2)


def test_empty_test_split_is_a_warning_naming_the_fix(tmp_path, capsys):
    fx = five_class_subset(str(tmp_path))
    info = convert.convert_cub(fx.cub_dir, str(tmp_path / "out"))
    assert "test" not in info["splits"] and info["splits"]["train"]["num_examples"] == 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: the test split has 0 records")
    assert "--test_classes" in err[0] and "--test_fraction" in err[0]
    assert info["warnings"] == [err[0][len("warning: "):]]
    convert.convert_cub(fx.cub_dir, str(tmp_path / "out2"), test_classes="5")
    assert "warning" not in capsys.readouterr().err


def test_test_classes_and_test_fraction_split_class_disjointly(tmp_path, capsys):
    fx = five_class_subset(str(tmp_path))
    info = convert.convert_cub(fx.cub_dir, str(tmp_path / "a"), test_classes="2,4-5")
    assert info["splits"]["train"]["class_ids"] == [1, 3] and info["splits"]["test"]["class_ids"] == [2, 4, 5]
    assert info["split_source"].startswith("test_classes: 2,4-5 test")
    info = convert.convert_cub(fx.cub_dir, str(tmp_path / "b"), test_fraction=0.2)
    assert info["splits"]["train"]["class_ids"] == [1, 2, 3, 4] and info["splits"]["test"]["class_ids"] == [5]
    assert info["splits"]["test"]["num_examples"] == 2 and info["split_source"].startswith("test_fraction 0.2")
    info = convert.convert_cub(fx.cub_dir, str(tmp_path / "c"), test_fraction=0.01)  # at least one class
    assert info["splits"]["test"]["class_ids"] == [5]
    info = convert.convert_cub(fx.cub_dir, str(tmp_path / "d"), test_fraction=0.99)  # at least one train class
    assert info["splits"]["train"]["class_ids"] == [1]
    assert "warning" not in capsys.readouterr().err
    train = {r["class_id"] for r in read_records(str(tmp_path / "b"), "train")}
    assert train == {1, 2, 3, 4} and {r["class_id"] for r in read_records(str(tmp_path / "b"), "test")} == {5}
    # the CLI takes them too
    assert convert.main([f"--cub_dir={fx.cub_dir}", f"--out_dir={tmp_path}/e", "--test_fraction=0.4"]) == 0
    assert read_info(str(tmp_path / "e"))["splits"]["test"]["class_ids"] == [4, 5]


@pytest.mark.parametrize("kwargs, message", [
    ({"test_classes": "7"}, "names class id\\(s\\) 7 that no image has \\(present: 1-5\\)"),
    ({"test_classes": "1-5"}, "takes every class present"),
    ({"test_classes": "x"}, "--test_classes must be class ids like"),
    ({"test_classes": "5-3"}, "--test_classes must be class ids like"),
    ({"test_fraction": 1.0}, "--test_fraction must be between 0 and 1"),
    ({"test_fraction": 0.0}, "--test_fraction must be between 0 and 1"),
    ({"test_fraction": 0.5, "test_classes": "1"}, "not both"),
    ({"test_fraction": 0.5, "split_dir": "."}, "not both"),
])
def test_bad_split_options_are_clear_errors(tmp_path, kwargs, message):
    fx = five_class_subset(str(tmp_path))
    with pytest.raises(UserError, match=message):
        convert.convert_cub(fx.cub_dir, str(tmp_path / "out"), **kwargs)
