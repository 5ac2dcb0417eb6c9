"""Run by test_multi_worker.py in fresh processes: a few steps of MODEL (``tirg`` or ``gan_cls:<gan_type>``,
test presets) through the Trainer, either as one worker of a localhost MultiWorkerMirroredStrategy cluster or
as a 2-replica MirroredStrategy on 2 logical CPUs.

    multi_worker_run.py worker INDEX PORT0,PORT1 MODEL RECORDS WORKDIR NUM_ITERS OUT.npz
    multi_worker_run.py mirrored MODEL RECORDS WORKDIR NUM_ITERS OUT.npz

Saves the weights of every model the task checkpoints, before (``initial_<i>``) and after (``final_<i>``)
training, to OUT.npz and prints ``RESULT {json}`` (role, step, metrics).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
args = sys.argv[1:]
mode = args.pop(0)
if mode == "worker":
    index, ports = int(args.pop(0)), args.pop(0).split(",")
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                          "task": {"type": "worker", "index": index}})
model, records, workdir, num_iters, out = args[0], args[1], args[2], int(args[3]), args[4]

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402

from configs import gan_cls as gan_cls_config  # noqa: E402
from configs import tirg as tirg_config  # noqa: E402
from t2i_tf.tasks.gan_cls import GanClsTask  # noqa: E402
from t2i_tf.tasks.tirg import TirgTask  # noqa: E402
from t2i_tf.train.strategy import make_strategy  # noqa: E402
from t2i_tf.train.trainer import Trainer  # noqa: E402

if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
else:
    strategy = make_strategy("multi_worker")  # before any TF op, as main.py does

if model == "tirg":
    task = TirgTask(dict(tirg_config.TEST, data_dir=records, text_dropout=0.0, batch_size=8, seed=0,
                         num_iters=num_iters))
else:
    gan_type = model.split(":")[1]
    task = GanClsTask(dict(gan_cls_config.TEST, data_dir=records, gan_type=gan_type, batch_size=8, seed=0,
                           num_iters=num_iters))


def model_weights():
    models = [v for _, v in sorted(task.checkpoint_items().items()) if isinstance(v, keras.Model)]
    return [np.asarray(w) for m in models for w in m.get_weights()]


trainer = Trainer(task, workdir, num_iters=num_iters, strategy=strategy, seed=0, log_every=2, eval_every=2,
                  ckpt_every=2, steps_per_loop=2)
trainer.setup()
initial = {f"initial_{i}": w for i, w in enumerate(model_weights())}
metrics = trainer.fit()
np.savez(out, **initial, **{f"final_{i}": w for i, w in enumerate(model_weights())})
print("RESULT " + json.dumps({"is_chief": trainer.is_chief, "replicas": trainer.strategy.num_replicas_in_sync,
                              "step": int(trainer.step.numpy()), "metrics": metrics}), flush=True)
