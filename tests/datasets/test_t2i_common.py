"""T2IWriter's extra int64 features: written per item, listed in info.json, read back by t2i_dataset."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i_tf.datasets.t2i_common import Item, T2IWriter
from t2i_tf.data.records import read_info
from t2i_tf.data.t2i import t2i_dataset
from t2i_tf.errors import UserError
from tests.fixtures_t2i import read_records


def _png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full([8, 8, 3], value, np.uint8)).save(out, format="PNG")
    return out.getvalue()


def _item(i: int, **extra) -> Item:
    return Item(name=f"img{i}", class_id=1 + i % 2, image_bytes=_png(10 * i), captions=[f"caption {i}"],
                extra_int64=extra or None)


def test_extra_int64_written_listed_and_read(tmp_path):
    out = str(tmp_path / "rec")
    writer = T2IWriter(out, "toy", max_side=0)
    writer.write_split("train", [_item(i, scene_cells=[i] * 9, tags=list(range(i + 1))) for i in range(4)])
    info = writer.finish("toy", {})
    assert info["extra_int64"] == {"scene_cells": 9, "tags": None}  # fixed length 9; tags vary
    assert {"scene_cells", "tags"} <= set(info["features"]) and read_info(out)["extra_int64"] == info["extra_int64"]
    for raw in tf.data.TFRecordDataset(str(tmp_path / "rec" / "train-00000.tfrecord")).as_numpy_iterator():
        feats = tf.train.Example.FromString(raw).features.feature
        i = int(feats["name"].bytes_list.value[0].decode()[3:])
        assert list(feats["scene_cells"].int64_list.value) == [i] * 9
        assert list(feats["tags"].int64_list.value) == list(range(i + 1))
    batch = next(iter(t2i_dataset(out, "train", 4, image_size=8, training=False)))
    assert batch["scene_cells"].shape == (4, 9)
    np.testing.assert_array_equal(batch["scene_cells"].numpy(), np.repeat(np.arange(4)[:, None], 9, axis=1))
    assert "tags" not in batch  # the reader passes only what it knows


def test_no_extras_no_change(tmp_path):
    writer = T2IWriter(str(tmp_path / "plain"), "toy", max_side=0)
    writer.write_split("train", [_item(i) for i in range(4)])
    info = writer.finish("toy", {})
    assert info["extra_int64"] == {} and info["features"] == ["image", "name", "class_id", "captions"]
    assert set(read_records(str(tmp_path / "plain"), "train")[0]) == {"image", "name", "class_id", "captions"}
    batch = next(iter(t2i_dataset(str(tmp_path / "plain"), "train", 2, image_size=8, training=False)))
    assert set(batch) == {"image", "caption", "class_id", "wrong_image"}


def test_every_item_carries_the_same_extras(tmp_path):
    writer = T2IWriter(str(tmp_path / "bad"), "toy", max_side=0)
    with pytest.raises(UserError, match="img1.*same"):
        writer.write_split("train", [_item(0, scene_cells=[0] * 9), _item(1)])
    with pytest.raises(UserError, match="captions"):
        T2IWriter(str(tmp_path / "bad2"), "toy", max_side=0).write_split("train", [_item(0, captions=[1])])


def test_a_conversion_that_dies_before_finish_leaves_the_previous_records(tmp_path):
    out = str(tmp_path / "rec")
    writer = T2IWriter(out, "toy", max_side=0)
    writer.write_split("train", [_item(i) for i in range(4)])
    writer.finish("toy", {})
    before = {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)}
    again = T2IWriter(out, "toy", max_side=0)
    again.write_split("train", [_item(i) for i in range(2)])  # ... and the process dies here
    assert {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)} == before
    third = T2IWriter(out, "toy", max_side=0)  # the next conversion clears what the dead one left
    third.write_split("train", [_item(i) for i in range(3)])
    assert third.finish("toy", {})["splits"]["train"]["num_examples"] == 3
    assert sorted(os.listdir(tmp_path)) == ["rec"]
