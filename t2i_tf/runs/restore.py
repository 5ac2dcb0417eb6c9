"""Trained runs other runs build on: their saved config (a frozen Stage-I, DAMSM, TIRG) and the restored task."""

from __future__ import annotations

import os
from typing import Any

from t2i_tf.errors import UserError
from t2i_tf.files import write_text_atomic
from t2i_tf.registry import lookup, schema_of
from t2i_tf.runs.config import CONFIG_FILE, load_run_config
from t2i_tf.train.trainer import Trainer


def chained_run_config(workdir: str, model: str, flag: str, what: str, needed_by: str,
                       copy_vocabulary_to: str | None = None) -> dict[str, Any]:
    """The saved config of the trained ``model`` run in ``workdir`` that another run builds on (frozen Stage-I,
    DAMSM, TIRG); a UserError naming ``--flag`` when there is none. With ``copy_vocabulary_to``, that run's
    vocabulary file is copied there, so the chained run tokenises text the same way."""
    from t2i_tf.data.text import VOCAB_FILE

    saved = load_run_config(workdir, model) if workdir and os.path.isdir(workdir) else None
    if saved is None:
        raise UserError(f"--{flag}={workdir or '(empty)'} has no trained {what} run ({CONFIG_FILE}); {needed_by} needs a "
                        f"trained {what} run: train it first with python main.py --model={model}")
    vocab = os.path.join(workdir, VOCAB_FILE)
    if copy_vocabulary_to and os.path.isfile(vocab):
        with open(vocab, encoding="utf-8") as f:  # atomically: every worker of a multi-worker run copies it
            write_text_atomic(os.path.join(copy_vocabulary_to, VOCAB_FILE), f.read())
    return saved


def restore_task(model: str, workdir: str, strategy: Any = "auto", with_optimizers: bool = False, **overrides: Any):
    """Rebuild model family ``model`` from the run in ``workdir`` and restore its latest checkpoint.

    Returns ``(task, step)``; used to chain models (e.g. SRCNN after a GAN, the CSS classifier in eval, a
    frozen Stage-I or TIRG inside another task: pass that task's ``strategy`` so both live in one scope). The
    optimizers' state is read only ``with_optimizers`` (a benchmark that trains the restored task).
    """
    config = load_run_config(workdir, model)
    if config is None:
        raise UserError(f"{workdir} has no {CONFIG_FILE}: train it first with python main.py --model={model} "
                        f"--workdir={workdir}")
    schema, task_cls = schema_of(model), lookup(model)[1]
    task = task_cls(dict(schema.saved_run_keys(config), **overrides))  # older runs may have saved more or fewer keys
    trainer = Trainer(task, workdir, num_iters=int(config.get("num_iters", 0)), strategy=strategy, verbose=False,
                      seed_global_rng=False)
    step = trainer.restore(with_optimizers=with_optimizers)
    return task, step
