"""t2i_tf.export.tirg and the export description: the SavedModel's signatures equal the Keras model's maths."""

import json
import os

import numpy as np
import tensorflow as tf

from configs import tirg as cfg
from t2i_tf.export.description import DESCRIPTION_FILE, write_export_description
from t2i_tf.export.tirg import export_tirg
from t2i_tf.tasks.tirg import TirgTask
from t2i_tf.train.trainer import Trainer


def test_description_round_trips_as_json(tmp_path):
    description = {"model": "x", "signatures": {"f": {"inputs": {"a": "int64 scalar"}}}, "noise": "rule"}
    assert write_export_description(str(tmp_path), description) == description
    assert json.load(open(tmp_path / DESCRIPTION_FILE)) == description


def test_compose_and_embed_image_resize_any_size_and_normalise(tiny_css, trained_tirg, tmp_path):
    _, records = tiny_css
    task = TirgTask(dict(cfg.TEST, data_dir=records))
    Trainer(task, trained_tirg, num_iters=0, strategy="default", verbose=False).restore()
    path = str(tmp_path / "export")
    description = export_tirg(task.model, task.tokenizer, task.image_size, path)
    assert set(description["signatures"]) == {"compose", "embed_image"}
    assert json.load(open(os.path.join(path, DESCRIPTION_FILE)))["image_size"] == task.image_size == 32
    loaded = tf.saved_model.load(path)

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    texts = ["make top-left circle red", "remove middle-center object", "add small blue square"]
    q = loaded.signatures["compose"](image=tf.constant(images), text=tf.constant(texts))["embedding"].numpy()
    g = loaded.signatures["embed_image"](image=tf.constant(images))["embedding"].numpy()
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, rtol=1e-5)
    x = tf.constant(images, tf.float32) / 127.5 - 1.0
    want_q = task.model.compose(x, task.tokenizer(tf.constant(texts)), training=False).numpy()
    want_g = task.model.embed_images(x, training=False).numpy()
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(q, unit(want_q), atol=1e-5)
    np.testing.assert_allclose(g, unit(want_g), atol=1e-5)
    # A larger image is resized (antialiased) to the training size first.
    big = rng.integers(0, 256, size=(2, 48, 40, 3), dtype=np.uint8)
    g_big = loaded.signatures["embed_image"](image=tf.constant(big))["embedding"].numpy()
    small = tf.image.resize(tf.constant(big, tf.float32), [32, 32], antialias=True) / 127.5 - 1.0
    np.testing.assert_allclose(g_big, unit(task.model.embed_images(small, training=False).numpy()), atol=1e-5)
