"""TirgTask: XLA step == plain step, data/vocabulary preparation, retrieval ranking."""

import numpy as np
import pytest
import tensorflow as tf

from configs import tirg as cfg
from t2i_tf.errors import UserError
from t2i_tf.tasks.tirg import TirgTask, parse_blocks


def _task(records, workdir, **overrides):
    task = TirgTask(dict(cfg.TEST, data_dir=records, seed=0, text_dropout=0.0, **overrides))
    task.prepare(str(workdir))
    import keras

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
