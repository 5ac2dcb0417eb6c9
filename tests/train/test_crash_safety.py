"""Crash safety: a tiny TIRG run killed with SIGKILL at several moments (during steps, in the middle of a checkpoint
save, in the middle of an evaluation and of its metrics line), its newest checkpoint corrupted in between, ends with
exactly the weights and metrics of an uninterrupted run with the same seed (tests/train/crash_run.py)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from t2i_tf.train.checkpoints import checkpoint_prefixes
from tests.train.crash_run import SCHEDULE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def _start(workdir, data_dir, kill=None):
    cmd = [sys.executable, "-m", "tests.train.crash_run", str(workdir), data_dir] + ([f"--kill={kill}"] if kill else [])
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(workdir, data_dir, kill=None):
    p = _start(workdir, data_dir, kill)
    out, err = p.communicate(timeout=300)
    return p.returncode, out, err


def _weights(workdir):
    prefix = checkpoint_prefixes(os.path.join(workdir, "checkpoints"))[0]
    reader = tf.train.load_checkpoint(prefix)
    names = [n for n, _ in tf.train.list_variables(prefix) if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    # save_counter counts this run's save() calls, killed ones included: not training state.
    return prefix, {n: reader.get_tensor(n) for n in names if not n.startswith("save_counter")}


def _metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        lines = f.read().splitlines()
    records = [json.loads(line) for line in lines]  # every line whole: nothing torn left behind
    return {r["step"]: r for r in records}  # the last record of each step


def test_killed_and_corrupted_runs_resume_to_the_uninterrupted_weights(tiny_css, tmp_path):
    data_dir = tiny_css[1]
    ref_dir, run = tmp_path / "uninterrupted", tmp_path / "killed"
    reference = _start(ref_dir, data_dir)  # alongside the killed run: two cores

    # 1. SIGKILL from outside during the steps, once step 5 has been reported (checkpoints 2 and 4 are written).
    p = _start(run, data_dir)
    for line in p.stdout:
        if line.startswith("step 5/"):
            p.send_signal(signal.SIGKILL)
            break
    p.communicate(timeout=120)
    assert p.returncode == -signal.SIGKILL
    prefixes = checkpoint_prefixes(str(run / "checkpoints"))
    assert len(prefixes) >= 2, prefixes

    # 2. The newest checkpoint gets a flipped byte: the next run falls back to the previous one, saying so.
    index = Path(prefixes[0] + ".index")
    raw = bytearray(index.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    index.write_bytes(bytes(raw))
    #    ... and is killed in the middle of its first checkpoint save (variables written, not merged).
    code, out, err = _run(run, data_dir, kill="save_before_merge")
    assert code == -signal.SIGKILL, err[-2000:]
    assert f"checkpoint {prefixes[0]} cannot be read" in err
    assert f"resumed from {prefixes[1]} at step {int(prefixes[1].rsplit('-', 1)[1])}" in out
    partial = [n for n in os.listdir(run / "checkpoints") if "_temp" in n]
    assert partial, "the kill did not land inside a save"

    # 3. The next run removes the partial save, and is killed inside its first evaluation, with half of the
    #    metrics line written.
    code, out, err = _run(run, data_dir, kill="eval_torn_line")
    assert code == -signal.SIGKILL, err[-2000:]
    assert f"removed {run / 'checkpoints' / partial[0]}, left by a save that did not finish" in err
    killed_eval = int(out.split("killing in the evaluation at step ")[1].split()[0])
    assert not (run / "metrics.jsonl").read_text().endswith("\n")

    # 4. The last run drops the torn line, evaluates the interrupted step again and trains to the end.
    code, out, err = _run(run, data_dir)
    assert code == 0, err[-2000:]
    assert "dropped an unfinished last line" in err
    assert f"the evaluation at step {killed_eval} did not finish: evaluating again" in out

    reference.communicate(timeout=300)
    assert reference.returncode == 0
    ref_prefix, ref_weights = _weights(ref_dir)
    prefix, weights = _weights(run)
    assert os.path.basename(prefix) == os.path.basename(ref_prefix) == f"ckpt-{SCHEDULE['num_iters']}"
    assert weights.keys() == ref_weights.keys()
    assert any(n.startswith("keras_rng/") for n in weights)  # the text encoder's dropout state is saved
    for name in weights:
        np.testing.assert_array_equal(weights[name], ref_weights[name], err_msg=name)
    ref_metrics, metrics = _metrics(ref_dir), _metrics(run)
    assert sorted(metrics) == sorted(ref_metrics) == [4, 8, 12]
    assert metrics == ref_metrics
