"""StackGanTask: Stage-I and Stage-II through the real Trainer, the frozen Stage-I, the losses, export and eval."""

import os

import numpy as np
import pytest
import tensorflow as tf

from configs import stackgan as cfg
from t2i_tf.errors import UserError
from t2i_tf.eval.generator_eval import EvalOptions, evaluate_generator
from t2i_tf.losses import gan as gan_losses
from t2i_tf.tasks.stackgan import StackGanTask
from t2i_tf.train.trainer import Trainer
from tests.tensorboard_events import read_events


@pytest.fixture(scope="module")
def records(captioned_css):
    """Captioned CSS rendered at 16 px (Stage-I) and 32 px (Stage-II) from the same scenes."""
    return captioned_css


def fit(config, workdir, num_iters=2):
    task = StackGanTask(config)
    trainer = Trainer(task, str(workdir), num_iters=num_iters, strategy="default", log_every=1, eval_every=1000,
                      ckpt_every=1000, steps_per_loop=num_iters, verbose=False)
    return task, trainer.fit()


@pytest.fixture(scope="module")
def stage1(records, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stage1")
    task, metrics = fit(dict(cfg.TEST, data_dir=records[16], seed=0), workdir)
    return task, str(workdir), metrics


@pytest.fixture(scope="module")
def stage2(records, stage1, tmp_path_factory):
    _, stage1_dir, _ = stage1
    workdir = tmp_path_factory.mktemp("stage2")
    task, metrics = fit(dict(cfg.TEST, data_dir=records[32], stage=2, stage1_workdir=stage1_dir, seed=0), workdir)
    return task, str(workdir), metrics


def logged_scalars(workdir):
    """The last value of every train scalar the run logged."""
    return {k: float(tf.make_ndarray(v[-1][1].tensor)) for k, v in read_events(os.path.join(workdir, "train")).items()
            if k not in ("samples", "sample_captions") and not k.startswith("_hparams_")}


def variables_of(model):
    return [v.numpy().copy() for v in model.variables]


def test_stage1_trains_with_the_kl_term(stage1):
    task, workdir, metrics = stage1
    logged = logged_scalars(workdir)
    for key in ("d_loss", "g_loss", "kl", "d_real", "d_fake", "d_wrong", "match_loss"):
        assert np.isfinite(logged[key]), key
    assert logged["kl"] > 0 and int(task.g_optimizer.iterations.numpy()) == 2
    assert all(np.isfinite(v) for v in metrics.values()) and "eval/d_wrong" in metrics
    images = task.fake_images(tf.zeros([3, task.config["z_dim"]]), tf.ones([3, task.cond_dim]))
    assert images.shape == (3, 16, 16, 3)


def test_stage1_eval_is_deterministic_training_samples_the_condition(stage1):
    task, _, _ = stage1
    z, text = tf.random.normal([4, task.config["z_dim"]]), tf.random.normal([4, task.cond_dim])
    a, b = task.fake_images(z, text), task.fake_images(z, text)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    _, mu, logvar = task.stacked_forward(z, text, training=False)
    # D sees the CA mean, never the sampled condition.
    np.testing.assert_allclose(task.d_condition(text).numpy(), mu.numpy(), rtol=1e-6)
    c1 = task.generator.ca(text, noise=tf.ones([4, task.config["c_dim"]]))[0]
    np.testing.assert_allclose((c1 - mu).numpy(), tf.exp(0.5 * logvar).numpy(), rtol=1e-5, atol=1e-6)


def test_stage2_refines_the_frozen_stage1(stage1, stage2):
    s1_task, s1_dir, _ = stage1
    task, workdir, _ = stage2
    assert task.image_size == 32 and task.stage1_size == 16
    logged = logged_scalars(workdir)
    assert np.isfinite(logged["g_loss"]) and logged["kl"] > 0 and "match_loss" not in logged
    # Stage-I's generator and text encoder are the trained Stage-I run's, unchanged by Stage-II training.
    for mine, theirs in ((task.stage1.generator, s1_task.generator), (task.conditioner.text_encoder, s1_task.conditioner.text_encoder)):
        for a, b in zip(variables_of(mine), variables_of(theirs)):
            np.testing.assert_array_equal(a, b)
    z = tf.random.normal([2, task.config["z_dim"]])
    cond = task.condition({"tokens": task.tokenizer(tf.constant(["a red circle", "a blue square"]))})
    assert task.fake_images(z, cond).shape == (2, 32, 32, 3)
    assert not any("sentence_encoder" in k or "encoder_optimizer" in k for k in task.checkpoint_items())


def test_stage2_discriminator_loss_is_the_official_weighting(stage2, monkeypatch):
    """StackGAN-Pytorch code/miscc/utils.py:55-56: (real + real_uncond) / 2 + (fake + wrong + fake_uncond) / 3,
    checked on a stand-in D whose conditional / unconditional logits differ per kind of image."""
    task, _, _ = stage2
    logits = {0.1: (2.0, -1.0), 0.2: (0.5, 0.0), 0.3: (-3.0, 1.5)}  # real, wrong, fake: (cond, uncond)

    def stand_in(inputs, training=False):
        x, _ = inputs
        cond, uncond = logits[round(float(x[0, 0, 0, 0]), 1)]
        n = tf.shape(x)[0]
        return {"cond": tf.fill([n], cond), "uncond": tf.fill([n], uncond), "features": tf.zeros([n, 1])}

    monkeypatch.setattr(task, "discriminator", stand_in)
    images, wrong, fake = (tf.fill([2, 32, 32, 3], v) for v in (0.1, 0.2, 0.3))
    terms = task.discriminator_terms(images, wrong, tf.random.normal([2, task.cond_dim]), fake, training=False)
    bce = lambda x, label: float(tf.nn.sigmoid_cross_entropy_with_logits(labels=[float(label)], logits=[x])[0])  # noqa: E731
    expected = (bce(2.0, 1) + bce(-1.0, 1)) / 2 + (bce(-3.0, 0) + bce(0.5, 0) + bce(1.5, 0)) / 3
    np.testing.assert_allclose(terms["total"].numpy(), [expected, expected], rtol=1e-5)
    old = (bce(2.0, 1) + bce(-1.0, 1)) / 2 + 0.25 * bce(-3.0, 0) + 0.25 * bce(1.5, 0) + 0.5 * bce(0.5, 0)
    assert abs(old - expected) > 1e-2  # the weighting this replaced (0.0165 apart here)


def test_export_generates_what_the_task_generates(stage2, tmp_path):
    task, _, _ = stage2
    path = str(tmp_path / "export")
    description = task.export(path)
    assert description["model"] == "stackgan" and "generate" in description["signatures"]
    loaded = tf.saved_model.load(path)
    captions = ["a large red circle at the center", "a small blue triangle at the top left"]
    out = loaded.signatures["generate"](text=tf.constant(captions), seed=tf.constant(7, tf.int64))["images"]
    assert out.shape == (2, 32, 32, 3) and out.dtype == tf.uint8
    mine = task.generate(captions, 1, seed=7)["images"][:, 0]
    np.testing.assert_array_equal(out.numpy(), mine)


def test_stage2_generator_eval(stage2, tmp_path):
    task, _, _ = stage2
    metrics, protocol = evaluate_generator(task, EvalOptions(num_images=10, batch_size=4))
    assert protocol["model"] == "stackgan" and protocol["stage"] == 2 and protocol["stage1_size"] == 16
    assert protocol["stage1_step"] == 2 and metrics["num_images"] == 10


def test_bad_settings_are_clear_errors(records, tmp_path):
    base = dict(cfg.TEST, data_dir=records[16], seed=0)
    cases = [(dict(gan_type="wgan"), "--model=stackgan has no setting 'gan_type'"),
             (dict(interp=True), "--model=stackgan has no setting 'interp'"),
             (dict(stage=3), r"--stage must be in \[1, 2\]"),
             (dict(stage=2, stage1_workdir=str(tmp_path / "none")), "needs a trained Stage-I run"),
             (dict(image_size=24), "image_size")]
    for overrides, message in cases:
        with pytest.raises(UserError, match=message):
            StackGanTask(dict(base, **overrides)).prepare(str(tmp_path / "w"))
