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


def test_swapped_word_negatives_in_training_only(trained, tmp_path):
    """--swap_negatives: training losses also weigh K swapped-word captions per image; evaluation does not."""
    records = trained[0].config["data_dir"]

    def make(name, **extra):  # no text dropout, so training-mode losses are deterministic
        task = DamsmTask(dict(cfg.TEST, data_dir=records, seed=0, text_dropout=0.0, **extra))
        task.prepare(str(tmp_path / name))
        task.build(tf.distribute.get_strategy())
        task.text_encoder.set_weights(trained[0].text_encoder.get_weights())
        task.image_encoder.set_weights(trained[0].image_encoder.get_weights())
        return task

    plain, swaps = make("plain"), make("swaps", swap_negatives=3)
    assert plain.swapper is None
    batch = next(iter(swaps.train_dataset(tf.distribute.InputContext(), 0)))
    neg = swaps.hard_negatives(batch["tokens"])
    n, t = batch["tokens"].shape
    assert neg["words"].shape[:3] == (n, 3, t) and neg["sentence"].shape == (n, 3, swaps.feature_dim)
    assert bool(tf.reduce_all(neg["valid"]))  # every CSS caption has a colour to swap
    assert bool(tf.reduce_all(tf.equal(neg["mask"], token_mask(batch["tokens"])[:, None])))  # one word swapped in place
    train, reference = swaps.losses(batch, training=True), plain.losses(batch, training=True)
    for key in ("words", "sentence"):  # more candidates per image: every example's loss grows
        assert np.all(train[key].numpy() > reference[key].numpy()), key
    np.testing.assert_allclose(swaps.losses(batch, training=False)["total"].numpy(),
                               plain.losses(batch, training=False)["total"].numpy(), rtol=1e-5)


def test_real_r_precision_on_small_test_sets_uses_the_captions_there_are(trained, capsys):
    """Used to be dropped silently unless 99 other-class first captions existed among the held-out images."""
    task = trained[0]
    metrics = task.evaluate(0)
    f = task.held_out_features(int(task.config["eval_images"]))
    n = len(f["class_id"])
    # every caption of the held-out images (captioned CSS: 3 each) is a candidate, not only the first
    assert f["pool"].shape == (3 * n, f["sentence"].shape[1]) and sorted(f["pool_class_id"]) == sorted(
        np.repeat(f["class_id"], 3))
    b = int(task.config["eval_batch_size"])  # per batch: its first captions, then its second ones, ...
    np.testing.assert_array_equal(f["pool"][:b], f["sentence"][:b])
    np.testing.assert_array_equal(f["pool"][3 * b:4 * b], f["sentence"][b:2 * b])
    assert not np.allclose(f["pool"][b:2 * b], f["sentence"][:b])  # the second captions are other sentences
    expected = 3 * int(n - np.unique(f["class_id"], return_counts=True)[1].max())
    assert 0 < expected < 99 and metrics["eval/real_r_precision_mismatched"] == expected
    assert 0.0 <= metrics["eval/real_r_precision"] <= 100.0
    assert f"among {expected} mismatched captions, not 99" in capsys.readouterr().out


def test_real_r_precision_skipped_line_when_one_class(trained, capsys, monkeypatch):
    task = trained[0]
    real = task.held_out_features

    def one_class(max_images):
        f = real(max_images)
        f["class_id"], f["pool_class_id"] = np.zeros_like(f["class_id"]), np.zeros_like(f["pool_class_id"])
        return f

    monkeypatch.setattr(task, "held_out_features", one_class)
    metrics = task.evaluate(0)
    assert "eval/real_r_precision" not in metrics
    assert "skipped: real R-precision (all 16 held-out images share one class" in capsys.readouterr().out


def test_eval_features_do_not_depend_on_the_image_chunk(trained, monkeypatch):
    """The image encoder runs EVAL_CHUNK images at a time (bounded memory): same losses and features as whole."""
    from t2i_tf.eval import generator_eval

    task = trained[0]
    batch = next(iter(task.train_dataset(tf.distribute.InputContext(), 0)))
    batch = {k: tf.concat([v] * 4, 0) for k, v in batch.items()}  # 16 rows
    whole_terms, whole_global, _ = task._losses_and_features(batch, training=False)
    monkeypatch.setattr(generator_eval, "EVAL_CHUNK", 3)
    calls = []
    encoder = task.image_encoder
    monkeypatch.setattr(task, "image_encoder", lambda x, training: calls.append(int(x.shape[0])) or encoder(x, training=training))
    terms, global_, _ = task._eval_terms_and_features(batch)
    np.testing.assert_allclose(global_.numpy(), whole_global.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(terms["total"].numpy(), whole_terms["total"].numpy(), rtol=1e-4, atol=1e-4)
    assert calls == [3, 3, 3, 3, 3, 1]
