"""GenevaTask: end-to-end training through the Trainer, per-turn evaluation with its references and the
turn-by-turn baseline, the CLI, and the edit SavedModel in a fresh process with clear errors."""

import json
import os
import subprocess
import sys
from typing import ClassVar

import numpy as np
import pytest
import tensorflow as tf

from configs import geneva as cfg
from t2i_tf.data import edit_sequences as es
from t2i_tf.datasets.css.edits import write_edit_sequences
from t2i_tf.eval.css_semantic import semantic_scores
from t2i_tf.tasks.geneva import GenevaTask
from tests.cli_runner import run_cli
from tests.conftest import REPO_ROOT, fit_task


class NearestSceneReader:
    """A stand-in CSS classifier: the cells of the nearest true canvas of the records (exact on true canvases)."""

    def __init__(self, data_dir, size):
        bank = next(iter(es.held_out_sequences(data_dir, "test", size, 100, 100)))
        self.images = bank["images"].numpy().reshape(-1, size * size * 3)
        self.cells = bank["cells"].numpy().reshape(-1, 9)

    def predict_cells(self, images):
        x = np.asarray(images).reshape(len(images), -1)
        d = ((x[:, None, :] - self.images[None]) ** 2).sum(-1)
        return self.cells[d.argmin(axis=1)]


@pytest.fixture(scope="module")
def edits(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("geneva_edits"))
    write_edit_sequences(out, seed=4, num_train=24, num_test=6, image_size=16)
    return out


@pytest.fixture(scope="module")
def trained(edits, tmp_path_factory):
    """(task, workdir, L1 to the targets before, after): 30 Trainer steps of the test preset (lr 1e-2)."""
    workdir = str(tmp_path_factory.mktemp("geneva"))
    task = GenevaTask(dict(cfg.TEST, data_dir=edits, seed=0, learning_rate=1e-2, encoder_learning_rate=1e-2,
                           eval_classifier="", baseline_workdir="", eval_images=6, eval_batch_size=6))
    task.prepare(workdir)
    task.build(tf.distribute.get_strategy())
    batch = next(task.eval_sequences())

    def l1():
        drawn = task.draw_sequences(batch, 0)
        return float(np.abs(drawn.numpy() - batch["images"][:, 1:].numpy()).mean(axis=(2, 3, 4))[batch["turn_mask"]].mean())

    before = l1()
    fit_task(task, workdir, num_iters=30, steps_per_loop=30, log_every=30)
    task._classifier = NearestSceneReader(edits, 16)  # after the Trainer's prepare
    return task, workdir, before, l1()


def test_training_through_the_trainer_learns_to_draw_the_canvases(trained):
    task, _, before, after = trained
    for key, (opt, _) in task.optimizers.items():
        assert int(opt.iterations.numpy()) == 30, key
    assert after < 0.6 * before, (before, after)


def test_a_restored_run_draws_what_the_trained_one_draws(trained):
    """Everything drawing uses is in the checkpoint (batch-norm statistics of every block included)."""
    from t2i_tf.runs.restore import restore_task

    task, workdir = trained[0], trained[1]
    restored, step = restore_task("geneva", workdir)
    assert step == 30
    batch = next(task.eval_sequences())
    diff = np.abs(restored.draw_sequences(batch, 5).numpy() - task.draw_sequences(batch, 5).numpy())
    assert diff.max() <= 1 / 127.5 + 1e-6 and diff.mean() < 1e-3  # equal up to a rare uint8 rounding flip


def test_eval_reports_every_turn_with_its_references(trained):
    task, workdir, _, _ = trained
    metrics = task.evaluate(30)
    turns = [f"turn{t}" for t in range(1, es.MAX_TURNS + 1) if f"geneva_turn{t}/object_f1" in metrics]
    assert turns[:3] == ["turn1", "turn2", "turn3"]  # every sequence has >= 3 turns
    for row in ("geneva", "copy_previous", "real"):
        for turn in turns + ["all"]:
            for name in ("object_precision", "object_recall", "object_f1", "rsim", "scene_accuracy", "add_accuracy"):
                assert 0.0 <= metrics[f"{row}_{turn}/{name}"] <= 100.0
    # the reader is near exact on true 16 px canvases (a few small shapes vanish at that size)
    assert all(metrics[f"real_{t}/object_f1"] >= 80.0 for t in turns)
    with open(os.path.join(workdir, "eval", "geneva_metrics_step30.json")) as f:
        saved = json.load(f)
    assert saved["protocol"]["sequences"] == 6 and "stackgan_tirg baseline" in saved["protocol"]["skipped"][0]
    b = next(iter(es.held_out_sequences(task.data_dir, "test", 16, 6, 6)))
    mask = b["turn_mask"].numpy()
    prev = task._classifier.predict_cells(b["images"][:, :-1].numpy().reshape(-1, 16, 16, 3)).reshape(6, -1, 9)
    copy = semantic_scores(prev[mask], b["cells"][:, 1:].numpy()[mask])
    assert metrics["copy_previous_all/object_f1"] == pytest.approx(100 * copy["object_f1"])
    assert metrics["copy_previous_all/object_f1"] < 100.0  # every turn changes the scene
    assert metrics["copy_previous_all/add_accuracy"] == 0.0 and metrics["real_all/add_accuracy"] >= 80.0


class IdentityBaseline:
    """A stackgan_tirg stand-in that redraws its source: turn by turn it must keep the first canvas."""

    records_size = 16
    config: ClassVar[dict] = {"z_dim": 3}
    calls = 0

    class tirg:
        @staticmethod
        def tokenizer(texts):
            return tf.zeros([tf.shape(texts)[0], 4], tf.int64)

    def condition(self, batch):
        IdentityBaseline.calls += 1
        return batch["source"]

    def fake_images(self, z, cond):
        assert z.shape[1] == 3
        return cond


def test_baseline_runs_turn_by_turn_on_its_own_outputs_and_is_cached(trained, tmp_path, monkeypatch):
    task, _, _, _ = trained
    from t2i_tf.runs import restore

    baseline_dir = tmp_path / "stackgan_tirg"
    (baseline_dir / "checkpoints").mkdir(parents=True)
    (baseline_dir / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-7"\n')
    (baseline_dir / "checkpoints" / "ckpt-7.index").write_bytes(b"")
    monkeypatch.setattr(restore, "restore_task", lambda model, path: (IdentityBaseline(), 7))
    monkeypatch.setitem(task.config, "baseline_workdir", str(baseline_dir))
    monkeypatch.setitem(task.config, "eval_classifier", str(tmp_path))
    task._baseline = None
    protocol = {}
    cells = task.baseline_cells(task._classifier, 6, protocol)
    b = next(iter(es.held_out_sequences(task.data_dir, "test", 16, 6, 6)))
    start = b["cells"][:, 0].numpy()
    assert cells.shape == (6, es.MAX_TURNS, 9) and (cells == start[:, None, :]).all()
    assert IdentityBaseline.calls == es.MAX_TURNS and protocol["baseline"]["baseline_step"] == 7
    again = task.baseline_cells(task._classifier, 6, {})
    assert IdentityBaseline.calls == es.MAX_TURNS and (again == cells).all()  # read from the cache


def test_export_edits_in_a_fresh_process_with_clear_errors(trained, tmp_path):
    task = trained[0]
    path = str(tmp_path / "export")
    description = task.export(path)
    assert set(description["signatures"]) == {"edit", "edit_with_state"}
    script = f"""
import json, numpy as np, tensorflow as tf
m = tf.saved_model.load({path!r})
canvas = np.full([2, 40, 40, 3], 255, np.uint8)
a = m.signatures["edit"](image=tf.constant(canvas), text=tf.constant(["add large red circle to top-left",
    "add small blue rectangle to bottom-right"]), seed=tf.constant(3, tf.int64))
b = m.signatures["edit"](image=tf.constant(canvas), text=tf.constant(["add large red circle to top-left",
    "add small blue rectangle to bottom-right"]), seed=tf.constant(3, tf.int64))
c = m.signatures["edit_with_state"](image=a["images"], text=tf.constant(["remove top-left red object", "zzz"]),
    state=a["state"], seed=tf.constant(3, tf.int64))
errors = []
for call in (lambda: m.signatures["edit"](image=tf.constant(canvas), text=tf.constant(["add"]), seed=tf.constant(0, tf.int64)),
             lambda: m.signatures["edit_with_state"](image=tf.constant(canvas), text=tf.constant(["a", "b"]),
                 state=tf.zeros([2, 3]), seed=tf.constant(0, tf.int64))):
    try:
        call()
    except tf.errors.InvalidArgumentError as e:
        errors.append(e.message)
print(json.dumps({{"shape": a["images"].shape.as_list(), "dtype": a["images"].dtype.name,
                  "same": bool((a["images"].numpy() == b["images"].numpy()).all()),
                  "state": a["state"].shape.as_list(), "next": c["images"].shape.as_list(),
                  "known": c["known_words"].numpy().tolist(), "errors": errors}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["shape"] == [2, 16, 16, 3] and got["dtype"] == "uint8" and got["same"]
    assert got["state"] == [2, 8] and got["next"] == [2, 16, 16, 3] and got["known"][1] == 0 and got["known"][0] > 0
    assert "one instruction (text) per image" in got["errors"][0]
    assert "state must be float32 [N, 8]" in got["errors"][1]


def test_cli_refuses_bad_settings_in_one_line(edits, tmp_path):
    out = run_cli("--model=geneva", "--preset=test", f"--data_dir={edits}", f"--workdir={tmp_path / 'w'}",
                  "--generator_dims=16,8", check=False)
    assert out.returncode == 2 and "--generator_dims 16,8 has 1 up blocks" in out.stderr
    out = run_cli("--model=geneva", "--preset=test", f"--data_dir={edits}", f"--workdir={tmp_path / 'w2'}",
                  "--dataset=css", check=False)
    assert out.returncode == 2 and "--dataset must be one of css_edits" in out.stderr
