"""MultiWorkerMirroredStrategy through the Trainer: two worker processes on localhost.

The two workers must end with the same weights, equal (up to float reduction order) to a 2-replica
MirroredStrategy run on one machine (each TIRG input pipeline draws the same batches in both layouts), and
only the chief may write the run: one set of checkpoints, one TensorBoard file, one metrics line per
evaluation, no scratch directory left behind. A second launch resumes from the chief's checkpoint.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from tests.conftest import REPO_ROOT

RUNNER = os.path.join(REPO_ROOT, "tests", "train", "multi_worker_run.py")
ENV = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def result_of(proc_output):
    lines = [line for line in proc_output.splitlines() if line.startswith("RESULT ")]
    assert lines, proc_output[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def run_cluster(model, records, workdir, num_iters, out_dir):
    ports = ",".join(map(str, free_ports(2)))
    procs = [subprocess.Popen([sys.executable, RUNNER, "worker", str(i), ports, model, records, workdir, str(num_iters),
                               os.path.join(out_dir, f"worker{i}.npz")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=ENV)
             for i in range(2)]
    outputs = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, stderr[-3000:]
        outputs.append(stdout)
    return outputs, [weights(os.path.join(out_dir, f"worker{i}.npz")) for i in range(2)]


def weights(path, which="final"):
    """The model's weights saved by multi_worker_run.py, read now (a later run overwrites the file)."""
    with np.load(path) as npz:
        return [npz[f"{which}_{i}"] for i in range(sum(k.startswith(which) for k in npz.files))]


def test_two_workers_train_in_sync_and_only_the_chief_writes(tiny_css, tmp_path):
    _, records = tiny_css
    workdir = str(tmp_path / "run")
    # The reference: the same run as a 2-replica MirroredStrategy on one machine (started alongside the cluster).
    mirrored = subprocess.Popen([sys.executable, RUNNER, "mirrored", "tirg", records, str(tmp_path / "mirrored"), "4",
                                 str(tmp_path / "mirrored.npz")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=REPO_ROOT, env=ENV)
    try:
        outputs, (w0, w1) = run_cluster("tirg", records, workdir, 4, str(tmp_path))
        _, mirrored_stderr = mirrored.communicate(timeout=600)
    finally:
        mirrored.kill()
    assert mirrored.returncode == 0, mirrored_stderr[-3000:]
    r0, r1 = result_of(outputs[0]), result_of(outputs[1])
    assert (r0["is_chief"], r1["is_chief"]) == (True, False)
    assert r0["replicas"] == r1["replicas"] == 2 and r0["step"] == r1["step"] == 4
    assert r0["metrics"] and r1["metrics"] == {}  # the chief evaluates
    assert "training tirg from step 0 to 4 (2 replica(s)" in outputs[0] and "training" not in outputs[1]

    # In sync: bit-identical weights on both workers.
    assert len(w0) > 10
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)

    # Equal to the MirroredStrategy run.
    reference, initial = weights(tmp_path / "mirrored.npz"), weights(tmp_path / "mirrored.npz", "initial")
    for a, b in zip(initial, weights(tmp_path / "worker0.npz", "initial")):
        np.testing.assert_array_equal(a, b)  # the same start
    moved = max(np.max(np.abs(a - b)) for a, b in zip(reference, initial))
    gap = max(np.max(np.abs(a - b)) for a, b in zip(reference, w0))
    assert moved > 1e-3  # training changed the weights
    assert gap < 1e-4 * moved, (gap, moved)  # measured: 0.0 (bit-identical), moved 2.7

    # Only the chief wrote the run.
    assert sorted(os.listdir(workdir)) == ["checkpoints", "config.json", "eval", "metrics.jsonl", "train", "vocab.txt"]
    assert len(os.listdir(os.path.join(workdir, "train"))) == 1
    assert len(os.listdir(os.path.join(workdir, "eval"))) == 1
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        assert [json.loads(line)["step"] for line in f] == [2, 4]
    ckpts = sorted(n for n in os.listdir(os.path.join(workdir, "checkpoints")) if n.endswith(".index"))
    assert ckpts == ["ckpt-2.index", "ckpt-4.index"]

    # A second launch: both workers resume from the chief's step-4 checkpoint.
    os.makedirs(tmp_path / "resumed")
    outputs, (v0, v1) = run_cluster("tirg", records, workdir, 6, str(tmp_path / "resumed"))
    assert "resumed from" in outputs[0] and "at step 4" in outputs[0]
    assert result_of(outputs[0])["step"] == result_of(outputs[1])["step"] == 6
    for a, b in zip(v0, v1):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(v0, w0))
    assert not any(n.startswith(".worker") for n in os.listdir(workdir))


def test_a_wgan_with_weight_clipping_trains_in_sync_on_two_workers(tmp_path):
    """GAN-CLS as a WGAN: several critic steps per generator step, clipping through a synchronised update."""
    from t2i_tf.datasets.css.captions import convert_css_captions
    from t2i_tf.datasets.css.generate import generate_css

    raw, records = str(tmp_path / "raw"), str(tmp_path / "records")
    generate_css(raw, seed=2, num_base_scenes=4, edits_per_scene=3, image_size=16)
    convert_css_captions(raw, records, image_size=16)
    workdir = str(tmp_path / "run")
    outputs, (w0, w1) = run_cluster("gan_cls:wgan", records, workdir, 2, str(tmp_path))
    assert [result_of(o)["is_chief"] for o in outputs] == [True, False]
    initial = weights(os.path.join(tmp_path, "worker0.npz"), "initial")
    assert len(w0) > 10 and any(not np.array_equal(a, b) for a, b in zip(w0, initial))
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    assert not any(n.startswith(".worker") for n in os.listdir(workdir))
    assert len(os.listdir(os.path.join(workdir, "train"))) == 1
