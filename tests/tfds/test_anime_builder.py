"""TFDS builder ``anime_faces`` on generated fixtures in the published layouts: ``tfds.load`` gives the converter's
examples, the prepared folder holds the converter's records and skip report (one on-disk format), and the
``colours`` config reads the MLDS 2017 tags_clean.csv."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import t2i_tf.tfds  # noqa: F401 -- registers the builders
from t2i_tf.data.records import read_info
from t2i_tf.datasets.anime.convert import convert_anime
from t2i_tf.datasets.anime.generate import generate_anime
from t2i_tf.errors import UserError
from t2i_tf.tfds.build import prepare
from tests.fixtures_t2i import read_records
from tests.tfds.test_builders import (
    assert_same_info,
    assert_same_records,
    load,
    prepared,
)


@pytest.fixture(scope="module")
def anime(tmp_path_factory):
    """(manual dir holding extra_data/ with defects, tfds data dir, reference converter dir, its info)."""
    root = str(tmp_path_factory.mktemp("tfds_anime"))
    manual = os.path.join(root, "manual")
    generate_anime(manual, num_images=16, image_size=32, seed=4, num_hair=2, num_eyes=2, layout="extra_data",
                   defects=True)
    ref = os.path.join(root, "ref")
    return manual, os.path.join(root, "tfds"), ref, convert_anime(manual, ref)


def test_tfds_load_gives_the_converters_examples(anime):
    manual, data_dir, ref, _ = anime
    for split in ("train", "test"):
        got, want = load("anime_faces/default", manual, data_dir, split), read_records(ref, split)
        assert [g["name"].decode() for g in got] == [w["name"] for w in want] and len(want) > 0
        for g, w in zip(got, want):
            assert g["class_id"] == w["class_id"] and [c.decode() for c in g["captions"]] == w["captions"]
            assert g["image"].shape == (64, 64, 3)
            np.testing.assert_array_equal(g["image"], tf.io.decode_image(w["image"], channels=3).numpy())


def test_prepared_folder_is_the_converters_records_with_the_skip_report(anime):
    manual, data_dir, ref, info = anime
    load("anime_faces/default", manual, data_dir, "train")
    folder = prepared("anime_faces/default", data_dir)
    assert_same_records(folder, ref, ["train", "test"])
    got = assert_same_info(folder, info, "anime_faces")
    assert sum(sum(r.values()) for r in got["skipped"].values()) == 5
    assert got["skipped_items"] == info["skipped_items"] and got["image_format"] == "png"


def test_colours_config_reads_tags_clean(tmp_path):
    manual = str(tmp_path / "manual" / "mlds2017")
    generate_anime(manual, num_images=8, image_size=16, seed=4, num_hair=2, num_eyes=2, layout="mlds2017")
    folder = prepare("anime_faces/colours", str(tmp_path / "manual"), str(tmp_path / "tfds"))
    info = read_info(folder)
    assert info["anime"]["tags_format"] == "counted" and info["anime"]["tag_filter"] == "colours"
    captions = {c for c in info["class_names"].values()}
    assert captions and all(len(c.split()) == 4 and c.split()[1] == "hair" for c in captions)  # hair length dropped
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.txt").write_text("nothing")
    with pytest.raises(UserError, match="no tag file in"):
        prepare("anime_faces/default", str(empty), str(tmp_path / "tfds2"))
    assert tfds.builder("anime_faces/colours", data_dir=str(tmp_path / "tfds")).info.splits["train"].num_examples > 0
