"""DamsmTask: training through the real Trainer, held-out evaluation, the exported encoders."""

import numpy as np
import pytest
import tensorflow as tf

from configs import damsm as cfg
from t2i_tf.datasets.css.captions import convert_css_captions
from t2i_tf.datasets.css.generate import generate_css
from t2i_tf.errors import UserError
from t2i_tf.models.damsm import token_mask
from t2i_tf.tasks.damsm import DamsmTask
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
