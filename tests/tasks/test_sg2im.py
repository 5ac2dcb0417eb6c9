"""Sg2ImTask: training through the Trainer lowers the box loss, the text-ignoring eval graphs, generation from JSON
graphs and captions with clear errors, the CLI, and the SavedModel in a fresh process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from configs import sg2im as cfg
from t2i_tf.data import scene_graph as sg
from t2i_tf.errors import UserError
from t2i_tf.tasks.sg2im import Sg2ImTask
from tests.cli_runner import run_cli
from tests.conftest import fit_task


def make_task(data_dir, workdir, **overrides):
    task = Sg2ImTask(dict(cfg.TEST, data_dir=data_dir, seed=0, **overrides))
    task.prepare(str(workdir))
    task.build(tf.distribute.get_strategy())
    return task


def _box_loss(task, batch):
    out = task.predict(batch["objects"], batch["triples"], None)
    real = (batch["objects"] > 0).numpy()
    return float(np.mean(np.square(out["boxes"].numpy() - batch["boxes"].numpy()).mean(-1)[real]))


@pytest.fixture(scope="module")
def trained(captioned_css, tmp_path_factory):
    """(task, workdir, box loss before, after, eval metrics): 40 Trainer steps of the test preset (lr 1e-2)."""
    workdir = tmp_path_factory.mktemp("sg2im")
    task = Sg2ImTask(dict(cfg.TEST, data_dir=captioned_css[16], seed=0, learning_rate=1e-2, eval_images=24))
    task.prepare(str(workdir))
    task.build(tf.distribute.get_strategy())
    batch = next(task.eval_batches(16, 16))
    before = _box_loss(task, batch)
    metrics = fit_task(task, workdir, num_iters=40, steps_per_loop=40, log_every=40)
    return task, workdir, before, _box_loss(task, batch), metrics


def test_training_through_the_trainer_lowers_the_box_loss(trained):
    task, _, before, after, metrics = trained
    assert int(task.g_optimizer.iterations.numpy()) == 40
    assert int(task.d_obj_optimizer.iterations.numpy()) == 40 and int(task.d_img_optimizer.iterations.numpy()) == 40
    assert after < 0.5 * before, (before, after)
    assert {"eval/box_iou", "eval/box_iou50", "eval/box_cell_accuracy", "eval/pixel_l1"} <= set(metrics)
    assert metrics["eval/objects"] > 0 and 0.0 <= metrics["eval/box_iou50"] <= 100.0


def test_a_restored_run_draws_what_the_trained_one_draws(trained):
    """Everything inference uses is in the checkpoint (BatchNorm moving statistics included)."""
    from t2i_tf.runs.restore import restore_task

    task, workdir = trained[0], trained[1]
    restored, step = restore_task("sg2im", str(workdir), strategy=tf.distribute.get_strategy())
    assert step == 40
    moving = [w for w in task.generator.weights if "moving_mean" in w.path]
    assert moving and all(np.abs(w.numpy()).max() > 0 for w in moving)  # updated by training
    caption = ["a large red circle at the top left and a small blue triangle in the center"]
    np.testing.assert_array_equal(restored.generate(caption, 2, seed=1)["images"],
                                  task.generate(caption, 2, seed=1)["images"])


def test_triple_dropout_turns_places_into_in_image_and_drops_relations(trained):
    task = trained[0]
    batch = next(task.eval_batches(16, 16))
    task.config["triple_dropout"] = 0.5
    try:
        out = task.drop_triples(batch, tf.constant([3, 4], tf.int64))["triples"].numpy()
    finally:
        task.config["triple_dropout"] = cfg.TEST["triple_dropout"]
    before = batch["triples"].numpy()
    place = (before[..., 0] >= 0) & (before[..., 2] == 0)
    pair = (before[..., 0] >= 0) & (before[..., 2] > 0)
    # A place triple keeps its ends and may only become __in_image__; a relation stays or becomes a -1 row.
    np.testing.assert_array_equal(out[place][:, [0, 2]], before[place][:, [0, 2]])
    assert set(out[place][:, 1][out[place][:, 1] != before[place][:, 1]]) == {0}
    changed = (out[pair] != before[pair]).any(axis=1)
    assert (out[pair][changed] == -1).all()
    for kind in (place, pair):
        rate = (out[kind] != before[kind]).any(axis=1).mean()
        assert 0.3 < rate < 0.7, rate
    assert (out[before[..., 0] < 0] == -1).all()  # padding stays padding


def test_eval_graphs_true_shuffled_and_empty(trained):
    task = trained[0]
    batch = next(task.eval_batches(16, 16))
    task.config["eval_graph"] = "shuffled"
    try:
        objects, triples = task.eval_graphs(batch, seed=0)
        cells = batch["scene_cells"].numpy()
        for k in range(16):  # another record's graph whose scene differs in >= 2 cells (or the empty graph)
            match = [j for j in range(16) if np.array_equal(objects[k], batch["objects"][j])
                     and np.array_equal(triples[k], batch["triples"][j])]
            if match:
                assert (cells[k] != cells[match[0]]).sum() >= 2
            else:
                assert objects[k].numpy().tolist() == [1] + [0] * (objects.shape[1] - 1)
        task.config["eval_graph"] = "empty"
        objects, triples = task.eval_graphs(batch, seed=0)
        assert (objects.numpy()[:, 1:] == 0).all() and (triples.numpy() == -1).all()
        assert task.generate_images(batch, (0, 0)).shape == (16, 16, 16, 3)
    finally:
        task.config["eval_graph"] = "true"


def test_generate_from_json_graphs_and_captions_with_clear_errors(trained, tmp_path):
    task = trained[0]
    path = tmp_path / "graph.json"
    path.write_text(json.dumps({"objects": ["large red circle", "small blue triangle"],
                                "relationships": [[0, "left of", 1], [0, "at top left", "image"]]}))
    out = task.generate([str(path), "a large red circle at the top left and a small blue triangle in the center"],
                        num_samples=2, seed=3)
    assert out["images"].shape == (2, 2, 16, 16, 3) and out["images"].dtype == np.uint8
    assert out["boxes"].shape[:3] == (2, 2, 3)
    again = task.generate([str(path)], num_samples=2, seed=3)["images"]
    np.testing.assert_array_equal(again[0], out["images"][0])
    assert task.generate(None, num_samples=1)["images"].shape[:2] == (4, 1)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"objects": ["large red circle"], "relationships": [[0, "left of", 5]]}))
    for text, words in ((str(bad), "not an object index"), ('{"objects": ["purple cat"]}', "unknown object"),
                        ("a cat sat on the mat", "not a CSS scene caption")):
        with pytest.raises(UserError, match=words):
            task.generate([text], num_samples=1)


def test_cli_generate_writes_a_sheet_and_a_bad_graph_is_one_line(captioned_css, tmp_path):
    workdir = str(tmp_path / "run")
    run_cli("--model=sg2im", "--preset=test", f"--data_dir={captioned_css[16]}", f"--workdir={workdir}")
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps({"objects": ["small green rectangle"], "relationships": []}))
    sheet = str(tmp_path / "sheet.png")
    result = run_cli("--model=sg2im", f"--workdir={workdir}", "--mode=generate", f"--text={graph}|a small red circle "
                     "in the center", f"--output={sheet}")
    assert os.path.isfile(sheet) and json.loads(result.stdout.strip().splitlines()[-1])["images"][:2] == [2, 4]
    graph.write_text(json.dumps({"objects": ["small green rectangle"] * 12}))
    result = run_cli("--model=sg2im", f"--workdir={workdir}", "--mode=generate", f"--text={graph}", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {graph}: 12 objects, at most 9 are allowed"]


SERVE = r"""
import json, sys
import numpy as np
import tensorflow as tf
path = sys.argv[1]
desc = json.load(open(path + "/t2i_export.json"))
ids = {n: i + 1 for i, n in enumerate(desc["object_names"])}
pred = {p: i for i, p in enumerate(desc["predicates"])}
m = tf.saved_model.load(path)
objects = tf.constant([[1, ids["large red circle"], ids["small blue triangle"]], [1, ids["small green circle"], 0]])
triples = tf.constant([[[1, pred["left of"], 2], [1, pred["at top left"], 0], [2, pred["at top"], 0]],
                       [[1, pred["in the center"], 0], [-1, -1, -1], [-1, -1, -1]]])
a = m.signatures["generate"](objects=objects, triples=triples, seed=tf.constant(7, tf.int64))
b = m.generate(objects, triples, tf.constant(7, tf.int64))
c = m.generate(objects, triples, tf.constant(8, tf.int64))
print("RESULT " + json.dumps(dict(shape=list(a["images"].shape), dtype=a["images"].dtype.name,
                                  boxes=list(a["boxes"].shape),
                                  same_seed=bool((a["images"] == b["images"]).numpy().all()),
                                  other_seed=bool((a["images"] != c["images"]).numpy().any()))))
"""


def test_export_loads_in_a_fresh_process_and_generates(trained, tmp_path):
    task = trained[0]
    export = str(tmp_path / "export")
    desc = task.export(export)
    assert list(desc["signatures"]) == ["generate"] and desc["object_names"][0] == "__image__"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", SERVE, export], capture_output=True, text=True, timeout=300,
                          cwd=str(tmp_path), env=dict(env, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result == dict(shape=[2, 16, 16, 3], dtype="uint8", boxes=[2, 3, 4], same_seed=True, other_seed=True)
    # The export draws what the task draws for the same graphs and seed.
    objects, triples = sg.pad_graphs([sg.read_graph("a small green circle in the center")])
    mine = task.generate(["a small green circle in the center"], num_samples=1, seed=7)["images"][0, 0]
    module = tf.saved_model.load(export)  # kept: the loaded function needs its variables alive
    loaded = module.generate(tf.constant(objects), tf.constant(triples), tf.constant(7, tf.int64))
    np.testing.assert_array_equal(loaded["images"][0].numpy(), mine)


def test_settings_that_cannot_work_are_refused_in_one_line(captioned_css, tmp_path):
    for overrides, words in ((dict(d_obj_arch="C4-64-2,C4-128-2,C4-256-2"), "shrinks a --crop_size 8 input"),
                             (dict(d_img_arch="X3"), "is not C<kernel>"), (dict(refinement_dims="8,8,8,8,8"),
                                                                           "divisible by 2\\^5"),
                             (dict(mask_size=6), "power of 2")):
        task = Sg2ImTask(dict(cfg.TEST, data_dir=captioned_css[16], **overrides))
        with pytest.raises(UserError, match=words) as e:
            task.prepare(str(tmp_path))
        assert "\n" not in str(e.value)


def test_generator_eval_reports_the_layout_accuracy(trained):
    """--mode=eval of sg2im adds the layout accuracy of training's eval (as fractions) to the generator metrics."""
    from t2i_tf.eval.generator_eval import EvalOptions, evaluate_generator

    task, _, _, _, metrics = trained
    scores, protocol = evaluate_generator(task, EvalOptions(num_images=24, batch_size=8, seed=0))
    assert "layout" in protocol and scores["layout_objects"] == metrics["eval/objects"]
    for key in ("box_iou", "box_iou50", "box_cell_accuracy", "reference_box_cell_accuracy"):
        assert scores[f"layout_{key}"] == pytest.approx(metrics[f"eval/{key}"] / 100.0, abs=1e-6), key
