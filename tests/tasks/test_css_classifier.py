"""CssClassifierTask: a short Trainer run reads held-out CSS scenes cell by cell; loader, export, clear errors."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from configs import css_classifier as cfg
from t2i_tf.datasets.css.captions import convert_css_captions
from t2i_tf.data.css_scene import HELD_OUT_COMBOS, render_scene
from t2i_tf.datasets.css.generate import NPY_NAME
from t2i_tf.data.css_cells import combo_mask, scene_cells
from t2i_tf.data.safe_pickle import load_npy
from t2i_tf.data.t2i import t2i_dataset
from t2i_tf.errors import UserError
from t2i_tf.eval.css_semantic import load_css_classifier, semantic_scores
from t2i_tf.tasks.css_classifier import CssClassifierTask
from t2i_tf.runs.config import check_architecture
from t2i_tf.train.trainer import Trainer

S = 32
STEPS = 250


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """32 px captioned CSS: ~900 train scenes, ~360 test scenes (half of them with a held-out combo)."""
    from t2i_tf.datasets.css.generate import generate_css

    root = tmp_path_factory.mktemp("css_cls")
    raw, rec = str(root / "raw"), str(root / "rec")
    generate_css(raw, seed=1, num_base_scenes=100, num_test_base_scenes=40, edits_per_scene=8, image_size=S)
    convert_css_captions(raw, rec, image_size=S)
    return raw, rec


@pytest.fixture(scope="module")
def trained(records, tmp_path_factory):
    """(task, workdir, final eval metrics) after a short run of the real Trainer."""
    workdir = str(tmp_path_factory.mktemp("css_cls_run"))
    config = dict(cfg.CPU, data_dir=records[1], image_size=S, batch_size=32, learning_rate=3e-3, seed=0)
    task = CssClassifierTask(config)
    trainer = Trainer(task, workdir, num_iters=STEPS, strategy="default", log_every=STEPS, eval_every=STEPS,
                      ckpt_every=STEPS, steps_per_loop=50, verbose=False)
    return task, workdir, trainer.fit()


def _test_images(raw, n=64, size=S):
    """The first ``n`` test scenes rendered at ``size`` (float in [-1, 1]) and their cell codes."""
    objects = load_npy(os.path.join(raw, NPY_NAME))["test"]["objects_img"][:n]
    images = np.stack([render_scene(o, size) for o in objects])
    return images, np.array([scene_cells(o) for o in objects])


def test_reaches_99_percent_per_cell_on_held_out_scenes(trained, records):
    task, workdir, metrics = trained
    assert int(task.optimizer.iterations.numpy()) == STEPS
    # The test split holds (colour, shape) combinations absent from train: the metric covers them.
    train = next(iter(t2i_dataset(records[1], "train", 4096, S, training=False)))["scene_cells"].numpy()
    test = next(iter(t2i_dataset(records[1], "test", 4096, S, training=False)))["scene_cells"].numpy()
    assert not combo_mask(train, HELD_OUT_COMBOS).any() and combo_mask(test, HELD_OUT_COMBOS).sum() > 100
    assert metrics["eval/cell_accuracy"] >= 99.0, metrics
    assert metrics["eval/heldout_combo_recall"] >= 95.0, metrics
    assert metrics["eval/object_f1"] >= 97.0 and metrics["eval/scene_accuracy"] >= 90.0, metrics
    logged = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert logged[-1]["step"] == STEPS and logged[-1]["eval/cell_accuracy"] == metrics["eval/cell_accuracy"]


def test_in_process_use_and_the_loader_agree(trained, records):
    task, workdir, _ = trained
    images, cells = _test_images(records[0])
    x = tf.constant(images, tf.float32) / 127.5 - 1.0
    pred = task.predict_cells(x)
    assert pred.dtype == np.int64 and pred.shape == (64, 9)
    assert semantic_scores(pred, cells)["cell_accuracy"] >= 0.98
    feats = task.features(x)
    assert feats.shape == (64, task.model.feature_dim) and np.isfinite(feats).all()
    model = load_css_classifier(workdir)  # what gan_cls --css_classifier=DIR uses
    np.testing.assert_array_equal(model.predict_cells(x).numpy(), pred)
    np.testing.assert_allclose(model.features(x).numpy(), feats, rtol=1e-5, atol=1e-5)


def test_export_round_trip_uint8_any_size(trained, records, tmp_path):
    task, _, _ = trained
    path = str(tmp_path / "export")
    desc = task.export(path)
    assert list(desc["signatures"]) == ["classify"]
    loaded = tf.saved_model.load(path)
    images, cells = _test_images(records[0])
    out = loaded.signatures["classify"](image=tf.constant(images, tf.uint8))
    assert out["cells"].dtype == tf.int64 and out["cells"].shape == (64, 9)
    assert out["features"].dtype == tf.float32 and out["features"].shape == (64, task.model.feature_dim)
    np.testing.assert_array_equal(out["cells"].numpy(), task.predict_cells(tf.constant(images, tf.float32) / 127.5 - 1))
    # Scenes rendered at 64 px are resized to the model's 32 px and still read.
    big, _ = _test_images(records[0], size=64)
    # (antialiased 64 -> 32 px is not what it trained on, hence the lower bar; 64 px scenes deserve a 64 px model)
    assert semantic_scores(loaded.classify(tf.constant(big, tf.uint8))["cells"].numpy(), cells)["cell_accuracy"] >= 0.9


def _task(records, workdir, **overrides):
    task = CssClassifierTask(dict(cfg.TEST, data_dir=records[1], seed=0, **overrides))
    task.prepare(str(workdir))
    return task


def test_clear_errors(records, trained, tmp_path):
    for key, value in (("batch_size", 0), ("learning_rate", -1.0), ("width", 0), ("image_size", 8),
                       ("image_size", 512), ("eval_max_examples", -1), ("lr_min_ratio", 2.0)):
        with pytest.raises(UserError, match=f"--{key}"):
            _task(records, tmp_path / key, **{key: value})
    # Records without per-cell labels (e.g. written before scene_cells existed).
    old = str(tmp_path / "old_records")
    shutil.copytree(records[1], old)
    info = json.load(open(os.path.join(old, "info.json")))
    del info["extra_int64"]
    json.dump(info, open(os.path.join(old, "info.json"), "w"))
    with pytest.raises(UserError, match="scene_cells.*datasets/css/captions.py"):
        CssClassifierTask(dict(cfg.TEST, data_dir=old)).prepare(str(tmp_path / "w_old"))
    # A trained workdir remembers the model's shape (an untrained one takes new values).
    check_architecture(str(tmp_path / "w"), CssClassifierTask(dict(cfg.TEST, width=4)))  # nothing trained there
    with pytest.raises(UserError, match="trained with --width=16 --hidden_dim=128; got --width=8"):
        check_architecture(trained[1], CssClassifierTask(dict(cfg.TEST, image_size=S, width=8)))
