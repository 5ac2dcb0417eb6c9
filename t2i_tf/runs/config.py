"""The resolved configuration of a run, saved in its workdir, so eval / export / generate on that
workdir rebuild the same models without repeating the training flags; and the architecture check on resume."""

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
