"""Benchmark: where the TIRG paper-preset training step spends its time, and two suspected slow spots as ablations.

Builds the ``--model=tirg --preset=paper`` model, optimizer and ``TirgTask.train_step`` as the task does
(ResNet-18 with torch padding, SyncBatchNorm, soft triplet with 3 negatives, TorchSGD), on random inputs
(batch 32, 64 px), and times, interleaved round-robin in one process (median ms/step over rounds):

- (a) the step as the project runs it;
- (b) every "pad, then valid conv" of the ResNet as one ``tf.nn.conv2d`` with explicit padding, and the
  -inf pad + valid 3x3/2 stem max-pool as one ``tf.nn.max_pool2d`` with explicit padding (same arithmetic);
- (c) the 4-D BatchNorms' training branch as one fused kernel (FusedBatchNormV3) instead of the two-pass
  statistics of SyncBatchNorm (a timing ablation only: it is not torch's two-pass variance);
- (d) both;

plus, for the breakdown, the project's forward only and forward + backward (no update), and the ResNet alone.
The variants are monkeypatched here at trace time; nothing in the project changes. Before timing, (b) and (c)
are checked against (a) on the image encoder (feature map, embedding and gradients of a fixed projection of
both, from the same weights; ``--float64`` also against a float64 evaluation). ``--profile=a,b`` also records a TF profiler trace of a few steps of those variants
and sums its kernel events by op type and by model part (ResNet, LSTM, composer, optimizer) and phase.

    python bench/tirg_step_profile.py --rounds=5 --steps=5 [--threads=1] [--variants=a,c,e] [--float64] [--profile=a,b]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import statistics
import tempfile
import time
import types
from collections import defaultdict

import common  # noqa: F401  (sets TF_ENABLE_ONEDNN_OPTS=1 etc. and sys.path before TensorFlow is imported)

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from configs import tirg as tirg_config  # noqa: E402
from t2i_tf.layers.batch_norm import SyncBatchNorm  # noqa: E402
from t2i_tf.models import resnet  # noqa: E402
from t2i_tf.tasks.tirg import TirgTask  # noqa: E402

VOCAB_SIZE = 64  # about the CSS vocabulary's size; only the embedding table's rows depend on it

# ------------------------------------------------------------------------------------------------ variants
_PROJECT = {
    "padded_call": resnet._Padded.__call__,
    "feature_map": resnet.ResNetEncoder.feature_map,
    "bn_call": SyncBatchNorm.call,
}


def _padded_call_one_op(self, x):
    """(b): symmetric zero pad + valid conv as one conv with explicit padding (same kernel variable)."""
    p, conv = self.pad, self.conv
    if not p:
        return conv(x)
    y = tf.nn.conv2d(x, conv.kernel.value, strides=list(conv.strides), padding=[[0, 0], [p, p], [p, p], [0, 0]],
                     dilations=list(conv.dilation_rate))
    if conv.use_bias:
        y = tf.nn.bias_add(y, conv.bias.value)
    return y if conv.activation is None else conv.activation(y)


def _padded_call_same_stride1(self, x):
    """(e): only the stride-1 pad + valid convs as one conv with padding 'SAME' (symmetric k // 2 there too)."""
    conv = self.conv
    if self.pad and tuple(conv.strides) == (1, 1) and tuple(conv.kernel_size) == (2 * self.pad + 1,) * 2:
        return tf.nn.conv2d(x, conv.kernel.value, strides=1, padding="SAME")
    return _PROJECT["padded_call"](self, x)


def _feature_map_one_op(self, images, training=None):
    """(b): ResNetEncoder.feature_map with the -inf pad + valid max-pool as one max-pool with explicit padding.

    TF's MaxPool with explicit padding ignores the padded cells (as -inf padding does); checked below.
    """
    if self.input_norm == "imagenet":
        mean = ops.convert_to_tensor(resnet.IMAGENET_MEAN, images.dtype)
        std = ops.convert_to_tensor(resnet.IMAGENET_STD, images.dtype)
        images = ((images + 1.0) * 0.5 - mean) / std
    x = ops.relu(self.stem_bn(self._stem_conv(images), training=training))
    if self.stem_pool is not None:
        if self.padding == "torch":
            pool = self.stem_pool
            x = tf.nn.max_pool2d(x, list(pool.pool_size), list(pool.strides), [[0, 0], [1, 1], [1, 1], [0, 0]])
        else:
            x = self.stem_pool(x)
    for name in self.block_names:
        x = getattr(self, name)(x, training=training)
    return x


def _bn_call_fused(self, inputs, training=None, mask=None):
    """(c): the training branch of a 4-D NHWC BatchNorm as one FusedBatchNormV3 (timing ablation)."""
    if not (training and self.trainable) or mask is not None or len(inputs.shape) != 4 or self.axis not in (-1, 3):
        return _PROJECT["bn_call"](self, inputs, training=training, mask=mask)
    empty = tf.zeros([0], inputs.dtype)
    # Raw op: tf.compat.v1.nn.fused_batch_norm would raise epsilon 1e-5 to 1.001e-5 (a cuDNN limit).
    y, mean, var, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=inputs, scale=self.gamma.value, offset=self.beta.value, mean=empty, variance=empty,
        epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
    n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), inputs.dtype)
    var = var * (n - 1.0) / n  # the kernel returns the Bessel-corrected variance; the project keeps the biased one
    m = self.momentum
    self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
    self.moving_variance.assign(self.moving_variance * m + var * (1.0 - m))
    return y


@contextlib.contextmanager
def variant(one_op_padding, fused_bn: bool):
    """Patch the project's classes for the duration of a trace (graphs keep what was traced).

    ``one_op_padding``: False (project), True (every padded conv and the max-pool) or "stride1" (stride-1 convs).
    """
    resnet._Padded.__call__ = {False: _PROJECT["padded_call"], True: _padded_call_one_op,
                               "stride1": _padded_call_same_stride1}[one_op_padding]
    resnet.ResNetEncoder.feature_map = _feature_map_one_op if one_op_padding is True else _PROJECT["feature_map"]
    SyncBatchNorm.call = _bn_call_fused if fused_bn else _PROJECT["bn_call"]
    try:
        yield
    finally:
        resnet._Padded.__call__ = _PROJECT["padded_call"]
        resnet.ResNetEncoder.feature_map = _PROJECT["feature_map"]
        SyncBatchNorm.call = _PROJECT["bn_call"]


VARIANTS = {  # name -> (one-op padding, fused BN)
    "(a) project": (False, False),
    "(b) one-op padding": (True, False),
    "(c) fused BN": (False, True),
    "(d) both": (True, True),
    "(e) 'SAME' on stride-1 convs only": ("stride1", False),
}


# ---------------------------------------------------------------------------------------------- the task
def make_task(batch: int, size: int) -> TirgTask:
    """A TirgTask at the paper preset, built as Trainer.setup builds it but without reading CSS records."""
    task = TirgTask(dict(tirg_config.PAPER, data_dir="unused", seed=0, batch_size=batch, image_size=size))
    task.tokenizer = types.SimpleNamespace(vocab_size=VOCAB_SIZE)  # all build() needs of prepare()
    task.image_size = size
    task.build(tf.distribute.get_strategy())
    return task


def random_batch(task: TirgTask, seed: int = 0) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(seed)
    b, s, t = task.global_batch_size, task.image_size, int(task.config["max_text_len"])
    image = lambda: tf.constant(rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32))  # noqa: E731
    return {"source": image(), "target": image(),
            "tokens": tf.constant(rng.integers(1, VOCAB_SIZE, (b, t)), tf.int64),
            "target_label": tf.constant(rng.integers(0, b // 2, (b,)), tf.int64)}


def step_functions(task: TirgTask, batch: dict[str, tf.Tensor], letters: str, breakdown: bool) -> dict:
    """name -> a concrete function of the batch (traced now, under its variant's patches)."""
    fns = {}
    spec = {k: tf.TensorSpec(v.shape, v.dtype) for k, v in batch.items()}

    def trace(name, fn, patches):
        with variant(*patches):
            fns[name] = tf.function(fn).get_concrete_function(spec)

    for name, patches in VARIANTS.items():
        if name == "(a) project" or name[1] in letters:
            trace(name, lambda b: task.train_step(b)["loss"], patches)
    if not breakdown:
        return fns

    model, variables = task.model, task.model.trainable_variables

    def loss(b):
        queries = model.compose(b["source"], b["tokens"], training=True)
        targets = model.embed_images(b["target"], training=True)
        per_example = task._per_example_loss(queries, targets, b["target_label"])
        return tf.nn.compute_average_loss(per_example, global_batch_size=task.global_batch_size)

    def loss_and_grads(b):
        with tf.GradientTape() as tape:
            value = loss(b)
        grads = tape.gradient(value, variables)
        return value + tf.add_n([tf.reduce_sum(g) for g in grads if g is not None]) * 0.0

    encoder = model.image_encoder
    enc_vars = encoder.trainable_variables

    def resnet_fwd(b):  # both images of the step through the ResNet, as compose + embed_images do
        return tf.reduce_sum(encoder.feature_map(b["source"], training=True)) + tf.reduce_sum(
            encoder(b["target"], training=True)[1])

    def resnet_fwd_bwd(b):
        with tf.GradientTape() as tape:
            value = resnet_fwd(b)
        grads = tape.gradient(value, enc_vars)
        return value + tf.add_n([tf.reduce_sum(g) for g in grads]) * 0.0

    trace("forward only", loss, VARIANTS["(a) project"])
    trace("forward+backward", loss_and_grads, VARIANTS["(a) project"])
    trace("ResNet forward (2x32 images)", resnet_fwd, VARIANTS["(a) project"])
    trace("ResNet forward+backward", resnet_fwd_bwd, VARIANTS["(a) project"])
    return fns


# ---------------------------------------------------------------------------------------------- checks
def encoder_outputs(task: TirgTask, images: tf.Tensor, patches) -> list[np.ndarray]:
    """Feature map, embedding and gradients of a fixed random projection of both, in training mode."""
    encoder = task.model.image_encoder
    rng = np.random.default_rng(1)
    fmap_w = tf.constant(rng.standard_normal([1, 2, 2, encoder.feature_channels]), images.dtype)
    emb_w = tf.constant(rng.standard_normal([1, encoder.fc.units]), images.dtype)
    moving = [v for v in encoder.non_trainable_variables]
    saved = [v.numpy() for v in moving]

    def fn(x):
        with tf.GradientTape() as tape:
            fmap, emb = encoder(x, training=True)
            value = tf.reduce_sum(fmap * fmap_w) + tf.reduce_sum(emb * emb_w)
        return [fmap, emb] + tape.gradient(value, encoder.trainable_variables) + [tf.identity(v.value) for v in moving]

    with variant(*patches):
        out = [np.asarray(t) for t in tf.function(fn)(images)]
    for v, s in zip(moving, saved):  # leave the BN statistics as they were
        v.assign(s)
    names = ["feature map", "embedding"] + [f"d/{v.path}" for v in encoder.trainable_variables] + [
        f"moving stats ({v.path})" for v in moving]
    return list(zip(names, out))


def compare(reference, other) -> dict[str, float]:
    """Largest abs and relative (to the reference tensor's max abs) differences, over outputs / grads / stats."""
    worst = {"outputs abs": 0.0, "outputs rel": 0.0, "grads abs": 0.0, "grads rel": 0.0, "stats rel": 0.0}
    grad_rels = []
    for (name, a), (_, b) in zip(reference, other):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        diff = float(np.max(np.abs(a - b)))
        rel = diff / max(float(np.max(np.abs(a))), 1e-30)
        kind = "grads" if name.startswith("d/") else "stats" if name.startswith("moving") else "outputs"
        if kind != "stats":
            worst[f"{kind} abs"] = max(worst[f"{kind} abs"], diff)
        worst[f"{kind} rel"] = max(worst[f"{kind} rel"], rel)
        if kind == "grads":
            grad_rels.append(rel)
    worst["grads median rel"] = float(np.median(grad_rels))
    return worst


# ---------------------------------------------------------------------------------------------- profile
def _part(op_name: str) -> str:
    n = op_name.lower()
    if "torch_sgd" in n:
        return "optimizer"
    for key, part in (("text_encoder", "text encoder (LSTM)"), ("composer", "TIRG composer"),
                      ("image_encoder", "ResNet"), ("stage", "ResNet"), ("stem_", "ResNet")):
        if key in n:
            return part
    first = n.replace("gradient_tape/", "").split("/")[0]
    return "ResNet" if first.startswith(("fc", "pool")) else "loss, normalisation, other"


def profile_breakdown(name: str, fn, batch, steps: int) -> None:
    """Run ``steps`` steps under the TF profiler and sum the trace's op events by op type and by model part."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        t = time.perf_counter()
        for _ in range(steps):
            fn(batch).numpy()
        wall = time.perf_counter() - t
        tf.profiler.experimental.stop()
        paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        space = xplane_pb2.XSpace()
        with open(paths[0], "rb") as f:
            space.ParseFromString(f.read())
    by_type, by_part, other = defaultdict(float), defaultdict(float), defaultdict(float)
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        meta = plane.event_metadata
        for line in plane.lines:
            for ev in line.events:
                event = meta[ev.metadata_id].name
                if ":" not in event or "::" in event or " " in event or event.startswith("__inference"):
                    continue  # executor / function wrappers, not kernels
                op_name, op_type = event.rsplit(":", 1)
                if not op_type or op_type.endswith("PartitionedCall") or op_type in ("While", "If"):
                    continue
                ms = ev.duration_ps / 1e9 / steps
                by_type[op_type] += ms
                phase = "backward" if "gradient_tape" in op_name else "forward"
                part = _part(op_name)
                by_part[part if part == "optimizer" else f"{part}, {phase}"] += ms
                if part.startswith("loss"):
                    other[op_name.split("/")[0 if not op_name.startswith("gradient_tape") else 1]] += ms
    total = sum(by_type.values())
    print(f"\nprofiler, {name}: {steps} steps, wall {1000 * wall / steps:.0f} ms/step (with tracing overhead); "
          f"kernel events sum to {total:.0f} ms/step\n")
    if not total:
        print("(no op events found in the trace)")
        return
    table = lambda d, key, n: common.print_table(  # noqa: E731
        [{key: k, "ms/step": f"{v:.1f}", "share": f"{100 * v / total:.1f}%"}
         for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:n]], [key, "ms/step", "share"])
    table(by_type, "op type", 16)
    print()
    table(by_part, "part, phase", 12)
    print("\nlargest name scopes in 'loss, normalisation, other': " + ", ".join(
        f"{k} {v:.0f} ms" for k, v in sorted(other.items(), key=lambda kv: -kv[1])[:6]))


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per function per round")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: TF's default)")
    parser.add_argument("--variants", default="a,b,c,d,e", help="which step variants to time ((a) always)")
    parser.add_argument("--float64", action="store_true", help="also compare every variant with a float64 encoder")
    parser.add_argument("--no_breakdown", action="store_true", help="skip the forward / backward / ResNet timings")
    parser.add_argument("--profile", default="", help="variants to trace with the TF profiler after timing, e.g. a,b")
    parser.add_argument("--profile_steps", type=int, default=3)
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")  # the check traces one small function per variant on purpose
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(args.threads, 2))

    task = make_task(args.batch, args.size)
    batch = random_batch(task)

    print("numerical check on the image encoder (training mode, same weights and images); per tensor max abs diff "
          "and that over the tensor's max abs, worst over tensors:")
    checked = {name: p for name, p in VARIANTS.items() if name == "(a) project" or name[1] in args.variants}
    outs = {name: encoder_outputs(task, batch["source"], p) for name, p in checked.items()}
    rows = [{"variant": name, **{k: f"{v:.2e}" for k, v in compare(outs["(a) project"], out).items()}}
            for name, out in outs.items() if name != "(a) project"]
    if rows:
        common.print_table(rows, list(rows[0]))
    if args.float64:  # the same encoder, weights and images in float64, as a yardstick for float32 round-off
        keras.config.set_floatx("float64")
        keras.config.set_dtype_policy("float64")
        reference = encoder_outputs(make_task(args.batch, args.size), tf.cast(batch["source"], tf.float64),
                                    VARIANTS["(a) project"])
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")
        print("\nthe same against a float64 evaluation of the project's encoder:")
        rows = [{"variant": name, **{k: f"{v:.2e}" for k, v in compare(reference, out).items()}}
                for name, out in outs.items()]
        common.print_table(rows, list(rows[0]))

    fns = step_functions(task, batch, args.variants, not args.no_breakdown)
    # Every timed block starts from the same weights, optimizer and BN state (the loss on random data diverges
    # within a few dozen steps; each variant then runs the same trajectory).
    state = task.model.variables + task.optimizer.variables
    snapshot = [v.numpy() for v in state]

    def restore():
        for v, x in zip(state, snapshot):
            v.assign(x)

    for fn in fns.values():  # warm-up (oneDNN primitive caches)
        restore()
        fn(batch).numpy()
        fn(batch).numpy()
    restore()
    first = float(fns["(a) project"](batch))
    times = defaultdict(list)
    for r in range(args.rounds):
        for name, fn in fns.items():
            restore()
            t = time.perf_counter()
            for _ in range(args.steps):
                value = fn(batch)
            value.numpy()
            if name == "(a) project":
                last = float(value)
            times[name].append(1000 * (time.perf_counter() - t) / args.steps)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k.split(' ')[0]} {v[-1]:.0f}" for k, v in times.items()),
              flush=True)
    base = times["(a) project"]
    rows = []
    for name, ts in times.items():
        ratios = [t / b for t, b in zip(ts, base)]  # per round: same window, so the load mostly cancels
        rows.append({"function": name, "median ms/step": f"{statistics.median(ts):.0f}",
                     "min": f"{min(ts):.0f}", "max": f"{max(ts):.0f}",
                     "median ratio to (a) per round": f"{statistics.median(ratios):.3f}"})
    print(f"\ntensorflow {tf.__version__}, oneDNN {os.environ.get('TF_ENABLE_ONEDNN_OPTS')}, threads "
          f"{args.threads or 'default'}, batch {args.batch}, {args.size} px, {args.rounds} rounds x {args.steps} steps, "
          f"(a) loss: first step {first:.4f}, last timed {last:.4f}\n")
    common.print_table(rows, list(rows[0]))

    for letter in filter(None, args.profile.split(",")):
        name = next(k for k in VARIANTS if k.startswith(f"({letter})"))
        restore()
        profile_breakdown(name, fns[name], batch, args.profile_steps)


if __name__ == "__main__":
    main()
