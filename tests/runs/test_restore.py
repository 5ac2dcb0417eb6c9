"""A run's config.json: written by training, read back by eval/export/generate and by chained models."""

import pytest

from t2i_tf.errors import UserError
from t2i_tf.registry import lookup, model_names
from t2i_tf.runs.config import load_run_config, save_run_config
from t2i_tf.runs.restore import restore_task


def test_round_trip_and_model_check(tmp_path):
    config = {"batch_size": 4, "preset": "test", "data_dir": "/x", "interp": True, "lr_decay_every": 0}
    save_run_config(str(tmp_path), "gan_cls", config)
    assert load_run_config(str(tmp_path), "gan_cls") == config
    assert load_run_config(str(tmp_path)) == config
    with pytest.raises(UserError, match="holds a --model=gan_cls run, not --model=tirg"):
        load_run_config(str(tmp_path), "tirg")
    assert load_run_config(str(tmp_path / "none"), "tirg") is None


def test_corrupt_config_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not a run config written by main.py"):
        load_run_config(str(tmp_path))


def test_restore_task_needs_a_trained_workdir(tmp_path):
    with pytest.raises(UserError, match="has no config.json: train it first"):
        restore_task("gan_cls", str(tmp_path))


def test_registry():
    assert {"tirg", "gan_cls"} <= set(model_names())
    config_module, task_cls = lookup("tirg")
    assert task_cls.name == "tirg" and "cpu" in config_module.PRESETS
    with pytest.raises(UserError, match="--model must be one of"):
        lookup("nope")
