"""StackGanTask: Stage-I and Stage-II through the real Trainer, the frozen Stage-I, the losses, export and eval."""

import os

import numpy as np
import pytest
import tensorflow as tf

from configs import stackgan as cfg
from t2i_tf.errors import UserError
from t2i_tf.eval.generator_eval import EvalOptions, evaluate_generator
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


# ---------------------------------------------------------------- the official (paper preset) training step
OFFICIAL_STEP = dict(reuse_fakes=True, wrong_pairs="text")


def test_paper_preset_is_the_official_cub_recipe():
    """StackGAN-Pytorch on CUB: 600 epochs of floor(8855 / 64) = 138 iterations, halved every 100 epochs; one random
    caption embedding; the frozen Stage-I in train mode; one G forward per step; shifted-text wrong pairs."""
    p = cfg.PAPER
    assert (p["batch_size"], p["num_iters"], p["lr_decay_every"]) == (64, 600 * (8855 // 64), 100 * (8855 // 64))
    assert (p["caption_embeddings"], p["stage1_mode"], p["reuse_fakes"], p["wrong_pairs"]) == (1, "train", True, "text")
    assert (p["ca_activation"], p["kl_coef"], p["c_dim"], p["ngf"], p["ndf"], p["z_dim"]) == ("relu", 2.0, 128, 128, 64, 100)
    assert StackGanTask(dict(cfg.TEST, caption_embeddings=1))._reader_kwargs()["embeddings_sampled"] == 1


def test_one_random_caption_embedding_per_image(tmp_path):
    """caption_embeddings=1 (StackGAN-Pytorch datasets.py:144-145): each training embedding is ONE caption's."""
    from t2i_tf.data.t2i import t2i_dataset
    from t2i_tf.datasets.cub import convert
    from tests.fixtures_t2i import make_cub

    fx = make_cub(str(tmp_path), stackgan=True, embeddings=True, test_classes=(3, 4))
    out = str(tmp_path / "out")
    convert.convert_cub(fx.cub_dir, out, embeddings_dir=fx.birds_dir, examples_per_shard=2)
    got = [b["embedding"].numpy() for b in t2i_dataset(out, "train", 4, 16, seed=3, embeddings_sampled=1).take(6)]
    emb = np.concatenate(got)[:, 0]
    # fixture caption c of image k of class y has the value 1000 y + 10 k + c: one caption -> an integer value
    np.testing.assert_allclose(emb, np.round(emb), atol=1e-3)
    assert len(set(np.round(emb) % 10)) > 1  # different captions drawn
    mean4 = np.concatenate([b["embedding"].numpy() for b in t2i_dataset(out, "train", 4, 16, seed=3).take(6)])[:, 0]
    assert not np.allclose(mean4, np.round(mean4), atol=1e-3)  # the default still averages 4


class _StandInD:
    """A discriminator whose codes carry the image's fill value and whose logits are a function of code and text."""

    def __init__(self, cond_of, uncond_of):
        self.cond_of, self.uncond_of = cond_of, uncond_of

    def encode(self, images, training=None):
        return images[:, 0, 0, 0]

    def cond_logits(self, codes, condition, training=None):
        pairs = zip(codes.numpy().tolist(), condition.numpy()[:, 0].tolist())
        return tf.constant([self.cond_of[(round(a, 1), round(t, 1))] for a, t in pairs])

    def uncond_logits(self, codes):
        return tf.constant([self.uncond_of[round(a, 1)] for a in codes.numpy().tolist()])


@pytest.mark.parametrize("stage", [1, 2])
def test_text_wrong_pairs_are_the_official_loss(stage1, stage2, monkeypatch, stage):
    """wrong_pairs=text: code/miscc/utils.py:29-60: the real images' codes 0..B-2 with texts 1..B-1 (mean over B-1
    pairs); Stage I real + (fake + wrong) / 2, Stage II (real + real_u) / 2 + (fake + wrong + fake_u) / 3."""
    task = (stage1 if stage == 1 else stage2)[0]
    size = task.image_size
    images = tf.constant(np.array([0.1, 0.2, 0.3], np.float32)[:, None, None, None] * np.ones([3, size, size, 3], np.float32))
    fake = -images
    texts = tf.constant([[0.5], [0.6], [0.7]])
    cond_of = {(0.1, 0.5): 2.0, (0.2, 0.6): 1.0, (0.3, 0.7): 0.5,  # real pairs
               (0.1, 0.6): -1.0, (0.2, 0.7): 0.3,  # wrong pairs: image i, text i+1
               (-0.1, 0.5): -2.0, (-0.2, 0.6): -0.4, (-0.3, 0.7): 1.2}  # fake pairs
    uncond_of = {0.1: 0.7, 0.2: -0.2, 0.3: 1.1, -0.1: -1.5, -0.2: 0.4, -0.3: 0.0}
    monkeypatch.setattr(task, "discriminator", _StandInD(cond_of, uncond_of))
    monkeypatch.setattr(task, "d_condition", lambda cond: cond)
    monkeypatch.setitem(task.config, "wrong_pairs", "text")
    terms = task.discriminator_terms(images, None, texts, fake, training=False)
    bce = lambda x, label: float(tf.nn.sigmoid_cross_entropy_with_logits(labels=[float(label)], logits=[x])[0])  # noqa: E731
    real = np.mean([bce(cond_of[k], 1) for k in [(0.1, 0.5), (0.2, 0.6), (0.3, 0.7)]])
    wrong = np.mean([bce(cond_of[k], 0) for k in [(0.1, 0.6), (0.2, 0.7)]])
    fake_l = np.mean([bce(cond_of[k], 0) for k in [(-0.1, 0.5), (-0.2, 0.6), (-0.3, 0.7)]])
    if stage == 1:
        expected = real + 0.5 * (fake_l + wrong)
    else:
        real_u = np.mean([bce(uncond_of[v], 1) for v in (0.1, 0.2, 0.3)])
        fake_u = np.mean([bce(uncond_of[v], 0) for v in (-0.1, -0.2, -0.3)])
        expected = (real + real_u) / 2 + (fake_l + wrong + fake_u) / 3
    np.testing.assert_allclose(float(tf.reduce_mean(terms["total"])), expected, rtol=1e-5)
    assert terms["wrong_score"].shape == (2,)


def _count_forwards(task, monkeypatch):
    calls = []
    original = task.stacked_forward

    def counted(*args, **kwargs):
        calls.append(kwargs.get("training", args[2] if len(args) > 2 else False))
        return original(*args, **kwargs)

    monkeypatch.setattr(task, "stacked_forward", counted)
    return calls


def test_reuse_fakes_is_one_generator_forward_per_step(stage1, monkeypatch):
    """reuse_fakes (code/trainer.py:170-194): the D update and the G update see the same fakes: one training-mode
    G forward per step (GAN-CLS's step draws twice), and both optimizers step once."""
    from t2i_tf.runs.restore import restore_task

    task, _ = restore_task("stackgan", stage1[1], strategy="default")  # a copy: the fixture's task stays untouched
    batch = next(iter(task.train_dataset(tf.distribute.InputContext(), seed=0)))
    for reuse, forwards in ((True, 1), (False, 2)):
        monkeypatch.setitem(task.config, "reuse_fakes", reuse)
        calls = _count_forwards(task, monkeypatch)
        g_before, d_before = int(task.g_optimizer.iterations.numpy()), int(task.d_optimizer.iterations.numpy())
        metrics = task._step(batch)
        assert calls == [True] * forwards, reuse
        assert int(task.g_optimizer.iterations.numpy()) == g_before + 1
        assert int(task.d_optimizer.iterations.numpy()) == d_before + 1
        assert all(np.isfinite(float(v)) for v in metrics.values())
        monkeypatch.undo()


@pytest.fixture(scope="module")
def official_stage2(records, stage1, tmp_path_factory):
    _, stage1_dir, _ = stage1
    workdir = tmp_path_factory.mktemp("stage2_official")
    task, metrics = fit(dict(cfg.TEST, data_dir=records[32], stage=2, stage1_workdir=stage1_dir, seed=0,
                             stage1_mode="train", **OFFICIAL_STEP), workdir)
    return task, str(workdir), metrics


def test_stage1_mode_train_moves_only_the_frozen_stage1_batchnorm_statistics(stage1, official_stage2):
    """StackGAN-Pytorch's netG.train() runs its frozen STAGE1_G on batch statistics and updates its running
    statistics (checked against the official code in tests/import_torch/test_stackgan.py): the weights stay the
    Stage-I run's, the moving statistics move, and the Stage-II run checkpoints and restores them."""
    from t2i_tf.runs.restore import restore_task

    s1_task, _ = restore_task("stackgan", stage1[1], strategy="default")  # the Stage-I run as checkpointed
    task, workdir, _ = official_stage2
    assert np.isfinite(logged_scalars(workdir)["d_wrong"])
    mine = {v.path: v.numpy() for v in task.stage1.generator.variables}
    theirs = {v.path: v.numpy() for v in s1_task.generator.variables}
    moving = [p for p in mine if "moving_" in p]
    assert moving and set(mine) == set(theirs)
    for p in mine:
        if p in moving:
            continue
        np.testing.assert_array_equal(mine[p], theirs[p], err_msg=p)
    assert any(not np.array_equal(mine[p], theirs[p]) for p in moving)
    assert "stage1_generator" in task.checkpoint_items()
    restored, _ = restore_task("stackgan", workdir, strategy=task.strategy)
    for v in restored.stage1.generator.variables:
        np.testing.assert_array_equal(v.numpy(), mine[v.path], err_msg=v.path)


def test_text_wrong_pairs_need_two_examples_per_replica(records, tmp_path):
    task = StackGanTask(dict(cfg.TEST, data_dir=records[16], seed=0, batch_size=2, **OFFICIAL_STEP))
    task.prepare(str(tmp_path / "w"))
    task.num_replicas = 2  # as build() sets it under a two-replica strategy: one example per replica
    with pytest.raises(UserError, match="wrong_pairs=text"):
        task._build_gan()


def test_stage2_export_has_both_stages_side_by_side(stage1, stage2, tmp_path):
    task, _, _ = stage2
    path = str(tmp_path / "export")
    description = task.export(path)
    assert description["stage1_size"] == 16 and "stage1_images" in description["signatures"]["generate_stages"]["outputs"]
    sigs = tf.saved_model.load(path).signatures
    captions = ["a large red circle at the center", "a small blue triangle at the top left"]
    args = {"text": tf.constant(captions), "seed": tf.constant(5, tf.int64)}
    stages, final = sigs["generate_stages"](**args), sigs["generate"](**args)
    np.testing.assert_array_equal(stages["images"].numpy(), final["images"].numpy())  # the same draw
    assert stages["stage1_images"].shape == (2, 16, 16, 3) and stages["images"].shape == (2, 32, 32, 3)
    # Stage-I's image is the frozen Stage-I run's own generate for that text and seed
    s1_task = stage1[0]
    np.testing.assert_array_equal(stages["stage1_images"].numpy(), s1_task.generate(captions, 1, seed=5)["images"][:, 0])
    assert stages["known_words"].numpy().tolist() == final["known_words"].numpy().tolist()


def test_stage1_export_has_no_stages_signature(stage1, tmp_path):
    description = stage1[0].export(str(tmp_path / "export"))
    assert list(description["signatures"]) == ["generate"]
