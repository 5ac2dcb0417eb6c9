"""Run by test_distributed.py in a fresh process: one TIRG step on 2 logical CPUs vs 1 device.

Prints the max absolute difference of every variable after the step.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from configs import tirg as cfg  # noqa: E402
from t2i_tf.data import css  # noqa: E402
from t2i_tf.tasks.tirg import TirgTask  # noqa: E402


def make_task(data_dir, workdir, loss, strategy):
    keras.utils.set_random_seed(0)
    config = dict(cfg.TEST, data_dir=data_dir, loss=loss, text_dropout=0.0, batch_size=8, weight_decay=1e-4, seed=0)
    task = TirgTask(config)
    task.prepare(workdir)
    task.build(strategy)
    return task


def main(data_dir, workdir, loss):
    single = make_task(data_dir, workdir, loss, tf.distribute.get_strategy())
    mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored = make_task(data_dir, workdir, loss, mirrored_strategy)
    mirrored.model.set_weights(single.model.get_weights())

    raw = next(iter(css.train_dataset(data_dir, 8, seed=0)))
    batch = {
        "source": raw["source_image"], "target": raw["target_image"],
        "tokens": single.tokenizer(raw["text"]), "target_label": raw["target_label"],
    }

    tf.function(single.train_step)(batch)

    def per_replica(ctx):
        i = ctx.replica_id_in_sync_group
        return {k: v[4 * i : 4 * (i + 1)] for k, v in batch.items()}

    distributed = mirrored_strategy.experimental_distribute_values_from_function(per_replica)

    @tf.function
    def step(b):
        return mirrored_strategy.run(mirrored.train_step, args=(b,))

    step(distributed)
    diffs = [np.max(np.abs(a - b)) for a, b in zip(single.model.get_weights(), mirrored.model.get_weights())]
    moved = max(np.max(np.abs(a - b)) for a, b in zip(single.model.get_weights(), make_task(data_dir, workdir, loss, tf.distribute.get_strategy()).model.get_weights()))
    print(f"MAXDIFF {max(diffs):.3e} MOVED {moved:.3e} NVARS {len(diffs)}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
