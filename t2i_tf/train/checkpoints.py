"""Checkpoints that survive what happens to runs: kills during a save, corrupt or missing files, garbage in the
``checkpoint`` state file, and Ctrl-C / SIGTERM in the middle of a loop.

- Resuming lists the checkpoints from their files (not only the state file) and restores the newest that reads
  completely, warning about each newer one that does not; when checkpoints exist but none reads, it stops with
  an error instead of starting again from step 0.
- ``ckpt-N_temp`` directories left by a kill during a save are removed.
- Keras layers' random states (dropout seed generators, which Keras keeps out of a model's weights) are saved
  with the weights, so a resumed run draws the masks the uninterrupted run would have drawn.
- ``metrics.jsonl`` is appended one whole line at a time; a line torn by a kill is dropped by the next writer and
  ignored by readers.
- SIGINT / SIGTERM during training are deferred to the end of the current loop, where the step counter and the
  weights agree (and the NaN check has passed): the Trainer saves that step, then stops.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import sys
import threading
from typing import Any, Iterator

import keras
import tensorflow as tf

from t2i_tf.errors import UserError

_INDEX = re.compile(r"^ckpt-(\d+)\.index$")
RNG_NODE = "keras_rng"  # the checkpoint node holding the Keras random states


def keras_rng_states(items: dict[str, Any]) -> dict[str, Any]:
    """The random-state variables (seed generators) of the Keras layers among ``items``, by item and position.

    Keras lists them in ``layer.variables`` but not in ``layer.weights``, which is all a checkpoint of the layer
    holds; without them a resumed run would draw its dropout masks again from the start.
    """
    import keras

    out = {}
    for key in sorted(items):
        item = items[key]
        if isinstance(item, keras.layers.Layer):
            weights = {id(w) for w in item.weights}
            for i, v in enumerate(v for v in item.variables if id(v) not in weights):
                out[f"{key}_{i}"] = v
    return out


def _has_node(prefix: str, node: str) -> bool:
    return any(name.startswith(node + "/") for name, _ in tf.train.list_variables(prefix))


def checkpoint_prefixes(ckpt_dir: str) -> list[str]:
    """Every ``ckpt-N`` prefix with an index file in ``ckpt_dir``, newest (highest N) first."""
    if not os.path.isdir(ckpt_dir):
        return []
    found = [(int(m.group(1)), name[: -len(".index")]) for name in os.listdir(ckpt_dir) if (m := _INDEX.match(name))]
    return [os.path.join(ckpt_dir, prefix) for _, prefix in sorted(found, reverse=True)]


def remove_partial_saves(ckpt_dir: str) -> list[str]:
    """Delete the ``*_temp*`` directories a save killed half-way leaves behind; returns what was removed."""
    removed = [p for p in glob.glob(os.path.join(ckpt_dir, "*_temp*")) if os.path.isdir(p)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def _state_file_is_readable(ckpt_dir: str) -> bool:
    try:
        return tf.train.get_checkpoint_state(ckpt_dir) is not None  # None: TF could not parse it
    except Exception:  # noqa: BLE001 -- a text proto TF cannot parse (garbage written into the state file)
        return False


def without_optimizers(items: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint ``items`` but the Keras optimizers: what evaluation, generation and export read."""
    return {name: item for name, item in items.items() if not isinstance(item, keras.optimizers.Optimizer)}


def restore_newest_readable(checkpoint: tf.train.Checkpoint, ckpt_dir: str, clean: bool = True,
                            without_node: tuple[str, tf.train.Checkpoint] | None = None,
                            partial: bool = False) -> str | None:
    """Restore the newest checkpoint of ``ckpt_dir`` that reads completely; its prefix, or None when there is none.

    Each newer checkpoint that fails (truncated or missing files, flipped bytes, another model's variables) is
    named in a warning on stderr. ``clean``: also remove partial saves and an unreadable state file (the
    CheckpointManager writes a new one with the next save). ``without_node``: (node, a checkpoint without it) to
    restore a checkpoint that predates ``node`` with. ``partial``: ``checkpoint`` holds a part of what was saved (no
    optimizers): the values it leaves unread are expected, not warned about.
    """
    if clean and os.path.isdir(ckpt_dir):
        for path in remove_partial_saves(ckpt_dir):
            print(f"warning: removed {path}, left by a save that did not finish", file=sys.stderr, flush=True)
        state = os.path.join(ckpt_dir, "checkpoint")
        if os.path.isfile(state) and not _state_file_is_readable(ckpt_dir):
            print(f"warning: {state} is not a checkpoint state file; the checkpoints are listed from their files",
                  file=sys.stderr, flush=True)
            os.remove(state)
    failures: list[str] = []
    for prefix in checkpoint_prefixes(ckpt_dir):
        try:
            target = checkpoint
            if without_node is not None and not _has_node(prefix, without_node[0]):
                target = without_node[1]
            status = target.restore(prefix).assert_existing_objects_matched()
            if partial:
                status.expect_partial()
        except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError, OSError) as e:
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            failures.append(f"{prefix} ({reason})")
            print(f"warning: checkpoint {prefix} cannot be read ({reason}); trying the previous one",
                  file=sys.stderr, flush=True)
            continue
        return prefix
    if failures:
        raise UserError(f"no checkpoint in {ckpt_dir} can be read ({'; '.join(failures)}): refusing to start again "
                        "from step 0 over them; move them away to start afresh")
    return None


def read_metrics(path: str) -> list[dict[str, Any]]:
    """The evaluation records of a ``metrics.jsonl``; lines that do not parse (torn by a kill) are skipped."""
    if not os.path.isfile(path):
        return []
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                out.append(record)
    return out


def append_metrics(path: str, record: dict[str, Any]) -> None:
    """Append ``record`` as one line of ``path``, first dropping a last line a kill left unfinished."""
    if os.path.isfile(path) and os.path.getsize(path):
        with open(path, "rb+") as f:
            data = f.read()
            if not data.endswith(b"\n"):
                keep = data.rfind(b"\n") + 1
                print(f"warning: {path}: dropped an unfinished last line ({len(data) - keep} bytes) left by a kill",
                      file=sys.stderr, flush=True)
                f.truncate(keep)
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write: a reader sees the whole line or none of it
        os.fsync(fd)
    finally:
        os.close(fd)


class _Stop:
    """The stop signal received while deferred (None: none yet)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""

    def reraise(self) -> None:
        if self.signal == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + int(self.signal))


@contextlib.contextmanager
def deferred_stop_signals() -> Iterator[_Stop]:
    """Within the block, SIGINT and SIGTERM only record themselves (main thread only; elsewhere nothing changes)."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def record(signum, frame):  # noqa: ARG001
        stop.signal = signum

    previous = {s: signal.signal(s, record) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
