"""TirgTask: XLA step == plain step, data/vocabulary preparation, retrieval ranking."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import tirg as cfg
from t2i_tf.errors import UserError
from t2i_tf.tasks.tirg import TirgTask, TorchSGD, parse_blocks


def _task(records, workdir, **overrides):
    task = TirgTask(dict(cfg.TEST, data_dir=records, seed=0, text_dropout=0.0, **overrides))
    task.prepare(str(workdir))
    keras.utils.set_random_seed(0)
    task.build(tf.distribute.get_strategy())
    return task


def _batch(task):
    ctx = tf.distribute.InputContext(1, 0, 1)
    return next(iter(task.train_dataset(ctx, 0)))


def test_xla_step_equals_plain_step(tiny_css, tmp_path):
    _, records = tiny_css
    plain, xla = _task(records, tmp_path / "a"), _task(records, tmp_path / "b")
    xla.model.set_weights(plain.model.get_weights())
    batch = _batch(plain)
    tf.function(plain.train_step)(batch)
    tf.function(xla.train_step, jit_compile=True)(batch)
    for a, b in zip(plain.model.get_weights(), xla.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_vocabulary_saved_and_reused(tiny_css, tmp_path):
    _, records = tiny_css
    task = _task(records, tmp_path)
    words = (tmp_path / "vocab.txt").read_text().split()
    assert "add" in words and "remove" in words and "make" in words
    assert words == sorted(words)  # google/tirg's SimpleVocab order, so imported word ids line up
    again = TirgTask(dict(cfg.TEST, data_dir=records, seed=0))
    again.prepare(str(tmp_path))
    assert again.tokenizer.vocabulary == task.tokenizer.vocabulary


def test_batches_hold_pairs_sharing_a_source(tiny_css, tmp_path):
    _, records = tiny_css
    batch = _batch(_task(records, tmp_path))
    tokens = batch["tokens"].numpy()
    assert batch["source"].shape[0] == cfg.TEST["batch_size"]
    np.testing.assert_array_equal(batch["source"][0::2].numpy(), batch["source"][1::2].numpy())
    assert not np.array_equal(tokens[0::2], tokens[1::2])


def test_retrieve_ranks_gallery(tiny_css, tmp_path):
    _, records = tiny_css
    task = _task(records, tmp_path)
    images, _ = task._gallery("test")
    results = task.retrieve(images[0], "add small red circle to top-left", top_k=4)
    assert [r["rank"] for r in results] == [1, 2, 3, 4]
    assert len({r["image_id"] for r in results}) == 4
    with pytest.raises(UserError, match="expected an RGB image"):
        task.retrieve(images[0, :, :, 0], "x")


def test_parse_blocks():
    assert parse_blocks("2,2,2,2") == (2, 2, 2, 2)
    for bad in ("", "2,,2", "0,1", "a"):
        with pytest.raises(UserError):
            parse_blocks(bad)


@pytest.mark.parametrize("every, factor, at_step, expected", [
    (0, 0.1, 1_000_000, 1e-2),  # 0: never decays (the official CSS setting), not "every step"
    (100, 0.1, 99, 1e-2),
    (100, 0.1, 100, 1e-3),
    (100, 0.1, 250, 1e-4),
])
def test_learning_rate_step_decay(tiny_css, tmp_path, every, factor, at_step, expected):
    _, records = tiny_css
    task = TirgTask(dict(cfg.TEST, data_dir=records, learning_rate=1e-2, lr_decay_every=every, lr_decay_factor=factor))
    task.prepare(str(tmp_path))
    task.build(tf.distribute.get_strategy())
    assert float(task.learning_rate(tf.constant(at_step, tf.int64))) == pytest.approx(expected, rel=1e-5)


# The paper's loss, optimiser, padding and input normalisation on the test preset's small network (the 7x7 stem
# at 32 px leaves 1x1 maps whose BN amplifies XLA's rounding; the parity tests cover that stem).
PAPER_STEP = dict(loss="soft_triplet", triplet_negatives=3, weight_decay_mode="coupled", weight_decay=1e-2,
                  image_padding="torch", image_input_norm="imagenet")


def test_paper_step_xla_equals_plain_and_is_seeded(tiny_css, tmp_path):
    """The paper's step (sampled triplets, coupled L2, torch padding): XLA == plain, the same sampled negatives."""
    _, records = tiny_css
    plain, xla = _task(records, tmp_path / "a", **PAPER_STEP), _task(records, tmp_path / "b", **PAPER_STEP)
    assert isinstance(plain.optimizer, TorchSGD)
    xla.model.set_weights(plain.model.get_weights())
    start = [w.copy() for w in plain.model.get_weights()]
    batch = _batch(plain)
    tf.function(plain.train_step)(batch)
    tf.function(xla.train_step, jit_compile=True)(batch)
    for a, b in zip(plain.model.get_weights(), xla.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert any(not np.allclose(a, b) for a, b in zip(start, plain.model.get_weights()))


def _torch_sgd_numpy(w0, grads, lrs, momentum, wd):
    """torch.optim.SGD.step (dampening 0, nesterov False), written out: d = g + wd w; buf = m buf + d; w -= lr buf."""
    w, buf = np.array(w0, np.float64), None
    for g, lr in zip(grads, lrs):
        d = g + wd * w
        buf = d if buf is None else momentum * buf + d
        w = w - lr * buf
    return w


def test_torch_sgd_is_torch_semantics():
    rng = np.random.default_rng(0)
    w0, grads = rng.normal(size=3), rng.normal(size=(5, 3))
    lrs = [0.1, 0.1, 0.1, 0.01, 0.01]  # a step decay after 3 steps: torch scales the whole buffer by the new lr
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([2], [0.1, 0.01])  # steps 0-2, then 3-4
    v = tf.Variable(w0.astype(np.float32))
    opt = TorchSGD(schedule, momentum=0.9, l2=0.05)
    opt.build([v])
    for g in grads:
        opt.apply_gradients([(tf.constant(g, tf.float32), v)])
    np.testing.assert_allclose(v.numpy(), _torch_sgd_numpy(w0, grads, lrs, 0.9, 0.05), rtol=1e-5)


def test_coupled_weight_decay_measured_figures():
    """100 steps of decay alone, lr 0.1, momentum 0.9, wd 0.01: torch.optim.SGD leaves 0.3686 (measured with
    torch 2.14), Keras's decoupled decay 0.999^100 = 0.905."""
    coupled, decoupled = tf.Variable([1.0]), tf.Variable([1.0])
    a = TorchSGD(0.1, momentum=0.9, l2=0.01)
    b = keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.01)
    a.build([coupled])
    b.build([decoupled])
    for _ in range(100):
        a.apply_gradients([(tf.zeros([1]), coupled)])
        b.apply_gradients([(tf.zeros([1]), decoupled)])
    assert float(coupled[0]) == pytest.approx(0.36862892, rel=1e-5)
    assert float(coupled[0]) == pytest.approx(_torch_sgd_numpy([1.0], np.zeros((100, 1)), [0.1] * 100, 0.9, 0.01)[0])
    assert float(decoupled[0]) == pytest.approx(0.999**100, rel=1e-5)


def test_image_weights_start_the_image_encoder(tiny_css, tmp_path):
    """--image_weights: a torchvision resnet18 state dict file becomes the image encoder's starting weights."""
    from tests.import_torch.test_tirg import _torchvision_resnet18

    _, records = tiny_css
    sd = _torchvision_resnet18()
    path = str(tmp_path / "resnet18.npz")
    np.savez(path, **sd)
    arch = dict(image_width=64, image_blocks="2,2,2,2", image_stem="imagenet", image_padding="torch")
    task = _task(records, tmp_path / "run", image_weights=path, **arch)
    enc = task.model.image_encoder
    np.testing.assert_array_equal(enc.stem_conv.kernel.numpy(), sd["conv1.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(enc.stage4_block2.bn2.moving_variance.numpy(), sd["layer4.1.bn2.running_var"])
    with pytest.raises(UserError, match="does not exist"):
        _task(records, tmp_path / "run2", image_weights=str(tmp_path / "missing.pth"), **arch)
