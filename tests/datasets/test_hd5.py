"""aelnouby/Text-to-Image-Synthesis hd5 converter on a tiny h5py-written file."""

from __future__ import annotations

import os

import numpy as np
import pytest

from t2i_tf.datasets import hd5
from t2i_tf.errors import UserError
from tests.fixtures_t2i import decode, embedding_value, make_hd5, read_records


def test_counts_captions_and_embeddings(tmp_path):
    fx = make_hd5(str(tmp_path))
    out = str(tmp_path / "out")
    info = hd5.convert_hd5(fx.path, out)
    assert info["dataset"] == "hd5:flowers"
    assert info["splits"]["train"]["num_examples"] == 8 and info["splits"]["test"]["num_examples"] == 4
    assert info["splits"]["valid"]["num_examples"] == 0
    assert info["splits"]["train"]["class_ids"] == [1, 2] and info["splits"]["test"]["class_ids"] == [3]
    assert info["embedding_dim"] == 1024 and info["captions_per_image"] == {"min": 1, "max": 1}
    assert info["skipped"] == {} and info["class_names"]["3"] == "class_00003"
    rows = read_records(out, "train")
    assert len({r["name"] for r in rows}) == 4  # two records (captions) per image
    for r in rows:
        c = int(r["captions"][0].split()[2])
        assert r["captions"] == [f"hd5 caption {c} of {r['name']}"]
        k = (int(r["name"][-5:]) - 1) % 2
        np.testing.assert_array_equal(r["embeddings"], np.full([1024], embedding_value(r["class_id"], k, c)))
        assert r["class_id"] == fx.class_of[r["name"]]
        assert decode(r["image"]).shape == (40, 50, 3)
    assert "hd5" in dict(info["vocabulary"]["words"])


def test_bad_examples_counted(tmp_path, capsys):
    fx = make_hd5(str(tmp_path), corrupt=("image_00002",), no_txt=("image_00003_1",))
    out = str(tmp_path / "out")
    info = hd5.convert_hd5(fx.path, out, max_side=20)
    assert info["skipped"] == {"train": {"corrupt_image": 2, "missing_captions": 1}}
    assert "skipped 3" in capsys.readouterr().out
    rows = read_records(out, "train")
    assert len(rows) == 5 and all(decode(r["image"]).shape == (16, 20, 3) for r in rows)


def test_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        hd5.convert_hd5(str(tmp_path / "none.hdf5"), str(tmp_path / "out"))
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(UserError, match="not a readable HDF5"):
        hd5.convert_hd5(str(bad), str(tmp_path / "out"))
    import h5py  # noqa: PLC0415

    with h5py.File(tmp_path / "empty.hdf5", "w") as f:
        f.create_group("other")
    with pytest.raises(UserError, match="'train'"):
        hd5.convert_hd5(str(tmp_path / "empty.hdf5"), str(tmp_path / "out"))
    assert hd5.main([f"--hd5={tmp_path}/none.hdf5", f"--out_dir={tmp_path}/out"]) == 1
    assert not os.path.exists(tmp_path / "out" / "info.json")
