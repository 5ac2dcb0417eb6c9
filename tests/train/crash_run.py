"""A tiny TIRG training run for the crash-safety test, optionally killing itself (SIGKILL) at one moment.

python -m tests.train.crash_run WORKDIR DATA_DIR [--kill=save_before_merge|save_before_state|eval_torn_line]

- save_before_merge: in its first checkpoint save, after the variables are written to ``ckpt-N_temp`` and before
  they are merged into ``ckpt-N`` (a kill in the middle of a save);
- save_before_state: in its first save, after ``ckpt-N`` is complete and before the ``checkpoint`` state file
  names it;
- eval_torn_line: in its first evaluation of a step ``metrics.jsonl`` has no record of, after the metrics are
  computed, with half of their line written (a kill in the middle of the write).
"""

from __future__ import annotations

import os
import signal
import sys

SCHEDULE = {"num_iters": 12, "ckpt_every": 2, "eval_every": 4, "log_every": 1, "steps_per_loop": 1, "data_block_steps": 5,
            "seed": 7}


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    workdir, data_dir = argv[0], argv[1]
    kill = argv[2].split("=", 1)[1] if len(argv) > 2 else None

    from tensorflow.python.checkpoint import checkpoint_management, functional_saver

    from configs.tirg import TEST
    from t2i_tf.tasks.tirg import TirgTask
    from t2i_tf.train.checkpoints import read_metrics
    from t2i_tf.train.trainer import Trainer

    if kill == "save_before_merge":
        functional_saver.gen_io_ops.merge_v2_checkpoints = lambda *a, **k: _die()
    elif kill == "save_before_state":
        checkpoint_management.update_checkpoint_state_internal = lambda *a, **k: _die()

    s = SCHEDULE
    task = TirgTask(dict(TEST, data_dir=data_dir, seed=s["seed"], eval_every=s["eval_every"], train_eval_queries=0))
    if kill == "eval_torn_line":
        evaluate = task.evaluate

        def evaluate_then_die(step):
            metrics = evaluate(step)
            if step in {r["step"] for r in read_metrics(os.path.join(workdir, "metrics.jsonl"))}:
                return metrics
            with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
                f.write(f'{{"step": {step}, "test/R@1": 0.')
            print(f"killing in the evaluation at step {step}", flush=True)
            _die()
            return metrics

        task.evaluate = evaluate_then_die
    trainer = Trainer(task, workdir, num_iters=s["num_iters"], strategy="default", seed=s["seed"],
                      log_every=s["log_every"], eval_every=s["eval_every"], ckpt_every=s["ckpt_every"],
                      steps_per_loop=s["steps_per_loop"], data_block_steps=s["data_block_steps"])
    trainer.fit()


if __name__ == "__main__":
    main(sys.argv[1:])
