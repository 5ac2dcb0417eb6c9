"""The one training loop every model uses.

The Trainer owns: the tf.distribute strategy, distributing the Task's dataset,
the ``tf.function`` step loop (optionally XLA), checkpoints with resume from
``workdir``, TensorBoard scalars and hparams, a progress line, the NaN/Inf
guard and seeds. A Task supplies models, data and the step maths.

Resuming is exact: a run killed at any moment and resumed gives the weights of an uninterrupted run with the
same seed. The data position is the step counter saved with the weights: the training stream is cut into blocks
of ``data_block_steps`` steps, block ``b`` drawn from a dataset seeded by (--seed, b), so a run resumed at step
``s`` rebuilds block ``s // data_block_steps`` and skips the ``s % data_block_steps`` steps of it already trained
(a bounded cost, however long the run). Keras layers' random states (dropout seed generators) are saved with
the weights. An evaluation that a kill interrupted is redone on resume.

Under MultiWorkerMirroredStrategy every worker runs this loop on the same ``workdir`` (shared storage):
all restore the chief's latest checkpoint and take part in every save, but only the chief writes the
run (checkpoints, config, TensorBoard, metrics, evaluations); the other workers save into a temporary
``.worker<i>`` directory that is deleted right after.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from typing import Any

import keras
import tensorflow as tf

from t2i_tf.errors import UserError
from t2i_tf.tasks.base import Task
from t2i_tf.runs.config import check_architecture, save_run_config
from t2i_tf.train.checkpoints import (RNG_NODE, append_metrics, checkpoint_prefixes, deferred_stop_signals,
                                     keras_rng_states, read_metrics, restore_newest_readable, without_optimizers)
from t2i_tf.train.strategy import make_strategy, worker_role


class NonFiniteLossError(UserError):
    """Training produced NaN/Inf; the last good checkpoint is kept."""


def xla_unsupported_ops(message: str) -> list[str]:
    """The op types an XLA compile error names ("No registered 'ResizeArea' OpKernel for XLA_CPU_JIT ..."), sorted;
    [] for any other error."""
    return sorted(set(re.findall(r"No registered '(\w+)' OpKernel for XLA", message)))


def _fmt_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Trainer:
    """Runs ``task`` for ``num_iters`` steps in ``workdir``, resuming from its latest checkpoint."""

    def __init__(
        self,
        task: Task,
        workdir: str,
        num_iters: int,
        strategy: str | tf.distribute.Strategy = "auto",
        seed: int = 0,
        log_every: int = 100,
        eval_every: int = 1000,
        ckpt_every: int = 1000,
        steps_per_loop: int = 50,
        jit_compile: bool = False,
        max_to_keep: int = 3,
        verbose: bool = True,
        seed_global_rng: bool = True,
        data_block_steps: int = 1000,
    ):
        if num_iters < 0:
            raise UserError(f"--num_iters must be >= 0, got {num_iters}")
        for name, value in (("log_every", log_every), ("eval_every", eval_every), ("ckpt_every", ckpt_every), ("steps_per_loop", steps_per_loop),
                            ("data_block_steps", data_block_steps)):
            if value < 1:
                raise UserError(f"--{name} must be >= 1, got {value}")
        self.task = task
        self.workdir = workdir
        self.num_iters = int(num_iters)
        self.seed = seed
        self.log_every = log_every
        self.eval_every = eval_every
        self.ckpt_every = ckpt_every
        self.steps_per_loop = steps_per_loop
        self.data_block_steps = int(data_block_steps)
        self.jit_compile = jit_compile
        self.verbose = verbose
        # False for a model restored inside another task's build (a frozen Stage-I, DAMSM, TIRG): reseeding
        # there would reset the outer run's random state, so its own networks would start the same for every seed.
        self.seed_global_rng = seed_global_rng
        self.strategy = strategy if isinstance(strategy, tf.distribute.Strategy) else make_strategy(strategy)
        self.is_chief, worker = worker_role(self.strategy)
        # Where this process's checkpoint saves go: the run's own directory, or a non-chief's scratch copy.
        self._save_root = workdir if self.is_chief else os.path.join(workdir, f".worker{worker}")
        self._built = self._inference_only = False
        self._max_to_keep = max_to_keep
        self._eval_writer = None

    # ----------------------------------------------------------------- setup
    def _log(self, msg: str) -> None:
        if self.verbose and self.is_chief:
            print(msg, flush=True)

    def setup(self, inference: bool = False) -> int:
        """Build the task under the strategy and restore the latest checkpoint; returns the start step.

        ``inference``: restore everything but the optimizers (their slots are not read at all: the AttnGAN paper
        preset sits at 2539 MiB after the restore instead of 3387, bench/generator_memory.py); the run cannot train
        after it.
        """
        if self._built:
            if self._inference_only and not inference:
                raise RuntimeError("this Trainer restored its run without the optimizers (restore()): a new Trainer "
                                   "trains it")
            return int(self.step.numpy())
        if os.path.exists(self.workdir) and not os.path.isdir(self.workdir):
            raise UserError(f"--workdir {self.workdir} is a file, not a directory")
        try:
            os.makedirs(self.workdir, exist_ok=True)
        except OSError as e:
            raise UserError(f"--workdir {self.workdir} cannot be created ({e.strerror})") from None
        if not os.access(self.workdir, os.W_OK | os.X_OK):
            raise UserError(f"--workdir {self.workdir} is not writable")
        if self.seed_global_rng:
            keras.utils.set_random_seed(self.seed)
        check_architecture(self.workdir, self.task)
        self.task.prepare(self.workdir)
        self.task.build(self.strategy)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        items = self.task.checkpoint_items()
        self.checkpoint, legacy = self._checkpoint_of(items)
        read, read_legacy = self._checkpoint_of(without_optimizers(items)) if inference else (self.checkpoint, legacy)
        restored = restore_newest_readable(read, os.path.join(self.workdir, "checkpoints"),
                                           clean=self.is_chief,  # the chief's checkpoints, for every worker
                                           without_node=(RNG_NODE, read_legacy) if read_legacy is not None else None,
                                           partial=inference)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(self._save_root, "checkpoints"), max_to_keep=self._max_to_keep
        )
        if restored:
            self._log(f"resumed from {restored} at step {int(self.step.numpy())}")
        self._built, self._inference_only = True, inference
        return int(self.step.numpy())

    def _checkpoint_of(self, items: dict[str, Any]) -> tuple[tf.train.Checkpoint, tf.train.Checkpoint | None]:
        """The checkpoint of ``items`` and the step, with the random states of their Keras layers under RNG_NODE;
        and (when there are such states) the same without them, which reads checkpoints written before they were
        saved."""
        rng_states = keras_rng_states(items)
        checkpoint = tf.train.Checkpoint(step=self.step, **items,
                                         **({RNG_NODE: tf.train.Checkpoint(**rng_states)} if rng_states else {}))
        return checkpoint, (tf.train.Checkpoint(step=self.step, **items) if rng_states else None)

    def _save(self, step: int) -> None:
        """Checkpoint ``step``: every worker takes part; only the chief's copy is kept."""
        self.manager.save(checkpoint_number=step)
        if not self.is_chief:
            shutil.rmtree(self._save_root, ignore_errors=True)

    def restore(self, with_optimizers: bool = False) -> int:
        """Set up and require a checkpoint (for eval/export/retrieve: without the optimizers' state unless
        ``with_optimizers``); returns its step."""
        ckpt_dir = os.path.join(self.workdir, "checkpoints")
        if not checkpoint_prefixes(ckpt_dir):
            raise UserError(f"no checkpoint in {ckpt_dir}: train first (--mode=train --workdir={self.workdir})")
        return self.setup(inference=not with_optimizers)

    # ------------------------------------------------------------- the loop
    def _make_loop(self):
        strategy = self.strategy
        step_fn = tf.function(self.task.train_step, jit_compile=True) if self.jit_compile else self.task.train_step

        # Its own tf.function (around strategy.run, so optimizers' merge_calls stay in replica
        # context), called from ONE place in run_steps: a second call site held a second copy of the step's graph
        # (about 480 MiB for the AttnGAN paper preset, bench/generator_memory.py).
        @tf.function
        def one_step(iterator):
            per_replica = strategy.run(step_fn, args=(next(iterator),))
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

        @tf.function
        def run_steps(iterator, n):
            outputs = one_step.get_concrete_function(iterator).structured_outputs
            metrics = tf.nest.map_structure(lambda t: tf.zeros(t.shape, t.dtype), outputs)
            for _ in tf.range(n):
                metrics = one_step(iterator)
            return metrics

        return run_steps

    def _run_steps(self, run_steps, iterator, n: int) -> dict[str, tf.Tensor]:
        """``run_steps(iterator, n)``; a train step XLA cannot compile (``--jit_compile``) is a UserError naming the
        ops, not TensorFlow's graph-execution traceback."""
        try:
            return run_steps(iterator, tf.constant(n, tf.int32))
        except tf.errors.InvalidArgumentError as err:
            ops = xla_unsupported_ops(str(err)) if self.jit_compile else []
            if not ops:
                raise
            raise UserError(f"--jit_compile: XLA cannot compile the {self.task.name} train step on this device "
                            f"(unsupported ops: {', '.join(ops)}); run without --jit_compile") from None

    def fit(self) -> dict[str, float]:
        """Train to ``num_iters`` (resuming), evaluating and checkpointing on schedule; returns the last eval."""
        start = self.setup()
        if self.is_chief:
            save_run_config(self.workdir, self.task.name, self.task.run_config())
        if start >= self.num_iters:
            self._log(f"checkpoint step {start} >= --num_iters={self.num_iters}: nothing to train")
            return self._evaluate_and_log(start)
        if start > 0 and start % self.eval_every == 0 and self.is_chief and start not in self._evaluated_steps():
            self._log(f"the evaluation at step {start} did not finish: evaluating again")
            self._evaluate_and_log(start)
        train_writer = None  # TensorBoard: the chief's
        if self.is_chief:
            train_writer = tf.summary.create_file_writer(os.path.join(self.workdir, "train"))
            self._write_hparams(train_writer)
        iterator = self._data_iterator(start)
        run_steps = self._make_loop()
        step = start
        self._log(
            f"training {self.task.name} from step {start} to {self.num_iters} "
            f"({self.strategy.num_replicas_in_sync} replica(s), global batch {self.task.global_batch_size})"
        )
        t0, steps_done, last_eval = time.perf_counter(), 0, None
        window_t, window_steps = t0, 0
        with deferred_stop_signals() as stop:
            while step < self.num_iters:
                if step % self.data_block_steps == 0 and step != start:
                    iterator = self._data_iterator(step)
                n = min(self.steps_per_loop, self.num_iters - step, self._steps_to_next_event(step))
                metrics = self._run_steps(run_steps, iterator, n)
                metrics = {k: float(v) for k, v in metrics.items()}
                step += n
                steps_done += n
                window_steps += n
                self.step.assign(step)
                bad = [k for k, v in metrics.items() if not math.isfinite(v)]
                if bad:
                    raise NonFiniteLossError(
                        f"non-finite {', '.join(bad)} at step {step}; stopped without saving "
                        f"(last checkpoint: {self.manager.latest_checkpoint or 'none'}). Try a lower --learning_rate."
                    )
                if (step % self.log_every == 0 or step == self.num_iters) and self.is_chief:
                    now = time.perf_counter()
                    rate = window_steps / max(now - window_t, 1e-9)
                    window_t, window_steps = now, 0
                    lr = self.task.learning_rate(tf.constant(step, tf.int64))
                    with train_writer.as_default(step=step):
                        for k, v in metrics.items():
                            tf.summary.scalar(k, v)
                        if lr is not None:
                            tf.summary.scalar("learning_rate", lr)
                        tf.summary.scalar("steps_per_second", rate)
                        self.task.summaries(step)
                    eta = (self.num_iters - step) / max(rate, 1e-9)
                    shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
                    lr_text = f"  lr {float(lr):.3g}" if lr is not None else ""
                    self._log(f"step {step}/{self.num_iters}  {shown}{lr_text}  {rate:.2f} it/s  eta {_fmt_duration(eta)}")
                if step % self.ckpt_every == 0 or step == self.num_iters:
                    self._save(step)
                if step % self.eval_every == 0 or step == self.num_iters:
                    last_eval = self._evaluate_and_log(step)
                if stop.signal is not None:  # between loops: the weights are those of `step` (and were finite)
                    self._save(step)
                    self._log(f"stopped by {stop.name}: saved checkpoint at step {step}; rerun the same command to resume")
                    stop.reraise()
        if train_writer is not None:
            train_writer.flush()
        elapsed = time.perf_counter() - t0
        self._log(f"trained {steps_done} steps in {_fmt_duration(elapsed)} ({1000 * elapsed / max(steps_done, 1):.1f} ms/step incl. eval)")
        return last_eval or {}

    def _steps_to_next_event(self, step: int) -> int:
        return min(e - step % e for e in (self.log_every, self.ckpt_every, self.eval_every, self.data_block_steps))

    def _data_iterator(self, step: int):
        """An iterator over the training data from ``step`` on, to the end of its data block (see the module doc)."""
        block, done = divmod(step, self.data_block_steps)
        seed = self.seed * 1_000_003 + block

        def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
            ds = self.task.train_dataset(ctx, seed)
            # Each step takes one per-replica batch for every replica this input pipeline feeds.
            return ds.skip(done * (ctx.num_replicas_in_sync // ctx.num_input_pipelines)) if done else ds

        return iter(self.strategy.distribute_datasets_from_function(dataset_fn))

    # ------------------------------------------------------------- eval
    def _evaluate_and_log(self, step: int) -> dict[str, float]:
        """Evaluate on the chief (local computation, no collectives); other workers return {}."""
        if not self.is_chief:
            return {}
        t = time.perf_counter()
        metrics = self.task.evaluate(step)
        if self._eval_writer is None:  # one writer (one events file) for all evaluations
            self._eval_writer = tf.summary.create_file_writer(os.path.join(self.workdir, "eval"))
        writer = self._eval_writer
        with writer.as_default(step=step):
            for k, v in metrics.items():
                tf.summary.scalar(k, v)
        writer.flush()
        append_metrics(os.path.join(self.workdir, "metrics.jsonl"), {"step": step, **metrics})
        shown = "  ".join(f"{k} {v:.2f}" for k, v in metrics.items())
        self._log(f"eval @ step {step} ({time.perf_counter() - t:.1f}s): {shown}")
        return metrics

    def _evaluated_steps(self) -> set[int]:
        return {int(r["step"]) for r in read_metrics(os.path.join(self.workdir, "metrics.jsonl"))}

    def evaluate(self) -> dict[str, float]:
        """Restore the latest checkpoint and evaluate it."""
        step = self.restore()
        return self._evaluate_and_log(step)

    def _write_hparams(self, writer) -> None:
        try:
            from tensorboard.plugins.hparams import api as hp
        except ImportError:  # tensorboard ships with tensorflow; stay usable without it
            return
        with writer.as_default():
            hp.hparams(self.task.hparams(), trial_id=os.path.basename(os.path.abspath(self.workdir)))
