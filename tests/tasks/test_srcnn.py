"""SrcnnTask: training through the real Trainer beats bicubic, the data it trains on, the exported SavedModel,
upscaling after a restore, and clear errors."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from configs import srcnn as cfg
from t2i_tf.datasets.css.captions import convert_css_captions
from t2i_tf.datasets.css.generate import generate_css
from t2i_tf.data.t2i import t2i_dataset
from t2i_tf.errors import UserError
from t2i_tf.models.srcnn import degrade, psnr
from t2i_tf.tasks.srcnn import SrcnnTask, load_upscaler
from t2i_tf.runs.config import CONFIG_FILE, check_architecture
from t2i_tf.train.trainer import Trainer
from tests.tensorboard_events import read_events

SIZE = 32  # x4: 8 -> 32


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Captioned CSS rendered at 32 px (train and test splits)."""
    root = tmp_path_factory.mktemp("srcnn_css")
    raw, out = str(root / "raw"), str(root / "records")
    generate_css(raw, seed=4, num_base_scenes=6, edits_per_scene=4, image_size=SIZE)
    convert_css_captions(raw, out, image_size=SIZE)
    return out


def config(data_dir, **overrides):
    return {**cfg.TEST, "data_dir": data_dir, "image_size": SIZE, "seed": 0, **overrides}


def make_task(data_dir, workdir, **overrides):
    task = SrcnnTask(config(data_dir, **overrides))
    task.prepare(str(workdir))
    task.build(tf.distribute.get_strategy())
    return task


STEPS = 60


@pytest.fixture(scope="module")
def trained(records, tmp_path_factory):
    """(task, workdir, PSNRs before training, PSNRs after) for a short real-Trainer run."""
    workdir = str(tmp_path_factory.mktemp("srcnn_run"))
    task = SrcnnTask(config(records, n1=16, n2=8, batch_size=8, learning_rate=2e-3, num_iters=STEPS))
    trainer = Trainer(task, workdir, num_iters=STEPS, strategy="default", log_every=STEPS, eval_every=STEPS,
                      ckpt_every=STEPS, steps_per_loop=STEPS // 2, verbose=False)
    trainer.setup()
    before = task.evaluate(0)
    after = trainer.fit()
    return task, workdir, before, after


def test_training_raises_psnr_over_bicubic(trained):
    task, workdir, before, after = trained
    assert set(after) == {"eval/psnr_srcnn", "eval/psnr_bicubic", "eval/psnr_gain"}
    # The residual model starts at the bicubic image ...
    assert abs(before["eval/psnr_gain"]) < 0.1
    # ... and 60 steps of training on the train split beat it on the held-out test split.
    assert after["eval/psnr_bicubic"] == pytest.approx(before["eval/psnr_bicubic"])
    assert after["eval/psnr_gain"] > 0.3, after
    assert after["eval/psnr_gain"] == pytest.approx(after["eval/psnr_srcnn"] - after["eval/psnr_bicubic"])
    assert task.eval_split == "test" and task.hr_sampling == "native"
    assert int(task.optimizer.iterations.numpy()) == STEPS
    assert int(task.last_optimizer.iterations.numpy()) == STEPS
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith(f"-{STEPS}")
    logged = read_events(os.path.join(workdir, "train"))
    for key in ("mse", "psnr", "psnr_bicubic", "learning_rate", "bicubic_srcnn_original"):
        assert key in logged, key
    grid = tf.make_ndarray(logged["bicubic_srcnn_original"][-1][1].tensor)  # [width, height, encoded PNG]
    assert grid[:2].astype(int).tolist() == [3 * SIZE, cfg.TEST["num_samples"] * SIZE]
    line = json.loads(open(os.path.join(workdir, "metrics.jsonl")).read().splitlines()[-1])
    assert line["step"] == STEPS and line["eval/psnr_gain"] == pytest.approx(after["eval/psnr_gain"])


def test_train_batches_are_hr_images_and_their_degraded_inputs(records, tmp_path):
    task = make_task(records, tmp_path)
    b = next(iter(task.train_dataset(tf.distribute.InputContext(), 0)))
    assert b["image"].shape == b["input"].shape == (4, SIZE, SIZE, 3)
    np.testing.assert_allclose(b["input"].numpy(), degrade(b["image"], 4).numpy(), atol=1e-5)
    # native sampling: the records' own pixels (CSS is rendered at 32 px), so every value is a uint8 level.
    levels = (b["image"].numpy() + 1.0) * 127.5
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
    # Random patches (the paper's sub-images) of both, the same window.
    task = make_task(records, tmp_path / "p", patch_size=12)
    b = next(iter(task.train_dataset(tf.distribute.InputContext(), 0)))
    assert b["image"].shape == b["input"].shape == (4, 12, 12, 3)
    assert float(tf.reduce_mean(psnr(b["input"], b["image"]))) > 12.0
    # Records stored at another size than image_size: the reader's crop augmentation.
    assert make_task(records, tmp_path / "c", image_size=16).hr_sampling == "crop"
    assert make_task(records, tmp_path / "n", hr_sampling="crop").hr_sampling == "crop"


def test_exported_saved_model_upscales_uint8_x4(trained, tmp_path):
    task = trained[0]
    path = str(tmp_path / "export")
    desc = task.export(path)
    assert json.load(open(os.path.join(path, "t2i_export.json"))) == desc
    assert desc["model"] == "srcnn" and desc["scale"] == 4 and list(desc["signatures"]) == ["upscale"]
    loaded = tf.saved_model.load(path)
    low = tf.constant(np.random.default_rng(0).integers(0, 256, [2, 8, 8, 3]), tf.uint8)
    out = loaded.signatures["upscale"](image=low)["images"]
    assert out.dtype == tf.uint8 and out.shape == (2, 32, 32, 3)
    assert (loaded.upscale(low)["images"].numpy() == out.numpy()).all()
    assert (task.upscale(low).numpy() == out.numpy()).all()
    # Fully convolutional: any size, not only the trained one.
    assert loaded.signatures["upscale"](image=tf.zeros([1, 5, 7, 3], tf.uint8))["images"].shape == (1, 20, 28, 3)


def test_upscale_after_restoring_the_checkpoint(trained, records):
    task, workdir = trained[0], trained[1]
    hr = next(iter(t2i_dataset(records, "test", 5, SIZE, training=False)))["image"]
    low = tf.image.resize(hr, [8, 8], method="bicubic", antialias=True)
    low_u8 = tf.cast(tf.clip_by_value(tf.round((low + 1.0) * 127.5), 0, 255), tf.uint8)
    restored, step = load_upscaler(workdir)
    assert restored.config["n1"] == 16 and restored.data_dir is None and step > 0
    up = restored.upscale(low_u8.numpy())  # numpy in, 5 images in chunks of upscale_batch_size=4
    assert up.dtype == tf.uint8 and up.shape == (5, 32, 32, 3)
    assert (up.numpy() == task.upscale(low_u8).numpy()).all()  # same weights as the trained task
    assert restored.upscale(low_u8[0]).shape == (32, 32, 3)  # one image [H, W, 3]
    # Better than bicubic on held-out images, measured on the uint8 outputs.
    target = (hr.numpy() + 1.0) * 127.5
    bicubic = tf.image.resize(tf.cast(low_u8, tf.float32), [32, 32], method="bicubic").numpy().clip(0, 255).round()
    assert float(tf.reduce_mean(tf.image.psnr(up.numpy().astype(np.float32), target, 255.0))) > float(
        tf.reduce_mean(tf.image.psnr(bicubic, target, 255.0)))
    with pytest.raises(UserError, match="uint8"):
        restored.upscale(np.zeros([1, 8, 8, 3], np.float32))
    with pytest.raises(UserError, match="RGB"):
        restored.upscale(np.zeros([1, 8, 8, 4], np.uint8))


@pytest.mark.parametrize("overrides,message", [
    (dict(scale=1), "--scale must be >= 2; got 1"),
    (dict(image_size=30), "--image_size must be a positive multiple of --scale=4"),
    (dict(learning_rate=0.0), "--learning_rate must be > 0; got 0.0"),
    (dict(optimizer="rmsprop"), "--optimizer must be one of adam, sgd"),
    (dict(f1=8), "--f1 must be odd"),
    (dict(patch_size=64), "--patch_size must be 0"),
    (dict(downscale_method="nearest"), "--downscale_method"),
    (dict(hr_sampling="random"), "--hr_sampling"),
    (dict(lr_decay=0.0), "--lr_decay must be in"),
])
def test_bad_config_values_name_the_flag(records, tmp_path, overrides, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[")):
        SrcnnTask(config(records, **overrides)).prepare(str(tmp_path))


def test_data_and_workdir_errors(records, trained, tmp_path):
    not_t2i = tmp_path / "tirg_css"
    not_t2i.mkdir()
    (not_t2i / "info.json").write_text(json.dumps({"dataset": "css", "splits": {"train": {"num_images": 4}}}))
    with pytest.raises(UserError, match="not a text-to-image record set"):
        SrcnnTask(config(str(not_t2i))).prepare(str(tmp_path / "w1"))
    with pytest.raises(UserError, match="not a converted dataset"):
        SrcnnTask(config(str(tmp_path / "missing"))).prepare(str(tmp_path / "w2"))
    # A workdir whose checkpoint has another architecture.
    workdir = trained[1]
    assert json.load(open(os.path.join(workdir, CONFIG_FILE)))["config"]["n1"] == 16
    with pytest.raises(UserError, match="trained with --n1=16 --n2=8; got --n1=8 --n2=4"):
        check_architecture(workdir, SrcnnTask(config(records, n1=8)))
    with pytest.raises(UserError, match="has no config.json: train it first"):
        load_upscaler(str(tmp_path / "empty"))
    # Restoring for upscaling needs no data, but training does.
    restored, _ = load_upscaler(workdir)
    with pytest.raises(UserError, match="--data_dir"):
        restored.train_dataset(tf.distribute.InputContext(), 0)


def test_sgd_uses_the_papers_smaller_rate_on_the_last_layer(records, tmp_path):
    """optimizer=sgd, last_layer_lr_scale=0.1 (the paper's 1e-4 / 1e-5): one step moves each group by -rate * grad."""
    task = make_task(records, tmp_path, optimizer="sgd", momentum=0.0, learning_rate=0.5, last_layer_lr_scale=0.1)
    batch = next(iter(task.train_dataset(tf.distribute.InputContext(), 0)))
    model = task.model
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(batch["input"], training=True) - batch["image"]))
    hidden, last = model.hidden_variables(), model.last_variables()
    grads = tape.gradient(loss, hidden + last)
    before = [v.numpy() for v in hidden + last]
    task.train_step(batch)
    rates = [0.5] * len(hidden) + [0.05] * len(last)
    for v, b, g, rate in zip(hidden + last, before, grads, rates):
        np.testing.assert_allclose(v.numpy() - b, -rate * g.numpy(), rtol=1e-3, atol=1e-7)
    assert float(task.learning_rate(tf.constant(0, tf.int64))) == 0.5


@pytest.mark.parametrize("preset", list(cfg.PRESETS))
def test_every_preset_is_a_valid_config(records, tmp_path, preset):
    task = SrcnnTask({**cfg.PRESETS[preset], "data_dir": records})
    task.prepare(str(tmp_path))
    assert task.config["image_size"] % task.config["scale"] == 0
    assert cfg.DEFAULT_PRESET in cfg.PRESETS
