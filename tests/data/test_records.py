"""info.json reading: a wrong-typed field is a one-line error naming it, not a TypeError deep inside a reader."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from t2i_tf.data.records import read_info
from t2i_tf.errors import UserError
from tests.cli_runner import run_cli


def write(tmp_path, info) -> str:
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    (d / "info.json").write_text(json.dumps(info))
    return str(d)


GOOD = {"dataset": "cub", "format": "t2i-v1", "embedding_dim": None, "extra_int64": {},
        "features": ["image", "name", "class_id", "captions"],
        "splits": {"train": {"num_examples": 6, "num_shards": 1, "num_classes": 3, "class_ids": [1, 2, 3]}},
        "vocabulary": {"words": [["a", 3]]}}


def test_a_converter_info_reads_back(tmp_path):
    assert read_info(write(tmp_path, GOOD)) == GOOD


@pytest.mark.parametrize("change, message", [
    (lambda i: [i], "expected a JSON object .*got list"),
    (lambda i: "cub", "expected a JSON object .*got str"),
    (lambda i: dict(i, splits=["train"]), "'splits' must be an object"),
    (lambda i: dict(i, splits={"train": 6}), "'splits.train' must be an object of counts, got 6"),
    (lambda i: dict(i, splits={"train": dict(i["splits"]["train"], num_examples="6")}),
     "'splits.train.num_examples' must be an integer >= 0, got \"6\""),
    (lambda i: dict(i, splits={"train": dict(i["splits"]["train"], num_classes=-1)}), "splits.train.num_classes"),
    (lambda i: dict(i, splits={"train": dict(i["splits"]["train"], class_ids="1,2")}), "splits.train.class_ids"),
    (lambda i: dict(i, embedding_dim="1024"), "'embedding_dim' must be a positive integer or null, got \"1024\""),
    (lambda i: dict(i, embedding_dim=True), "'embedding_dim' must be a positive integer"),
    (lambda i: dict(i, image_size=0), "'image_size' must be a positive integer"),
    (lambda i: dict(i, extra_int64=[9]), "'extra_int64' must be an object"),
    (lambda i: dict(i, extra_int64={"scene_cells": "9"}), "'extra_int64.scene_cells'"),
    (lambda i: dict(i, format=2), "'format' must be a string, got 2"),
    (lambda i: dict(i, features="image"), "'features' must be a list of strings"),
    (lambda i: dict(i, image_features=[1]), "'image_features' must be a list of strings"),
])
def test_wrong_typed_fields_are_clear_errors(tmp_path, change, message):
    with pytest.raises(UserError, match=message):
        read_info(write(tmp_path, change(json.loads(json.dumps(GOOD)))))


def test_not_utf8_is_a_clear_error(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "info.json").write_bytes(b'{"dataset": "\xff"}')
    with pytest.raises(UserError, match="not valid JSON"):
        read_info(str(d))


def test_cli_answers_a_wrong_typed_info_in_one_line(captioned_css, tmp_path):
    data = str(tmp_path / "data")
    shutil.copytree(captioned_css[16], data)
    with open(os.path.join(data, "info.json")) as f:
        info = json.load(f)
    info["embedding_dim"] = "none"
    with open(os.path.join(data, "info.json"), "w") as f:
        json.dump(info, f)
    r = run_cli("--model=gan_cls", "--preset=test", "--image_size=16", f"--data_dir={data}", f"--workdir={tmp_path}/w", "--num_iters=1",
                check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "'embedding_dim' must be" in r.stderr
