"""Cross-replica helpers for model code under a tf.distribute strategy (losses, train steps): all-gathers and
synchronised variable updates. Choosing a strategy is t2i_tf/train/strategy.py's job."""

from __future__ import annotations

import tensorflow as tf


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
