"""StackGanTirgTask: StackGAN Stage-I conditioned on a frozen TIRG's composed (source image, modification) feature."""

import numpy as np
import pytest
import tensorflow as tf

from configs import stackgan_tirg as cfg
from configs import tirg as tirg_cfg
from t2i_tf.data import css
from t2i_tf.errors import UserError
from t2i_tf.eval.css_semantic import semantic_scores
from t2i_tf.eval.generator_eval import EvalOptions, evaluate_generator
from t2i_tf.runs.config import save_run_config
from t2i_tf.tasks.conditioners import TirgConditioner
from t2i_tf.tasks.stackgan_tirg import (
    StackGanTirgTask,
    TirgSourceConditioner,
    edit_l1,
    edit_scores,
)
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
    task, _, _ = trained
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


def test_presets_cpu_reads_the_source_paper_does_not():
    assert cfg.CPU["source_skip"] is True and cfg.TEST["source_skip"] is True
    assert cfg.PAPER["source_skip"] is False


def test_source_skip_packs_the_source_into_the_condition_and_the_images_follow_it(trained):
    task, _, _ = trained
    assert task.source_skip and isinstance(task.conditioner, TirgSourceConditioner)
    batch = task._query_batch(task.eval_split, np.arange(4))
    cond = task.condition(batch)
    feature, source = task.conditioner.split(cond)
    np.testing.assert_allclose(feature.numpy(), task.tirg.model.compose(batch["source"], batch["tokens"]).numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(source.numpy(), tf.image.resize(batch["source"], [16, 16], method="area").numpy(),
                               atol=1e-6)
    # D is conditioned on the composed feature alone (its CA mean), not on the packed source pixels.
    np.testing.assert_allclose(task.d_condition(cond).numpy(), task.generator.ca(feature)[1].numpy(), atol=1e-6)
    a = task.generate_images(batch, (0, 0)).numpy()
    flipped = dict(batch, source=batch["source"][:, ::-1])  # another source, the same texts and noise
    b = task.generate_images(flipped, (0, 0)).numpy()
    assert np.abs(a - b).mean() > 1e-3 * np.abs(a).mean()


def test_edit_scores_on_hand_made_cells():
    source = np.array([[5, 0, 0, 0, 0, 0, 0, 0, 0], [0, 7, 0, 0, 0, 0, 0, 0, 3]])
    target = np.array([[9, 0, 0, 0, 0, 0, 0, 0, 0], [0, 7, 0, 0, 0, 0, 0, 0, 0]])  # recolour cell 0; remove cell 8
    pred = np.array([[9, 0, 0, 0, 0, 0, 0, 0, 0], [0, 7, 0, 0, 0, 0, 0, 0, 3]])  # first edit done, removal not
    out = edit_scores(pred, source, target)
    assert out["edited_cells"] == 2 and out["edited_cell_accuracy"] == 0.5 and out["kept_cell_accuracy"] == 1.0
    # Edited cells: one target object (cell 0), two predicted (cells 0 and 8), one right.
    assert out["edited_object_precision"] == 0.5 and out["edited_object_recall"] == 1.0
    assert out["edited_object_f1"] == pytest.approx(2 / 3)
    copy = edit_scores(source, source, target)  # copying the source edits nothing
    assert copy["edited_cell_accuracy"] == 0.0 and copy["edited_object_f1"] == 0.0 and copy["kept_cell_accuracy"] == 1
    with pytest.raises(ValueError, match="alike"):
        edit_scores(pred[:1], source, target)


def test_generator_eval_reports_the_copy_the_source_reference(trained, tiny_css):
    task, _, _ = trained
    _, records = tiny_css
    metrics, protocol = evaluate_generator(task, EvalOptions(num_images=10, batch_size=4))
    assert protocol["source_skip"] is True and "css_reference_source" in protocol
    assert metrics["num_images"] == 10 and "r_precision" in metrics
    # Directly from the records: the source scenes of the first 10 queries with target cells, vs their targets.
    q, cells = css.read_queries(records, "test"), css.read_scene_cells(records, "test")
    idx = np.nonzero((cells[q["target_id"]] >= 0).all(axis=1))[0][:10]
    src, dst = cells[q["source_id"][idx]], cells[q["target_id"][idx]]
    known = (src >= 0).all(axis=1)
    direct = semantic_scores(src[known], dst[known])
    for key in ("object_f1", "cell_accuracy", "scene_accuracy"):
        assert metrics[f"css_reference_source_{key}"] == pytest.approx(direct[key])
    assert metrics["css_edited_cells"] == (src[known] != dst[known]).sum() > 0
    assert metrics["css_reference_source_edited_cell_accuracy"] == 0.0
    assert metrics["css_reference_source_object_f1"] < 1.0  # the edits change the scene
    # The classifier-cells hook: a copy of the source edits nothing and keeps everything; the target does both.
    copy, _ = task.css_metrics(src, dst)
    assert copy["css_edited_cell_accuracy"] == 0.0 and copy["css_kept_cell_accuracy"] == 1.0
    perfect, _ = task.css_metrics(dst, dst)
    assert perfect["css_edited_cell_accuracy"] == 1.0 == perfect["css_edited_object_f1"]
    half = np.where(np.arange(10)[:, None] < 5, dst, src)  # the first 5 queries edited, the rest copied
    edited = src != dst
    expect = (edited[:5].sum()) / edited.sum()
    assert task.css_metrics(half, dst)[0]["css_edited_cell_accuracy"] == pytest.approx(expect)


def test_a_run_saved_before_source_skip_restores_the_plain_generator(trained, tmp_path):
    task, _, _ = trained
    old = {k: v for k, v in task.run_config().items() if k != "source_skip"}
    save_run_config(str(tmp_path), "stackgan_tirg", old)
    plain = StackGanTirgTask(dict(task.config))
    plain.prepare(str(tmp_path))
    assert plain.config["source_skip"] is False and type(plain.conditioner) is TirgConditioner
    fresh = StackGanTirgTask(dict(task.config))
    fresh.prepare(str(tmp_path / "new"))
    assert fresh.source_skip and fresh.cond_dim == plain.cond_dim + 16 * 16 * 3


def test_edit_l1_averages_over_the_edited_pixels_only():
    source = np.zeros([2, 4, 4, 3], np.float32)
    target = source.copy()
    target[0, :2, :2, 1] = 1.0  # example 0 edits a 2 x 2 patch (one channel); example 1 edits nothing
    fake = target.copy()
    fake[0, :2, :2, :] += 0.5  # wrong by 0.5 in all 3 channels on the edit ...
    fake[:, 3, 3, :] = -1.0  # ... and far off on an unedited pixel, which edit_l1 ignores
    out = edit_l1(tf.constant(fake), tf.constant(target), tf.constant(source)).numpy()
    np.testing.assert_allclose(out, [0.5, 0.0], atol=1e-6)
