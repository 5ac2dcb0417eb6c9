"""The Trainer on a toy Task: schedule, checkpoints/resume, NaN guard, strategy choice."""

import gc
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.errors import UserError
from t2i_tf.tasks.base import Task
from t2i_tf.distribute import gather_global
from t2i_tf.train.strategy import make_strategy
from t2i_tf.train.trainer import NonFiniteLossError, Trainer


class LinearTask(Task):
    """Fits y = 3x with one weight; ``poison_at`` makes the loss NaN from that step on."""

    name = "linear"

    @classmethod
    def config_schema(cls):
        return None  # a test task outside the registry

    def prepare(self, workdir):
        self.evals = []

    def build(self, strategy):
        with strategy.scope():
            self.w = tf.Variable(0.0, name="w")
            self.optimizer = keras.optimizers.SGD(0.1)
            self.optimizer.build([self.w])
            self.calls = tf.Variable(0, dtype=tf.int64, name="calls")

    def train_dataset(self, input_context, seed):
        x = tf.random.stateless_uniform([1024], seed=[1, 2])
        return tf.data.Dataset.from_tensor_slices(x).repeat().batch(input_context.get_per_replica_batch_size(8))

    def train_step(self, x):
        self.traces = getattr(self, "traces", 0) + 1  # Python side effect: runs once per trace
        with tf.GradientTape() as tape:
            per_example = tf.square(self.w * x - 3.0 * x)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=8)
        self.optimizer.apply_gradients([(tape.gradient(loss, self.w), self.w)])
        self.calls.assign_add(1)
        value = tf.reduce_mean(per_example)
        poison = self.config.get("poison_at")
        if poison is not None:
            value = tf.where(self.calls >= poison, tf.constant(np.nan), value)
        return {"loss": value}

    def checkpoint_items(self):
        return {"w": self.w, "optimizer": self.optimizer}

    def evaluate(self, step):
        self.evals.append(step)
        return {"test/err": float(abs(self.w.numpy() - 3.0))}

    def export(self, path):
        return {}


def test_trains_to_num_iters_with_schedule(tmp_path):
    task = LinearTask({"batch_size": 8})
    trainer = Trainer(task, str(tmp_path), num_iters=30, log_every=10, eval_every=15, ckpt_every=10, steps_per_loop=7, verbose=False)
    metrics = trainer.fit()
    assert int(trainer.step.numpy()) == 30 and int(task.calls.numpy()) == 30
    assert task.evals == [15, 30]
    assert metrics["test/err"] < 0.5  # it learned
    saved = sorted(int(p.split("-")[-1].split(".")[0]) for p in os.listdir(tmp_path / "checkpoints") if p.endswith(".index"))
    assert saved == [10, 20, 30]
    lines = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
    assert [r["step"] for r in lines] == [15, 30]
    assert len(os.listdir(tmp_path / "eval")) == 1  # both evaluations in one events file


def test_step_is_traced_once_for_all_loop_chunks(tmp_path):
    task = LinearTask({"batch_size": 8})
    Trainer(task, str(tmp_path), num_iters=12, log_every=5, eval_every=100, ckpt_every=100, steps_per_loop=4, verbose=False).fit()
    assert int(task.calls.numpy()) == 12
    assert task.traces == 1


def test_resume_restores_weights_and_step(tmp_path):
    first = LinearTask({"batch_size": 8})
    Trainer(first, str(tmp_path), num_iters=10, ckpt_every=5, verbose=False).fit()
    w_after_10 = float(first.w.numpy())
    second = LinearTask({"batch_size": 8})
    trainer = Trainer(second, str(tmp_path), num_iters=12, ckpt_every=5, verbose=False)
    assert trainer.setup() == 10
    assert float(second.w.numpy()) == pytest.approx(w_after_10)
    trainer.fit()
    assert int(trainer.step.numpy()) == 12 and int(second.calls.numpy()) == 2  # only the 2 missing steps ran


def test_restore_for_inference_reads_the_models_but_not_the_optimizers(tmp_path, caplog):
    Trainer(LinearTask({"batch_size": 8}), str(tmp_path), num_iters=10, ckpt_every=5, verbose=False).fit()
    resumed = LinearTask({"batch_size": 8})
    assert Trainer(resumed, str(tmp_path), num_iters=10, verbose=False).setup() == 10
    assert int(resumed.optimizer.iterations.numpy()) == 10  # training restores the optimizer ...
    task = LinearTask({"batch_size": 8})
    trainer = Trainer(task, str(tmp_path), num_iters=12, verbose=False)
    assert trainer.restore() == 10
    assert float(task.w.numpy()) == pytest.approx(float(resumed.w.numpy()))
    assert int(task.optimizer.iterations.numpy()) == 0  # ... evaluation, generation and export do not read it
    gc.collect()  # TensorFlow warns about unread checkpoint values when the restore's state is collected
    assert "could not be found in the restored object" not in caplog.text  # leaving them is no failure
    with pytest.raises(RuntimeError, match="without the optimizers"):
        trainer.fit()  # so this Trainer cannot go on training


def test_nan_guard_stops_without_saving(tmp_path):
    task = LinearTask({"batch_size": 8, "poison_at": 7})
    trainer = Trainer(task, str(tmp_path), num_iters=20, log_every=5, ckpt_every=5, steps_per_loop=5, verbose=False)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at step 10"):
        trainer.fit()
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-5")


def test_restore_requires_checkpoint(tmp_path):
    with pytest.raises(UserError, match="no checkpoint"):
        Trainer(LinearTask({"batch_size": 8}), str(tmp_path), num_iters=1, verbose=False).restore()


def test_a_workdir_that_is_a_file_or_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file, not a directory"):
        Trainer(LinearTask({"batch_size": 8}), str(tmp_path / "file"), num_iters=1, verbose=False).setup()
    with pytest.raises(UserError, match="cannot be created"):
        Trainer(LinearTask({"batch_size": 8}), str(tmp_path / "file" / "run"), num_iters=1, verbose=False).setup()


def test_bad_schedule_values(tmp_path):
    with pytest.raises(UserError, match="--log_every must be >= 1"):
        Trainer(LinearTask({"batch_size": 8}), str(tmp_path), num_iters=1, log_every=0)
    with pytest.raises(UserError, match="--num_iters must be >= 0"):
        Trainer(LinearTask({"batch_size": 8}), str(tmp_path), num_iters=-1)


def test_strategy_choice_and_gather():
    assert make_strategy("auto").num_replicas_in_sync == 1
    with pytest.raises(UserError, match="--strategy must be one of"):
        make_strategy("tpu_pod")
    value, offset = gather_global(tf.constant([1.0, 2.0]))
    assert value.numpy().tolist() == [1.0, 2.0] and int(offset) == 0


def _trained(tmp_path, num_iters=15):
    task = LinearTask({"batch_size": 8})
    Trainer(task, str(tmp_path), num_iters=num_iters, ckpt_every=5, steps_per_loop=5, verbose=False).fit()
    return str(tmp_path / "checkpoints")


def _resume(tmp_path, num_iters=15):
    task = LinearTask({"batch_size": 8})
    trainer = Trainer(task, str(tmp_path), num_iters=num_iters, ckpt_every=5, steps_per_loop=5, verbose=False)
    return trainer.setup(), task


def test_garbage_in_the_state_file_does_not_restart_from_zero(tmp_path, capsys):
    ckpt_dir = _trained(tmp_path)
    with open(os.path.join(ckpt_dir, "checkpoint"), "w") as f:
        f.write("model_checkpoint_path: !!! not a text proto")
    step, task = _resume(tmp_path)
    assert step == 15 and int(task.optimizer.iterations.numpy()) == 15
    assert "is not a checkpoint state file" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncate_index", "truncate_data", "remove_data", "flip_byte"])
def test_an_unreadable_newest_checkpoint_falls_back_to_the_previous(tmp_path, capsys, damage):
    ckpt_dir = _trained(tmp_path)
    index = os.path.join(ckpt_dir, "ckpt-15.index")
    (data,) = [os.path.join(ckpt_dir, n) for n in os.listdir(ckpt_dir) if n.startswith("ckpt-15.data")]
    if damage == "truncate_index":
        with open(index, "r+b") as f:
            f.truncate(os.path.getsize(index) // 2)
    elif damage == "truncate_data":
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 2)
    elif damage == "remove_data":
        os.remove(data)
    else:
        raw = bytearray(open(index, "rb").read())
        raw[len(raw) // 2] ^= 0xFF
        open(index, "wb").write(bytes(raw))
    step, task = _resume(tmp_path)
    assert step == 10 and int(task.optimizer.iterations.numpy()) == 10  # the weights and counter of ckpt-10
    assert f"checkpoint {ckpt_dir}/ckpt-15 cannot be read" in capsys.readouterr().err


def test_when_no_checkpoint_reads_training_stops_instead_of_starting_over(tmp_path):
    ckpt_dir = _trained(tmp_path)
    for name in os.listdir(ckpt_dir):
        if ".data" in name:
            os.remove(os.path.join(ckpt_dir, name))
    with pytest.raises(UserError, match="no checkpoint in .* can be read .*refusing to start again from step 0"):
        _resume(tmp_path)


def test_partial_saves_are_cleaned(tmp_path):
    ckpt_dir = _trained(tmp_path)
    os.makedirs(os.path.join(ckpt_dir, "ckpt-20_temp", "part-0"))
    assert _resume(tmp_path)[0] == 15
    assert not os.path.exists(os.path.join(ckpt_dir, "ckpt-20_temp"))


def test_sigint_saves_the_step_the_weights_belong_to(tmp_path):
    """Ctrl-C during a loop is handled after it: the checkpoint's counter equals the steps its weights made."""
    import signal
    import threading

    task = LinearTask({"batch_size": 8})
    trainer = Trainer(task, str(tmp_path), num_iters=10**6, log_every=10**6, eval_every=10**6, ckpt_every=10**6,
                      steps_per_loop=50, verbose=False)
    threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    step, resumed = _resume(tmp_path, num_iters=10**6)
    assert step > 0 and step % 50 == 0  # a loop boundary
    assert int(resumed.optimizer.iterations.numpy()) == step  # the weights made exactly that many steps


class DropoutLinearTask(LinearTask):
    """LinearTask whose input passes a Keras Dropout layer: its masks come from a Keras seed generator."""

    name = "dropout_linear"

    def build(self, strategy):
        super().build(strategy)
        with strategy.scope():
            self.dropout = keras.Sequential([keras.layers.Input((1,)), keras.layers.Dropout(0.5)])

    def train_step(self, x):
        return super().train_step(tf.reshape(self.dropout(x[:, None], training=True), [-1]))

    def checkpoint_items(self):
        return dict(super().checkpoint_items(), dropout=self.dropout)


class AreaResizeLinearTask(LinearTask):
    """LinearTask whose input passes ResizeArea, an op XLA has no CPU kernel for."""

    name = "area_resize_linear"

    def train_step(self, x):
        x = tf.reshape(tf.image.resize(tf.reshape(x, [1, -1, 2, 1]), [4, 1], method="area"), [-1])
        return super().train_step(x)


def test_jit_compile_trains_and_an_op_xla_cannot_compile_is_a_clear_error(tmp_path):
    trainer = Trainer(LinearTask({"batch_size": 8}), str(tmp_path / "xla"), num_iters=4, jit_compile=True,
                      verbose=False)
    trainer.fit()
    assert trainer.task.w.numpy() != 0.0
    with pytest.raises(UserError, match=r"--jit_compile: XLA cannot compile the area_resize_linear train step .*"
                                        r"unsupported ops: ResizeArea\); run without --jit_compile"):
        Trainer(AreaResizeLinearTask({"batch_size": 8}), str(tmp_path / "area"), num_iters=4, jit_compile=True,
                verbose=False).fit()
    trainer = Trainer(AreaResizeLinearTask({"batch_size": 8}), str(tmp_path / "plain"), num_iters=4, verbose=False)
    trainer.fit()
    assert trainer.task.w.numpy() != 0.0


@pytest.mark.parametrize("task_cls", [LinearTask, DropoutLinearTask])
@pytest.mark.parametrize("stop_at", [6, 7])  # at a data-block boundary and inside a block
def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, task_cls, stop_at):
    """The data position (the step counter) and the Keras random states are in the checkpoint."""

    def run(workdir, num_iters):
        keras.utils.set_random_seed(99)  # a new process: whatever the random state, the run decides
        task = task_cls({"batch_size": 8})
        Trainer(task, str(workdir), num_iters=num_iters, seed=3, ckpt_every=100, steps_per_loop=4, data_block_steps=6,
                verbose=False).fit()
        return float(task.w.numpy()), int(task.calls.numpy())

    uninterrupted, _ = run(tmp_path / "a", 15)
    run(tmp_path / "b", stop_at)
    resumed, calls = run(tmp_path / "b", 15)
    assert calls == 15 - stop_at
    assert resumed == uninterrupted  # exactly


def test_step_is_traced_once_across_data_blocks(tmp_path):
    task = LinearTask({"batch_size": 8})
    trainer = Trainer(task, str(tmp_path), num_iters=12, log_every=100, eval_every=100, ckpt_every=100,
                      steps_per_loop=4, data_block_steps=3, verbose=False)
    loops = []
    make_loop = trainer._make_loop
    trainer._make_loop = lambda: loops.append(make_loop()) or loops[-1]
    trainer.fit()
    assert int(task.calls.numpy()) == 12 and task.traces == 1
    assert loops[0].experimental_get_tracing_count() == 1  # a new block's iterator reuses the traced loop


def test_checkpoints_without_random_states_still_restore(tmp_path):
    """A checkpoint written before the Keras random states were saved restores, the states left as they are."""
    task = DropoutLinearTask({"batch_size": 8})
    trainer = Trainer(task, str(tmp_path), num_iters=0, verbose=False)
    trainer.setup()
    task.w.assign(1.5)
    legacy = tf.train.Checkpoint(step=tf.Variable(4, dtype=tf.int64), **task.checkpoint_items())
    tf.train.CheckpointManager(legacy, str(tmp_path / "checkpoints"), max_to_keep=3).save(checkpoint_number=4)
    assert not any(n.startswith("keras_rng") for n, _ in tf.train.list_variables(str(tmp_path / "checkpoints" / "ckpt-4")))
    resumed = DropoutLinearTask({"batch_size": 8})
    step = Trainer(resumed, str(tmp_path), num_iters=10, verbose=False).setup()
    assert step == 4 and float(resumed.w.numpy()) == 1.5


class FailingEvalTask(LinearTask):
    """Its evaluation at ``fail_at`` dies (as a kill would) the first time."""

    name = "failing_eval"

    def evaluate(self, step):
        if step == self.config.get("fail_at"):
            raise SystemExit("killed")
        return super().evaluate(step)


def test_an_evaluation_killed_midway_is_redone_on_resume(tmp_path, capsys):
    trainer = Trainer(FailingEvalTask({"batch_size": 8, "fail_at": 10}), str(tmp_path), num_iters=20, eval_every=5,
                      ckpt_every=5, steps_per_loop=5, verbose=True)
    with pytest.raises(SystemExit):
        trainer.fit()  # checkpoint 10 saved, its evaluation lost
    task = FailingEvalTask({"batch_size": 8})
    Trainer(task, str(tmp_path), num_iters=20, eval_every=5, ckpt_every=5, steps_per_loop=5, verbose=True).fit()
    assert task.evals == [10, 15, 20]
    assert "the evaluation at step 10 did not finish: evaluating again" in capsys.readouterr().out
    assert [json.loads(x)["step"] for x in open(tmp_path / "metrics.jsonl")] == [5, 10, 15, 20]


def test_a_metrics_line_torn_by_a_kill_is_dropped(tmp_path, capsys):
    first = LinearTask({"batch_size": 8})
    Trainer(first, str(tmp_path), num_iters=10, eval_every=5, ckpt_every=5, verbose=False).fit()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 15, "test/e')  # a kill in the middle of the write
    task = LinearTask({"batch_size": 8})
    Trainer(task, str(tmp_path), num_iters=20, eval_every=5, ckpt_every=5, verbose=False).fit()
    assert [json.loads(x)["step"] for x in open(tmp_path / "metrics.jsonl")] == [5, 10, 15, 20]
    assert "dropped an unfinished last line" in capsys.readouterr().err
