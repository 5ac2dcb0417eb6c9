"""Shared benchmark helpers: quiet TF, peak RSS, and a Markdown table printer."""

from __future__ import annotations

import os
import resource
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Print rows as a Markdown table."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")


def time_pipeline(task, batches: int) -> float:
    """Batches per second the task's input pipeline alone delivers (after 5 warm-up batches)."""
    import time

    import tensorflow as tf

    it = iter(task.train_dataset(tf.distribute.InputContext(1, 0, 1), 0))
    for _ in range(5):
        next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches / (time.perf_counter() - t)


def time_train_steps(task, steps: int, jit: bool = False, pipeline_batches: int = 200) -> tuple[float, float]:
    """(ms per train step of the Trainer's own tf.function loop after a warm-up, pipeline batches/s)."""
    import tempfile
    import time

    import tensorflow as tf

    from t2i_tf.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as workdir:
        trainer = Trainer(task, workdir, num_iters=steps, strategy="auto", jit_compile=jit, verbose=False)
        trainer.setup()
        pipeline_bps = time_pipeline(task, pipeline_batches)
        iterator = iter(trainer.strategy.distribute_datasets_from_function(lambda ctx: task.train_dataset(ctx, 0)))
        loop = trainer._make_loop()
        n = tf.constant(10, tf.int32)
        sync = lambda metrics: next(iter(metrics.values())).numpy()  # noqa: E731
        sync(loop(iterator, n))  # trace + warm up
        t = time.perf_counter()
        done = 0
        while done < steps:
            sync(loop(iterator, n))
            done += 10
        return 1000 * (time.perf_counter() - t) / done, pipeline_bps
