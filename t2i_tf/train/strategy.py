"""Choosing a tf.distribute strategy from ``--strategy``."""

from __future__ import annotations

import tensorflow as tf

from t2i_tf.errors import UserError

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """auto: MirroredStrategy over all GPUs when there are several, else the default strategy.

    one_device: the first GPU (or the CPU); mirrored: all local GPUs (all logical
    CPUs when there is no GPU, which is how the tests exercise it); multi_worker:
    MultiWorkerMirroredStrategy configured from ``TF_CONFIG``.
    """
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
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")


def gather_global(value: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(value all-gathered over replicas along axis 0, index of this replica's first row).

    In a single-replica context this is (value, 0). The gather is differentiable,
    so losses that compare against the whole global batch train correctly.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value, tf.constant(0, tf.int32)
    gathered = ctx.all_gather(value, axis=0)
    offset = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * tf.shape(value)[0]
    return gathered, offset


def update_variables(variables: list, fn, args: list | None = None) -> None:
    """``var.assign(fn(var, *args[i]))`` for every variable, as a synchronised update under a strategy.

    In replica context the updates run once per device inside a merge_call, as Keras optimizers apply
    theirs (e.g. WGAN weight clipping, a generator EMA). Keras variables are unwrapped to their tf.Variable.
    """
    variables = [getattr(v, "value", v) for v in variables]
    args = [tuple(getattr(a, "value", a) for a in arg) for arg in args] if args is not None else [()] * len(variables)

    def update_all(strategy, variables, args):
        for var, arg in zip(variables, args):
            strategy.extended.update(var, lambda v, *a: v.assign(fn(v, *a)), args=arg, group=False)

    tf.__internal__.distribute.interim.maybe_merge_call(update_all, tf.distribute.get_strategy(), variables, args)
