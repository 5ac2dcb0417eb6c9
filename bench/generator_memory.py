"""Where a generator run's memory goes: peak RSS of each piece of an AttnGAN / StackGAN run, one process per piece.

Each piece runs in a fresh process that first restores the run in ``--workdir`` (its own config, ``--batch_size``
overriding the training batch) and then resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), so the
piece's number is its own high-water mark above what the restored task holds:

- ``restore``: RSS after the restore (weights, optimizer slots, the EMA copy, frozen encoders; the parameter
  counts are printed with it); ``generate`` and ``evaluate`` restore without the optimizer slots, as
  ``--mode=eval|generate|export`` do;
- ``data``: the training input pipeline (decode, crop, shuffle and prefetch buffers), 5 batches;
- ``step``: one compiled training step (``tf.function`` under the strategy, as the Trainer), traced and run twice;
- ``generate``: the sampling generator on a batch of captions, eagerly (what --mode=eval and the samples call);
- ``summaries``: the TensorBoard samples the Trainer writes at every log step;
- ``evaluate``: the closing evaluation of a training run (``task.evaluate``).

    python bench/generator_memory.py --workdir=RUN --batch_sizes=1,2,4,8 --pieces=step,data
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PIECES = ("restore", "data", "step", "generate", "summaries", "evaluate")
TRAINING_PIECES = ("restore", "data", "step", "summaries")


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak() -> None:
    """Set the process's VmHWM to its current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _param_mib(variables) -> float:
    import numpy as np

    return sum(int(np.prod(v.shape)) * np.dtype(str(v.dtype).replace("tf.", "")).itemsize for v in variables) / 2**20


def measure(model: str, workdir: str, piece: str, batch_size: int) -> dict:
    """One piece's numbers, in this process."""
    import tensorflow as tf

    from t2i_tf.runs.restore import restore_task

    overrides = {"batch_size": batch_size} if batch_size else {}
    # The training pieces start from the training state (optimizer slots included), the others from what
    # --mode=eval|generate|export restore (no optimizer state).
    task, step = restore_task(model, workdir, with_optimizers=piece in TRAINING_PIECES, **overrides)
    out = {"piece": piece, "batch": batch_size, "rss_after_restore": round(_status_mib("VmRSS")),
           "peak_during_restore": round(_status_mib("VmHWM"))}
    if piece == "restore":
        groups = {name: getattr(item, "variables", []) for name, item in task.checkpoint_items().items()
                  if hasattr(item, "variables")}
        if hasattr(task, "damsm"):
            groups["damsm (frozen)"] = task.damsm.image_encoder.variables + task.damsm.text_encoder.variables
        out["weights_mib"] = {k: round(_param_mib(v), 1) for k, v in groups.items()}
        return out
    n = int(batch_size or task.config["batch_size"])
    _reset_peak()
    base = _status_mib("VmRSS")
    t0 = time.perf_counter()
    if piece == "data":
        ds = task.train_dataset(tf.distribute.InputContext(), seed=0)
        it = iter(ds)
        for _ in range(5):
            next(it)
    elif piece == "step":
        ds = task.train_dataset(tf.distribute.InputContext(), seed=0)
        batch = next(iter(ds))
        strategy = task.strategy

        @tf.function
        def one_step(b):
            return strategy.run(task.train_step, args=(b,))

        for _ in range(2):
            {k: float(strategy.reduce("MEAN", v, axis=None)) for k, v in one_step(batch).items()}
    elif piece == "generate":
        batch = next(iter(task.eval_batches(n, n)))
        images = task.generate_images(batch, (0, 0)).numpy()
        out["images_sum"] = float(images.astype("float64").sum())
    elif piece == "summaries":
        writer = tf.summary.create_file_writer(os.path.join(workdir, "memory_bench_summaries"))
        with writer.as_default(step=step):
            task.summaries(step)
        writer.close()
    elif piece == "evaluate":
        out["metrics"] = task.evaluate(step)
    out.update(rss_before=round(base), peak=round(_status_mib("VmHWM")), increase=round(_status_mib("VmHWM") - base),
               seconds=round(time.perf_counter() - t0, 1))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", required=True, help="a trained run (e.g. bench/peak_memory.py --keep's)")
    p.add_argument("--model", default="attngan")
    p.add_argument("--pieces", default=",".join(PIECES))
    p.add_argument("--batch_sizes", default="0", help="training batches to try (0: the run's own)")
    p.add_argument("--one", nargs=2, metavar=("PIECE", "BATCH"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print("RESULT " + json.dumps(measure(a.model, a.workdir, a.one[0], int(a.one[1]))), flush=True)
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| piece | batch | RSS after restore MiB | piece's peak MiB | increase MiB | s |")
    print("|---|---|---|---|---|---|")
    for piece in a.pieces.split(","):
        for b in (int(x) for x in a.batch_sizes.split(",")):
            r = subprocess.run([sys.executable, os.path.abspath(__file__), f"--workdir={a.workdir}",
                                f"--model={a.model}", "--one", piece, str(b)], check=False, capture_output=True,
                               text=True, env=env, cwd=ROOT)
            lines = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
            if not lines:
                print(f"| {piece} | {b} | failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]} |||", flush=True)
                continue
            res = json.loads(lines[-1][7:])
            if piece == "restore":
                print(f"| restore | {b} | {res['rss_after_restore']} | {res['peak_during_restore']} | "
                      f"weights MiB {res['weights_mib']} | |", flush=True)
            else:
                print(f"| {piece} | {b} | {res['rss_before']} | {res['peak']} | {res['increase']} | {res['seconds']} |",
                      flush=True)
                if "metrics" in res:
                    print(f"    metrics: {res['metrics']}", flush=True)


if __name__ == "__main__":
    main()
