"""SRCNN super-resolution (Dong et al. 2014/2016) as a Task for the one Trainer: upscales generated images ``scale``x.

Training data are the high-resolution images of any text-to-image record set (captions are not used).
Each example's low-resolution input is made the paper's way (:func:`degrade`): downscale by ``scale``
with antialiasing, bicubic-upscale back. The degradation (and an optional random ``patch_size`` crop,
the paper's 33x33 sub-images) happens in tf.data, so ``train_step`` is just the network, an MSE loss
and the optimizer (and compiles with XLA).

How the HR images are sampled (``hr_sampling``):

- ``native``: the records' images resized to ``image_size`` (an identity when they are stored at that
  size, as captioned CSS is), shuffled through a buffer of ``shuffle_buffer`` decoded images, flipped
  when ``random_flip``. Use it when the records hold images at the training size: the reader's
  training augmentation (a 76/64 bilinear upscale and a random crop) would blur them, and a model
  trained on blurred targets learns to blur (bicubic x4 PSNR on CSS 128: 27.4 dB on those crops,
  24.9 dB on the sharp originals). The reader is used in its one-pass, file-order evaluation mode
  (repeated), so the buffer only mixes neighbouring records;
- ``crop``: the reader's training augmentation (random crop, flip); for records stored larger than
  ``image_size`` (CUB, Flowers), where it loses no sharpness;
- ``auto``: ``native`` when the records' info.json says they were rendered at ``image_size``, else ``crop``.

Optimizer: ``adam`` (default; one learning rate, or ``last_layer_lr_scale`` times it for the last layer)
or ``sgd``, the paper's recipe: momentum 0.9, 1e-4 on the first two layers and 1e-5 on the last
(``learning_rate=1e-4, last_layer_lr_scale=0.1``). Each layer group has its own optimizer so the
per-layer rates also hold for Adam (whose updates are invariant to gradient scaling).

The loss is the per-example MSE reduced with ``tf.nn.compute_average_loss(global_batch_size=...)``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from t2i_tf.data.pixels import from_uint8, to_uint8
from t2i_tf.data.records import read_info
from t2i_tf.data.t2i import t2i_dataset
from t2i_tf.errors import UserError
from t2i_tf.export.description import write_export_description
from t2i_tf.models.srcnn import SRCNN, bicubic_upscale, degrade, psnr, psnr_from_mse
from t2i_tf.tasks.base import Task

ARCHITECTURE_KEYS = ("scale", "n1", "n2", "f1", "f2", "f3", "residual", "optimizer")


class SrcnnTask(Task):
    """Trains SRCNN to restore ``image_size`` images from their ``image_size / scale`` versions."""

    name = "srcnn"
    architecture_keys = ARCHITECTURE_KEYS

    # ------------------------------------------------------------------ setup
    def prepare(self, workdir: str) -> None:
        c = self.config
        self.scale = int(c["scale"])
        self.image_size = int(c["image_size"])
        if self.image_size < self.scale or self.image_size % self.scale:
            raise UserError(f"--image_size must be a positive multiple of --scale={self.scale} (it is the "
                            f"high-resolution size); got {c['image_size']}")
        self.patch_size = int(c["patch_size"])
        if not 0 <= self.patch_size <= self.image_size:
            raise UserError(f"--patch_size must be 0 (whole images) or in 1..--image_size={self.image_size}; "
                            f"got {c['patch_size']}")

        self.data_dir = c.get("data_dir")
        self.hr_sampling = "native"
        self.eval_split = "train"
        if self.data_dir:  # None when only restoring a model to upscale with (load_upscaler)
            self.info = read_info(self.data_dir)
            if self.info.get("format") != "t2i-v1":
                raise UserError(f"{self.data_dir} is not a text-to-image record set (info.json format "
                                f"{self.info.get('format')!r}, expected 't2i-v1'): convert it with "
                                "datasets/css/captions.py, datasets/cub or datasets/flowers")
            self.eval_split = "test" if "test" in self.info.get("splits", {}) else "train"
            self.hr_sampling = c["hr_sampling"]
            if self.hr_sampling == "auto":
                self.hr_sampling = "native" if self.info.get("image_size") == self.image_size else "crop"
        self._eval_cache: list[tuple[tf.Tensor, tf.Tensor]] | None = None

    def _schedule(self, learning_rate: float):
        c = self.config
        every = int(c["lr_decay_every"])
        if every <= 0 or float(c["lr_decay"]) == 1.0:
            return float(learning_rate)
        return keras.optimizers.schedules.ExponentialDecay(float(learning_rate), decay_steps=every,
                                                           decay_rate=float(c["lr_decay"]), staircase=True)

    def _optimizer(self, schedule, name: str) -> keras.optimizers.Optimizer:
        c = self.config
        if c["optimizer"] == "sgd":
            return keras.optimizers.SGD(learning_rate=schedule, momentum=float(c["momentum"]), name=name)
        return keras.optimizers.Adam(learning_rate=schedule, beta_1=float(c["beta1"]), beta_2=float(c["beta2"]),
                                     name=name)

    def build(self, strategy: tf.distribute.Strategy) -> None:
        c = self.config
        self.strategy = strategy
        self.check_batch_split(strategy)
        with strategy.scope():
            self.model = SRCNN(int(c["n1"]), int(c["n2"]), int(c["f1"]), int(c["f2"]), int(c["f3"]),
                               residual=bool(c["residual"]), init=c["init"], name="srcnn")
            self.model(tf.zeros([1, 8, 8, 3]), training=False)
            lr = float(c["learning_rate"])
            self.schedule = self._schedule(lr)
            self.optimizer = self._optimizer(self.schedule, "optimizer")
            self.last_optimizer = self._optimizer(self._schedule(lr * float(c["last_layer_lr_scale"])),
                                                  "last_optimizer")
            self.optimizer.build(self.model.hidden_variables())
            self.last_optimizer.build(self.model.last_variables())
        self.serving = SrcnnServing(self.model, self.scale)
        self._restore_fn = tf.function(self._restore, reduce_retracing=True)

    def checkpoint_items(self) -> dict[str, Any]:
        return {"model": self.model, "optimizer": self.optimizer, "last_optimizer": self.last_optimizer}

    def learning_rate(self, step: tf.Tensor) -> tf.Tensor | None:
        """The first two layers' learning rate (the last layer's is ``last_layer_lr_scale`` times it)."""
        sched = self.schedule
        return sched(step) if callable(sched) else tf.constant(sched)

    # ------------------------------------------------------------------- data
    def _require_data(self) -> str:
        if not self.data_dir:
            raise UserError("SRCNN needs --data_dir (text-to-image records) to train or evaluate")
        return self.data_dir

    def train_dataset(self, input_context: tf.distribute.InputContext, seed: int) -> tf.data.Dataset:
        """Per-replica batches ``{"image": HR, "input": degraded}``, both ``[B, P, P, 3]`` (P: patch or image size)."""
        data_dir = self._require_data()
        c = self.config
        per_replica = input_context.get_per_replica_batch_size(self.global_batch_size)
        seed = seed + 100_003 * input_context.input_pipeline_id
        size, scale, method, patch = self.image_size, self.scale, c["downscale_method"], self.patch_size
        flip = bool(c["random_flip"])
        if self.hr_sampling == "crop":
            ds = t2i_dataset(data_dir, "train", per_replica, size, training=True, seed=seed,
                             input_context=input_context, random_flip=flip)
            images = ds.map(lambda b: b["image"]).unbatch()
        else:
            ds = t2i_dataset(data_dir, "train", per_replica, size, training=False, seed=seed,
                             input_context=input_context).repeat()
            images = ds.map(lambda b: b["image"]).unbatch()
            images = images.shuffle(int(c["shuffle_buffer"]), seed=seed, reshuffle_each_iteration=True)
        native_flip = flip and self.hr_sampling == "native"

        def example(index: tf.Tensor, hr: tf.Tensor) -> dict[str, tf.Tensor]:
            if native_flip:
                hr = tf.image.stateless_random_flip_left_right(hr, seed=tf.stack([tf.constant(seed, tf.int64), index]))
            x = degrade(hr[None], scale, method)[0]
            if patch:
                both = tf.image.stateless_random_crop(tf.concat([hr, x], axis=-1), [patch, patch, 6],
                                                      seed=tf.stack([tf.constant(seed + 1, tf.int64), index]))
                hr, x = both[..., :3], both[..., 3:]
            return {"image": hr, "input": x}

        ds = images.enumerate().map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        options = tf.data.Options()
        options.deterministic = True
        return ds.batch(per_replica, drop_remainder=True).with_options(options).prefetch(tf.data.AUTOTUNE)

    # ------------------------------------------------------------------- step
    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One update of both layer groups on the per-example MSE; logs the batch's PSNR and bicubic's."""
        hr, x = batch["image"], batch["input"]
        hidden, last = self.model.hidden_variables(), self.model.last_variables()
        with tf.GradientTape() as tape:
            sr = self.model(x, training=True)
            per_example = tf.reduce_mean(tf.square(sr - hr), axis=[1, 2, 3])
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)
        grads = tape.gradient(loss, hidden + last)
        self.optimizer.apply_gradients(zip(grads[: len(hidden)], hidden))
        self.last_optimizer.apply_gradients(zip(grads[len(hidden):], last))
        mse = tf.reduce_mean(per_example)
        bicubic_mse = tf.reduce_mean(tf.square(x - hr))
        return {"mse": mse, "psnr": psnr_from_mse(mse), "psnr_bicubic": psnr_from_mse(bicubic_mse)}

    # ------------------------------------------------------------------- eval
    def _restore(self, x: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(self.model(x, training=False), -1.0, 1.0)

    def _eval_data(self) -> list[tuple[tf.Tensor, tf.Tensor]]:
        """``eval_batches`` fixed held-out batches of (HR image, degraded input), whole images."""
        if self._eval_cache is None:
            c = self.config
            ds = t2i_dataset(self._require_data(), self.eval_split, int(c["eval_batch_size"]), self.image_size,
                             training=False, seed=0)
            self._eval_cache = [(b["image"], degrade(b["image"], self.scale, c["downscale_method"]))
                                for b in ds.take(int(c["eval_batches"]))]
        return self._eval_cache

    def evaluate(self, step: int) -> dict[str, float]:
        """Mean per-image PSNR (dB, RGB, whole image) of SRCNN and of bicubic on the held-out batches."""
        srcnn, bicubic = [], []
        for hr, x in self._eval_data():
            srcnn.append(psnr(self._restore_fn(x), hr))
            bicubic.append(psnr(x, hr))
        s = float(tf.reduce_mean(tf.concat(srcnn, 0)))
        b = float(tf.reduce_mean(tf.concat(bicubic, 0)))
        return {"eval/psnr_srcnn": s, "eval/psnr_bicubic": b, "eval/psnr_gain": s - b}

    def summaries(self, step: int) -> None:
        """Held-out images as rows of [bicubic | srcnn | original]."""
        hr, x = self._eval_data()[0]
        n = min(int(self.config["num_samples"]), int(hr.shape[0]))
        hr, x = hr[:n], x[:n]
        rows = tf.concat([x, self._restore_fn(x), hr], axis=2)  # [n, S, 3S, 3]
        grid = tf.reshape(rows, [1, n * self.image_size, 3 * self.image_size, 3])
        tf.summary.image("bicubic_srcnn_original", to_uint8(grid), max_outputs=1)

    # ------------------------------------------------------------------ use
    def upscale(self, images_uint8: tf.Tensor | np.ndarray) -> tf.Tensor:
        """uint8 images ``[N, H, W, 3]`` (or one ``[H, W, 3]``) -> uint8 ``scale`` times larger, in chunks of
        ``upscale_batch_size``; any H, W."""
        images = tf.convert_to_tensor(images_uint8)
        if images.dtype != tf.uint8:
            raise UserError(f"upscale takes uint8 images; got {images.dtype.name}")
        single = images.shape.rank == 3
        if single:
            images = images[None]
        if images.shape.rank != 4 or images.shape[-1] != 3:
            raise UserError(f"upscale takes RGB images [N, H, W, 3] or [H, W, 3]; got shape {images.shape}")
        n, h, w = int(images.shape[0]), int(images.shape[1]), int(images.shape[2])
        chunk = int(self.config["upscale_batch_size"])
        parts = [self.serving.upscale(images[i: i + chunk])["images"] for i in range(0, n, chunk)]
        out = tf.concat(parts, 0) if parts else tf.zeros([0, h * self.scale, w * self.scale, 3], tf.uint8)
        return out[0] if single else out

    def export(self, path: str) -> dict[str, Any]:
        """SavedModel with ``upscale(image: uint8 [N, H, W, 3]) -> {"images": uint8 [N, scale*H, scale*W, 3]}``."""
        tf.saved_model.save(self.serving, path, signatures={"upscale": self.serving.upscale})
        c = self.config
        s = self.scale
        description = {
            "model": "srcnn", "scale": s, "image_size": self.image_size,
            "architecture": f"{c['f1']}-{c['f2']}-{c['f3']}, n1={c['n1']}, n2={c['n2']}, "
                            + ("residual on bicubic" if c["residual"] else "direct"),
            "signatures": {"upscale": {"inputs": {"image": "uint8 [N,H,W,3]"},
                                       "outputs": {"images": f"uint8 [N,{s}*H,{s}*W,3]"}}},
            "note": f"fully convolutional: any H, W; trained to restore {self.image_size} px images from "
                    f"{self.image_size // s} px (bicubic x{s}, then SRCNN)",
        }
        write_export_description(path, description)
        return description


class SrcnnServing(tf.Module):
    """The exported module: bicubic x``scale`` then SRCNN, uint8 in and out."""

    def __init__(self, model: SRCNN, scale: int):
        super().__init__(name="srcnn_serving")
        self.model = model
        self.scale = int(scale)
        self.upscale = tf.function(self._upscale, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")])

    def _upscale(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        x = bicubic_upscale(from_uint8(image), self.scale)
        return {"images": to_uint8(self.model(x, training=False))}


def load_upscaler(workdir: str) -> tuple[SrcnnTask, int]:
    """The SRCNN trained in ``workdir`` restored from its latest checkpoint, ready for :meth:`SrcnnTask.upscale`;
    returns ``(task, checkpoint step)``. Needs no data: the architecture comes from the workdir's config.json."""
    from t2i_tf.runs.restore import restore_task

    return restore_task("srcnn", workdir, data_dir=None)
