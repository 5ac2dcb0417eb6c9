"""The evaluation metrics JSON: metric values plus the exact protocol that produced them, written atomically."""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
from typing import Any

import numpy as np

from t2i_tf.errors import UserError
from t2i_tf.files import write_text_atomic

__all__ = ["file_sha256", "read_metrics_json", "to_jsonable", "write_metrics_json"]

FORMAT_VERSION = 1


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(chunk_size), b""):
                digest.update(block)
    except FileNotFoundError as exc:
        raise UserError(f"cannot hash {os.fspath(path)!r}: file not found") from exc
    except IsADirectoryError as exc:
        raise UserError(f"cannot hash {os.fspath(path)!r}: expected a file, got a directory") from exc
    return digest.hexdigest()


def to_jsonable(value: Any) -> Any:
    """Converts numpy/TF scalars and arrays, tuples and paths to plain JSON values; non-finite floats become None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "numpy") and callable(value.numpy):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} to the metrics JSON")


def write_metrics_json(
    path: str | os.PathLike, metrics: dict[str, Any], protocol: dict[str, Any], step: int
) -> None:
    """Atomically writes {"format_version", "step", "written_at", "metrics", "protocol"} to `path`.

    The file is written to a temporary file in the same directory and renamed
    over `path`, so a reader never sees a half-written file. NaN/Inf become null.
    """
    if not isinstance(metrics, dict) or not isinstance(protocol, dict):
        raise TypeError("write_metrics_json: metrics and protocol must be dicts")
    record = {
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "metrics": to_jsonable(metrics),
        "protocol": to_jsonable(protocol),
    }
    text = json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n"
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise UserError(f"cannot write metrics to {os.fspath(path)!r}: {exc.strerror or exc}") from exc


def read_metrics_json(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a metrics JSON written by write_metrics_json."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as exc:
        raise UserError(f"metrics file not found: {os.fspath(path)!r}") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"metrics file {os.fspath(path)!r} is not valid JSON: {exc}") from exc
