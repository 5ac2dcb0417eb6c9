"""AttnGanTask: against a tiny trained DAMSM, through the real Trainer; EMA, export and generator eval."""

import os

import numpy as np
import pytest
import tensorflow as tf

from configs import attngan as cfg
from t2i_tf.errors import UserError
from t2i_tf.eval.generator_eval import EvalOptions, evaluate_generator
from t2i_tf.models.noise import generator_noise
from t2i_tf.tasks.attngan import AttnGanTask
from t2i_tf.tasks.damsm import DamsmTask
from t2i_tf.train.trainer import Trainer
from tests.tensorboard_events import read_events


def fit(task, workdir, num_iters=2):
    trainer = Trainer(task, str(workdir), num_iters=num_iters, strategy="default", log_every=1, eval_every=1000,
                      ckpt_every=1000, steps_per_loop=num_iters, verbose=False)
    return trainer.fit()


@pytest.fixture(scope="module")
def trained(captioned_css, trained_damsm, tmp_path_factory):
    """A 2-step AttnGAN against the session's tiny trained DAMSM."""
    records, damsm_dir = captioned_css[16], trained_damsm
    workdir = str(tmp_path_factory.mktemp("attngan") / "attngan")
    task = AttnGanTask(dict(cfg.TEST, data_dir=records, damsm_workdir=damsm_dir, seed=0))
    metrics = fit(task, workdir)
    return task, workdir, metrics, records, damsm_dir


def test_trains_every_stage_against_the_frozen_damsm(trained):
    task, workdir, metrics, _, _ = trained
    assert task.sizes == [8, 16] and len(task.discriminators) == 2
    logged = {k: float(tf.make_ndarray(v[-1][1].tensor)) for k, v in read_events(os.path.join(workdir, "train")).items()
              if k in ("d_loss", "g_loss", "g_adv", "damsm_loss", "kl")}
    assert set(logged) == {"d_loss", "g_loss", "g_adv", "damsm_loss", "kl"} and all(map(np.isfinite, logged.values()))
    assert logged["damsm_loss"] > 0 and logged["g_loss"] > logged["g_adv"]
    assert int(task.g_optimizer.iterations.numpy()) == 2 == int(task.d_optimizer.iterations.numpy())
    # DAMSM is not trained by AttnGAN: its encoders equal the DAMSM run's checkpoint.
    fresh = DamsmTask(dict(task.damsm.config))
    Trainer(fresh, task.config["damsm_workdir"], num_iters=0, strategy="default", verbose=False).restore()
    for a, b in zip(task.damsm.text_encoder.weights, fresh.text_encoder.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert all(np.isfinite(v) for v in metrics.values())


def test_ema_decay_warms_up_to_the_configured_decay(trained):
    task = trained[0]
    decays = [float(task.ema_decay_at(t)) for t in (0, 1, 5, 10_000)]
    np.testing.assert_allclose(decays, [1 / 10, 2 / 11, 6 / 15, task.config["ema_decay"]], rtol=1e-6)  # TEST: 0.5


def test_ema_is_a_moving_average_of_the_generator(trained):
    task, _, _, _, _ = trained
    before = [w.numpy().copy() for w in task.generator_ema.weights]
    current = [w.numpy().copy() for w in task.generator.weights]
    assert any(not np.allclose(a, b) for a, b in zip(before, current))  # the average lags the trained weights
    task._update_ema()
    t = int(task.g_optimizer.iterations.numpy())
    assert t == task.config["num_iters"]
    decay = min(task.config["ema_decay"], (1 + t) / (10 + t))  # the warm-up of tf.train.ExponentialMovingAverage
    assert decay < task.config["ema_decay"]  # still warming up after the test run's few steps
    for e, b, w in zip(task.generator_ema.weights, before, current):
        np.testing.assert_allclose(e.numpy(), decay * b + (1 - decay) * w, rtol=1e-5, atol=1e-6)
    assert task.sampling_generator is task.generator_ema


def test_attention_covers_the_real_words(trained):
    task, _, _, _, _ = trained
    tokens = task.tokenizer(tf.constant(["a large red circle", "a small blue triangle at the top left"]))
    out = task.images_for(tokens, tf.zeros([2, task.config["z_dim"]]))
    att = out["attention"][-1].numpy()
    real = (tokens.numpy() != 0)
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
    assert np.all(att[0][..., ~real[0]] == 0)
    assert [im.shape[1] for im in out["images"]] == [8, 16]


def test_export_and_generate_agree(trained, tmp_path):
    task, _, _, _, _ = trained
    path = str(tmp_path / "export")
    task.export(path)
    loaded = tf.saved_model.load(path)
    captions = ["a large red circle at the center", "a small blue triangle at the top left"]
    out = loaded.signatures["generate"](text=tf.constant(captions), seed=tf.constant(3, tf.int64))["images"].numpy()
    mine = task.generate(captions, 1, seed=3)["images"][:, 0]
    np.testing.assert_array_equal(out, mine)
    assert out.shape == (2, 16, 16, 3)


def test_generator_eval_uses_damsm_features(trained):
    task, _, _, _, _ = trained
    metrics, protocol = evaluate_generator(task, EvalOptions(num_images=10, batch_size=4))
    assert protocol["model"] == "attngan" and protocol["text_encoder"] == "DAMSM (frozen)"
    assert metrics["num_images"] == 10


def test_bad_settings_are_clear_errors(trained, tmp_path):
    _, _, _, records, damsm_dir = trained
    base = dict(cfg.TEST, data_dir=records, damsm_workdir=damsm_dir, seed=0)
    for overrides, message in ((dict(damsm_workdir=str(tmp_path / "none")), "no trained DAMSM run"),
                               (dict(base_size=12), "base_size"), (dict(ema_decay=1.0), "ema_decay")):
        with pytest.raises(UserError, match=message):
            AttnGanTask(dict(base, **overrides)).prepare(str(tmp_path / "w"))


def test_export_with_attention_maps_per_word(trained, tmp_path):
    task, _, _, _, _ = trained
    path = str(tmp_path / "export")
    description = task.export(path)
    assert set(description["signatures"]) == {"generate", "generate_with_attention"}
    sigs = tf.saved_model.load(path).signatures
    captions = ["A large red circle, at the center!", "a small zzz triangle"]
    args = {"text": tf.constant(captions), "seed": tf.constant(3, tf.int64)}
    out, plain = sigs["generate_with_attention"](**args), sigs["generate"](**args)
    np.testing.assert_array_equal(out["images"].numpy(), plain["images"].numpy())
    words = [[w.decode() for w in row if w] for row in out["words"].numpy()]
    assert words == [["a", "large", "red", "circle", "at", "the", "center"], ["a", "small", "zzz", "triangle"]]
    att = out["attention"].numpy()
    tokens = task.tokenizer(tf.constant(captions))
    expected = task.images_for(tokens, generator_noise(2, task.config["z_dim"], 3))["attention"][-1].numpy()
    np.testing.assert_allclose(att, expected, atol=1e-6)
    assert att.shape[1:3] == (8, 8) and att.shape[-1] == out["words"].shape[1]
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
    assert np.all(att[1][..., 4:] == 0)  # padding gets no attention
