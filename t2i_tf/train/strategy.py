"""Choosing a tf.distribute strategy from ``--strategy``."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from t2i_tf.errors import UserError

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """auto: MirroredStrategy over all GPUs when there are several, else the default strategy.

    one_device: the first GPU (or the CPU); mirrored: all local GPUs (all logical
    CPUs when there is no GPU, which is how the tests exercise it); multi_worker:
    MultiWorkerMirroredStrategy configured from ``TF_CONFIG``.
    """
    if name == "multi_worker":  # before listing devices: that starts the TF runtime it must configure first
        return _multi_worker_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")


def _multi_worker_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy from ``TF_CONFIG``, with clear errors for the two usual mistakes."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise UserError("--strategy=multi_worker needs TF_CONFIG on every worker, e.g. "
                        '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}')
    try:
        spec = json.loads(raw)
        workers, task = spec["cluster"]["worker"], spec["task"]
        if not isinstance(workers, list) or not workers or task.get("type") not in ("worker", "chief"):
            raise ValueError("needs a non-empty cluster.worker list and task.type worker or chief")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"TF_CONFIG is not a valid cluster description ({e}): {raw}") from None
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as e:
        if "program startup" not in str(e):
            raise
        raise UserError("MultiWorkerMirroredStrategy must be created before any TensorFlow op runs: call "
                        "make_strategy('multi_worker') first (main.py does)") from None


def worker_role(strategy: tf.distribute.Strategy) -> tuple[bool, int]:
    """(is_chief, worker index) of this process.

    Single-machine strategies are always the chief. Under MultiWorkerMirroredStrategy the chief is the
    ``chief`` task, or worker 0 when the cluster has no ``chief`` (as Keras decides); only the chief writes
    the run's checkpoints, summaries and metrics.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True, 0
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    if task_type in (None, "chief"):
        return True, task_id
    return task_type == "worker" and task_id == 0 and "chief" not in cluster, task_id
