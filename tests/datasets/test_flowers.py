"""Oxford-102 Flowers converter on tiny fixtures (jpg/ + Reed's text_c10, class lists, StackGAN pickles)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from t2i_tf.datasets.flowers import convert
from t2i_tf.data.records import read_info
from t2i_tf.errors import UserError
from tests.fixtures_t2i import FLOWERS_SIZE, decode, embedding_value, make_flowers, read_records


def test_reed_lists_counts_and_no_crop(tmp_path):
    fx = make_flowers(str(tmp_path), test_classes=(3, 4))
    out = str(tmp_path / "out")
    info = convert.convert_flowers(fx.flowers_dir, out)
    assert info["dataset"] == "flowers" and info["split_source"].startswith("reed_class_lists")
    assert info["splits"]["train"]["num_examples"] == 4 and info["splits"]["test"]["num_examples"] == 4
    assert info["splits"]["train"]["class_ids"] == [1, 2] and info["splits"]["test"]["class_ids"] == [3, 4]
    assert info["class_names"] == {"1": "class_00001", "2": "class_00002", "3": "class_00003", "4": "class_00004"}
    assert info["skipped"] == {} and info["embedding_dim"] is None and info["image_crop"] is None
    rows = read_records(out, "train") + read_records(out, "test")
    assert sorted(r["name"] for r in rows) == sorted(f"class_{c:05d}/{n}" for n, c in fx.names.items())
    for r in rows:
        key = r["name"].split("/")[1]
        with open(os.path.join(fx.flowers_dir, "jpg", key + ".jpg"), "rb") as f:
            assert r["image"] == f.read()  # no crop, small enough: the original JPEG bytes
        assert len(r["captions"]) == 10 and r["captions"][0].startswith(f"caption 0 of {key}")
    words = dict(info["vocabulary"]["words"])
    assert "shade1" in words and "shade3" not in words and "flower" in words


def test_max_side_resizes_keeping_aspect(tmp_path):
    fx = make_flowers(str(tmp_path), classes=(1, 2), test_classes=(2,), per_class=1)
    convert.convert_flowers(fx.flowers_dir, str(tmp_path / "out"), max_side=25)
    img = decode(read_records(str(tmp_path / "out"), "train")[0]["image"])
    assert img.shape == (20, 25, 3)  # 50x40 -> 25x20
    assert FLOWERS_SIZE == (50, 40)


def test_stackgan_pickles_split_and_embeddings(tmp_path):
    fx = make_flowers(str(tmp_path), reed=False, stackgan=True, embeddings=True)
    out = str(tmp_path / "out")
    info = convert.convert_flowers(fx.flowers_dir, out, embeddings_dir=fx.stackgan_dir)
    assert info["split_source"].startswith("stackgan_filenames_pickles")
    assert info["embedding_dim"] == 1024
    assert info["splits"]["test"]["class_ids"] == [4]
    for r in read_records(out, "train") + read_records(out, "test"):
        key = r["name"].split("/")[1]  # StackGAN keys are 'jpg/image_XXXXX': matched on the image name
        emb = r["embeddings"].reshape(10, 1024)[:, 0]
        np.testing.assert_array_equal(emb, [embedding_value(fx.names[key], fx.index_in_class[key], c)
                                            for c in range(10)])


def test_default_split_without_lists(tmp_path):
    fx = make_flowers(str(tmp_path), classes=(1, 82, 83, 102), reed=False)
    info = convert.convert_flowers(fx.flowers_dir, str(tmp_path / "out"))
    assert info["split_source"].startswith("default_class_split: class ids 1-82 train")
    assert info["splits"]["train"]["class_ids"] == [1, 82] and info["splits"]["test"]["class_ids"] == [83, 102]


def test_bad_files_counted(tmp_path, capsys):
    fx = make_flowers(str(tmp_path), no_captions=("image_00001",), no_image=("image_00003",),
                      corrupt=("image_00005",))
    out = str(tmp_path / "out")
    info = convert.convert_flowers(fx.flowers_dir, out)
    # without a caption file the class (and so the split) of image_00001 is unknown
    assert info["skipped"] == {"train": {"corrupt_image": 1, "missing_image": 1},
                               "unassigned": {"missing_captions": 1}}
    assert "skipped 3" in capsys.readouterr().out
    names = {r["name"] for r in read_records(out, "train")}
    assert names == {"class_00001/image_00002", "class_00002/image_00004", "class_00003/image_00006"}
    # with StackGAN's class_info the split is known, so the skip is counted in it
    make_flowers(str(tmp_path / "sg"), no_captions=("image_00007",), reed=False, stackgan=True)
    info = convert.convert_flowers(str(tmp_path / "sg" / "flowers"), str(tmp_path / "out2"),
                                   split_dir=str(tmp_path / "sg" / "stackgan_flowers"))
    assert info["skipped"] == {"test": {"missing_captions": 1}}


def test_missing_layout_raises_user_error(tmp_path):
    with pytest.raises(UserError, match="jpg"):
        convert.convert_flowers(str(tmp_path), str(tmp_path / "out"))
    (tmp_path / "jpg").mkdir()
    with pytest.raises(UserError, match="text_c10"):
        convert.convert_flowers(str(tmp_path), str(tmp_path / "out"))
    (tmp_path / "text_c10").mkdir()
    with pytest.raises(UserError, match="class_XXXXX"):
        convert.convert_flowers(str(tmp_path), str(tmp_path / "out"))
    assert convert.main([f"--flowers_dir={tmp_path}/x", f"--out_dir={tmp_path}/out"]) == 1


def test_small_subset_warns_then_splits_by_fraction_or_classes(tmp_path, capsys):
    fx = make_flowers(str(tmp_path), classes=(1, 2, 3, 4, 5), reed=False)  # all <= 82: no default test split
    info = convert.convert_flowers(fx.flowers_dir, str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert "test" not in info["splits"] and "warning: the test split has 0 records" in err and "--test_fraction" in err
    info = convert.convert_flowers(fx.flowers_dir, str(tmp_path / "out2"), test_fraction=0.4)
    assert info["splits"]["train"]["class_ids"] == [1, 2, 3] and info["splits"]["test"]["class_ids"] == [4, 5]
    assert {r["class_id"] for r in read_records(str(tmp_path / "out2"), "test")} == {4, 5}
    assert convert.main([f"--flowers_dir={fx.flowers_dir}", f"--out_dir={tmp_path}/out3", "--test_classes=1,3"]) == 0
    info = read_info(str(tmp_path / "out3"))
    assert info["splits"]["test"]["class_ids"] == [1, 3] and info["warnings"] == []
    assert "warning" not in capsys.readouterr().err
