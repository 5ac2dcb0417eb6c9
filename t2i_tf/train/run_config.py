"""The resolved configuration of a run, saved in its workdir, so eval / export / generate on that
workdir rebuild the same models without repeating the training flags."""

from __future__ import annotations

import json
import os
from typing import Any

from t2i_tf.errors import UserError
from t2i_tf.files import write_text_atomic

CONFIG_FILE = "config.json"


def save_run_config(workdir: str, model: str, config: dict[str, Any]) -> str:
    """Write ``{"model": model, "config": config}`` to ``workdir/config.json`` (atomically)."""
    return write_text_atomic(os.path.join(workdir, CONFIG_FILE),
                             json.dumps({"model": model, "config": config}, indent=1, sort_keys=True))


def load_run_config(workdir: str, model: str | None = None) -> dict[str, Any] | None:
    """The config saved in ``workdir`` (None if there is none); a UserError if it belongs to another model."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            saved = json.load(f)
        saved_model, config = saved["model"], dict(saved["config"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a run config written by main.py ({e})") from None
    if model is not None and saved_model != model:
        raise UserError(f"{workdir} holds a --model={saved_model} run, not --model={model}: pick another --workdir")
    return config


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


def check_architecture(workdir: str, task: Any) -> None:
    """Refuse to resume/restore ``workdir``'s checkpoint with other values of ``task.architecture_keys``."""
    if not task.architecture_keys or not os.path.isdir(os.path.join(workdir, "checkpoints")):
        return
    saved = load_run_config(workdir, task.name)
    if saved is None:
        return
    diff = [k for k in task.architecture_keys if k in saved and k in task.config and saved[k] != task.config[k]]
    if diff:
        was = " ".join(f"--{k}={saved[k]}" for k in diff)
        now = " ".join(f"--{k}={task.config[k]}" for k in diff)
        raise UserError(f"{workdir} holds a {task.name} checkpoint trained with {was}; got {now}: use those values "
                        "or another --workdir")


def restore_task(model: str, workdir: str, strategy: Any = "auto", **overrides: Any):
    """Rebuild model family ``model`` from the run in ``workdir`` and restore its latest checkpoint.

    Returns ``(task, step)``; used to chain models (e.g. SRCNN after a GAN, the CSS classifier in eval, a
    frozen Stage-I or TIRG inside another task: pass that task's ``strategy`` so both live in one scope).
    """
    from t2i_tf.registry import lookup
    from t2i_tf.train.trainer import Trainer

    config = load_run_config(workdir, model)
    if config is None:
        raise UserError(f"{workdir} has no {CONFIG_FILE}: train it first with python main.py --model={model} "
                        f"--workdir={workdir}")
    config.update(overrides)
    _, task_cls = lookup(model)
    task = task_cls(config)
    trainer = Trainer(task, workdir, num_iters=int(config.get("num_iters", 0)), strategy=strategy, verbose=False,
                      seed_global_rng=False)
    step = trainer.restore()
    return task, step
