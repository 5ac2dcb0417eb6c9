"""StackGanTirgTask: StackGAN Stage-I conditioned on a frozen TIRG's composed (source image, modification) feature."""

import numpy as np
import pytest
import tensorflow as tf

from configs import stackgan_tirg as cfg
from configs import tirg as tirg_cfg
from t2i_tf.data import css
from t2i_tf.errors import UserError
from t2i_tf.tasks.stackgan_tirg import StackGanTirgTask
from t2i_tf.tasks.tirg import TirgTask
from t2i_tf.train.trainer import Trainer
from tests.conftest import fit_task


@pytest.fixture(scope="module")
def trained(tiny_css, trained_tirg, tmp_path_factory):
    _, records = tiny_css
    workdir = str(tmp_path_factory.mktemp("stackgan_tirg"))
    task = StackGanTirgTask(dict(cfg.TEST, data_dir=records, tirg_workdir=trained_tirg))
    metrics = fit_task(task, workdir)
    return task, workdir, metrics


def test_trains_the_gan_and_leaves_tirg_frozen(trained, tiny_css, trained_tirg):
    task, _, metrics = trained
    assert int(task.g_optimizer.iterations.numpy()) == 2 == int(task.d_optimizer.iterations.numpy())
    assert set(task.checkpoint_items()) == {"generator", "discriminator", "g_optimizer", "d_optimizer", "rng"}
    assert task.image_size == 16 and task.records_size == 32  # targets area-averaged to the generator's size
    fresh = TirgTask(dict(tirg_cfg.TEST, data_dir=tiny_css[1]))
    Trainer(fresh, trained_tirg, num_iters=0, strategy="default", verbose=False).restore()
    for a, b in zip(task.tirg.model.weights, fresh.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_condition_is_the_composed_query_and_depends_on_the_text(trained):
    task, _, _ = trained
    batch = task._query_batch(task.eval_split, np.arange(4))
    cond = task.condition(batch).numpy()
    assert cond.shape == (4, task.cond_dim)
    other = dict(batch, tokens=task.tirg.tokenizer(tf.constant(["remove top-left object"] * 4)))
    assert not np.allclose(cond, task.condition(other).numpy())


def test_eval_batches_score_the_target_scene(trained, tiny_css):
    task, _, _ = trained
    _, records = tiny_css
    queries = css.read_queries(records, "test")
    cells = css.read_scene_cells(records, "test")
    (batch,) = list(task.eval_batches(num_images=6, batch_size=6))
    np.testing.assert_array_equal(batch["scene_cells"].numpy(), cells[queries["target_id"][:6]])
    assert batch["image"].shape == (6, 16, 16, 3)
    images = task.generate_images(batch, (0, 0))
    assert images.shape == (6, 16, 16, 3)
    np.testing.assert_array_equal(images.numpy(), task.generate_images(batch, (0, 0)).numpy())


def test_export_generates_what_the_task_generates(trained, tiny_css, tmp_path):
    task, _, _ = trained
    raw, _ = tiny_css
    from PIL import Image

    source = np.asarray(Image.open(f"{raw}/images/css_test_000000.png").convert("RGB"))
    texts = ["make top-left circle red", "remove middle-center object"]
    sheet = task.generate(texts, num_samples=1, seed=5, source_image=source)["images"]  # rows: [source, sample]
    task.export(str(tmp_path / "export"))
    out = tf.saved_model.load(str(tmp_path / "export")).signatures["generate"](
        image=tf.constant(np.stack([source, source])), text=tf.constant(texts), seed=tf.constant(5, tf.int64))
    np.testing.assert_array_equal(out["images"].numpy(), sheet[:, 1])


def test_needs_css_records_and_a_tirg_run(trained, captioned_css, tiny_css, tmp_path):
    task, _, _ = trained
    with pytest.raises(UserError, match="needs converted CSS records"):
        StackGanTirgTask(dict(cfg.TEST, data_dir=captioned_css[16], tirg_workdir=task.config["tirg_workdir"])).prepare(
            str(tmp_path / "a"))
    with pytest.raises(UserError, match="has no trained TIRG run"):
        StackGanTirgTask(dict(cfg.TEST, data_dir=tiny_css[1], tirg_workdir=str(tmp_path / "none"))).prepare(
            str(tmp_path / "b"))
    with pytest.raises(UserError, match="--model=stackgan_tirg has no setting 'text_encoder'"):
        StackGanTirgTask(dict(cfg.TEST, data_dir=tiny_css[1], text_encoder="bilstm"))
