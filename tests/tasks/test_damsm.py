"""DamsmTask: training through the real Trainer, held-out evaluation, the exported encoders."""

import numpy as np
import pytest
import tensorflow as tf

from configs import damsm as cfg
from t2i_tf.datasets.css.captions import convert_css_captions
from t2i_tf.datasets.css.generate import generate_css
from t2i_tf.errors import UserError
from t2i_tf.models.damsm import token_mask
from t2i_tf.tasks.damsm import DamsmLearningRate, DamsmTask, RestartingAdam
from t2i_tf.train.trainer import Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("damsm")
    raw, records = str(root / "raw"), str(root / "records")
    generate_css(raw, seed=6, num_base_scenes=4, edits_per_scene=3, image_size=16)
    convert_css_captions(raw, records, image_size=16)
    workdir = str(root / "run")
    task = DamsmTask(dict(cfg.TEST, data_dir=records, seed=0))
    trainer = Trainer(task, workdir, num_iters=8, strategy="default", log_every=8, eval_every=1000, ckpt_every=1000,
                      steps_per_loop=8, verbose=False)
    before = task_loss = None
    trainer.setup()
    batch = next(iter(task.train_dataset(tf.distribute.InputContext(), 0)))
    before = float(tf.reduce_mean(task.losses(batch, training=False)["total"]))
    metrics = trainer.fit()
    task_loss = float(tf.reduce_mean(task.losses(batch, training=False)["total"]))
    return task, workdir, metrics, before, task_loss


def test_training_lowers_the_damsm_loss(trained):
    task, _, metrics, before, after = trained
    assert after < before
    assert int(task.text_optimizer.iterations.numpy()) == 8 == int(task.image_optimizer.iterations.numpy())
    for key in ("eval/words_loss", "eval/sentence_loss", "eval/top1_in_batch"):
        assert np.isfinite(metrics[key])
    assert 0.0 <= metrics["eval/top1_in_batch"] <= 100.0


def test_export_encodes_raw_text_and_uint8_images(trained, tmp_path):
    task, _, _, _, _ = trained
    path = str(tmp_path / "export")
    description = task.export(path)
    loaded = tf.saved_model.load(path)
    texts = tf.constant(["a large red circle at the center", "a small blue triangle"])
    out = loaded.signatures["encode_text"](text=texts)
    tokens = task.tokenizer(texts)
    words, sentence = task.text_encoder(tokens, training=False)
    np.testing.assert_allclose(out["sentence"].numpy(), sentence.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["mask"].numpy(), token_mask(tokens).numpy())
    image = np.random.default_rng(0).integers(0, 256, [2, 16, 16, 3], dtype=np.uint8)
    enc = loaded.signatures["encode_image"](image=tf.constant(image))
    _, global_ = task.image_encoder(tf.constant(image, tf.float32) / 127.5 - 1.0, training=False)
    np.testing.assert_allclose(enc["global"].numpy(), global_.numpy(), rtol=1e-4, atol=1e-5)
    assert set(description["signatures"]) == {"encode_text", "encode_image"}


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="backbone"):
        DamsmTask(dict(cfg.TEST, backbone="vgg")).prepare(str(tmp_path))
    with pytest.raises(UserError, match="inception_weights"):
        DamsmTask(dict(cfg.TEST, backbone="inception_v3", inception_weights="")).prepare(str(tmp_path))
    with pytest.raises(UserError, match="needs --data_dir"):
        DamsmTask(dict(cfg.TEST, data_dir=None)).prepare(str(tmp_path / "empty"))


def test_paper_lr_schedule_is_the_official_per_epoch_rule():
    c = cfg.PAPER
    sched = DamsmLearningRate(c["learning_rate"], c["lr_decay"], c["lr_decay_every"], c["lr_decay_until"])
    # pretrain_DAMSM.py:268-284, run directly: lr of each epoch
    lr, per_epoch = c["learning_rate"], []
    for _ in range(201):
        per_epoch.append(lr)
        if lr > c["learning_rate"] / 10.0:
            lr *= 0.98
    ipe = c["lr_decay_every"]
    steps = [0, ipe - 1, ipe, 5 * ipe + 7, 113 * ipe, 114 * ipe, 150 * ipe + 3, c["num_iters"] - 1]
    got = np.array([float(sched(tf.constant(s, tf.int64))) for s in steps])
    np.testing.assert_allclose(got, [per_epoch[s // ipe] for s in steps], rtol=1e-6)
    assert sched.max_decays == 114 and got[-1] < c["learning_rate"] / 10.0 < got[4]
    assert float(DamsmLearningRate(1e-3)(tf.constant(10**6))) == pytest.approx(1e-3)


def test_restarting_adam_restarts_its_moments_every_epoch():
    grads = [np.array([0.5, -1.0]), np.array([2.0, 0.1]), np.array([-0.3, 0.7]), np.array([1.0, 1.0]),
             np.array([0.2, -0.2])]

    def keras_run(opt):
        var = tf.Variable([1.0, 2.0])
        for g in grads:
            opt.apply_gradients([(tf.constant(g, tf.float32), var)])
        return var.numpy()

    def reference(restart_every, lr=0.1, b1=0.5, b2=0.999, eps=1e-7):
        x, m, v = np.array([1.0, 2.0]), 0.0, 0.0
        for i, g in enumerate(grads):
            t = i % restart_every + 1 if restart_every else i + 1
            if t == 1:
                m, v = np.zeros(2), np.zeros(2)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            x = x - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        return x

    restarted = keras_run(RestartingAdam(2, learning_rate=0.1, beta_1=0.5))
    np.testing.assert_allclose(restarted, reference(2), rtol=1e-5)
    plain = keras_run(RestartingAdam(0, learning_rate=0.1, beta_1=0.5))
    np.testing.assert_allclose(plain, reference(0), rtol=1e-5)
    assert np.abs(restarted - plain).max() > 1e-3
