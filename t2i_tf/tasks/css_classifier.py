"""The CSS semantic classifier as a Task: learns to read CSS scenes cell by cell, for the semantic metrics.

Trained by the one Trainer on captioned CSS records (datasets/css/captions.py: image + ``scene_cells``),
train split; evaluated on the test split, whose held-out (colour, shape) combinations never occur in
training. Its eval metrics (percent) are the semantic scores of t2i_tf/eval/css_semantic.py on real
rendered scenes — the ceiling any generated image can reach, and near 100 when the metric is to be
trusted — plus ``eval/heldout_combo_recall``, the recall of objects of the held-out combinations.

Other tasks load the trained classifier with :func:`t2i_tf.eval.css_semantic.load_css_classifier`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from t2i_tf.data.css_scene import HELD_OUT_COMBOS
from t2i_tf.data.css_cells import CODE_RULE, NUM_CELLS, combo_mask
from t2i_tf.data.pixels import from_uint8
from t2i_tf.data.records import read_info
from t2i_tf.data.t2i import SCENE_CELLS, t2i_dataset
from t2i_tf.errors import UserError
from t2i_tf.eval.css_semantic import semantic_scores
from t2i_tf.export.description import write_export_description
from t2i_tf.models.css_classifier import CssClassifier, cell_loss, logits_to_cells
from t2i_tf.tasks.base import Task

MODEL_KEYS = ("image_size", "width", "hidden_dim")  # what a checkpoint's shapes depend on


class CssClassifierTask(Task):
    """Trains a :class:`CssClassifier` on captioned CSS records with per-cell labels."""

    name = "css_classifier"
    architecture_keys = MODEL_KEYS

    # ------------------------------------------------------------------ setup
    def prepare(self, workdir: str) -> None:
        c = self.config
        self.image_size = int(c["image_size"])
        self.data_dir = c.get("data_dir")
        self.eval_split = "test"
        if not self.data_dir:  # restoring a trained classifier only, to read images (load_css_classifier)
            return
        self.info = read_info(self.data_dir)
        if (self.info.get("extra_int64") or {}).get(SCENE_CELLS) != NUM_CELLS:
            raise UserError(f"{self.data_dir} has no per-cell scene labels ({SCENE_CELLS}, {NUM_CELLS} int64 per "
                            f"image, listed in info.json): the CSS classifier needs captioned CSS records; convert "
                            f"with datasets/css/captions.py (it writes {SCENE_CELLS})")
        splits = self.info.get("splits", {})
        self.eval_split = "test" if "test" in splits else "train"

    def build(self, strategy: tf.distribute.Strategy) -> None:
        c = self.config
        self.strategy = strategy
        self.check_batch_split(strategy)
        with strategy.scope():
            self.model = CssClassifier(self.image_size, int(c["width"]), int(c["hidden_dim"]), name="css_classifier")
            self.model(tf.zeros([1, self.image_size, self.image_size, 3]), training=False)
            lr = float(c["learning_rate"])
            self.schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(int(c["num_iters"]), 1),
                                                                   alpha=float(c["lr_min_ratio"]))
            self.optimizer = keras.optimizers.Adam(self.schedule, name="optimizer")
            self.optimizer.build(self.model.trainable_variables)

    def checkpoint_items(self) -> dict[str, Any]:
        return {"classifier": self.model, "optimizer": self.optimizer}

    def learning_rate(self, step: tf.Tensor) -> tf.Tensor | None:
        return self.schedule(step)

    # ------------------------------------------------------------------- data
    def _dataset(self, split: str, batch_size: int, training: bool, input_context=None, seed: int = 0) -> tf.data.Dataset:
        if not self.data_dir:
            raise UserError("--data_dir is needed: captioned CSS records (python -m datasets.css.captions)")
        ds = t2i_dataset(self.data_dir, split, batch_size, self.image_size, training=training,
                         seed=seed, input_context=input_context, random_flip=False,
                         random_crop=bool(self.config["random_crop"]))
        return ds.map(lambda b: {"image": b["image"], "cells": b[SCENE_CELLS]}, num_parallel_calls=tf.data.AUTOTUNE)

    def train_dataset(self, input_context: tf.distribute.InputContext, seed: int) -> tf.data.Dataset:
        per_replica = input_context.get_per_replica_batch_size(self.global_batch_size)
        ds = self._dataset("train", per_replica, True, input_context, seed)
        lo, prob = min(int(self.config["rescale_min_size"]), self.image_size), float(self.config["rescale_prob"])
        if lo < self.image_size and prob > 0:
            seed = seed + 7 * input_context.input_pipeline_id
            ds = ds.enumerate().map(lambda i, b: self._rescale(i, b, lo, prob, seed),
                                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    def _rescale(self, index: tf.Tensor, batch: dict[str, tf.Tensor], lo: int, prob: float,
                 seed: int) -> dict[str, tf.Tensor]:
        """With probability ``prob``, the batch's images shrunk to a random size in [lo, S] and back up to S:
        the classifier also learns to read images generated smaller (e.g. a 32 px GAN's) and resized."""
        s = self.image_size
        u = tf.random.stateless_uniform([3], tf.stack([tf.constant(seed, tf.int64), index]))
        size = tf.stack([lo + tf.cast(tf.floor(u[1] * (s - lo + 1)), tf.int32)] * 2)
        images = batch["image"]

        def down_up() -> tf.Tensor:
            # Half the time point-sampled (like a scene rendered small), half antialiased (like a resize).
            small = tf.cond(u[2] < 0.5, lambda: tf.image.resize(images, size, method="nearest"),
                            lambda: tf.image.resize(images, size, method="bilinear", antialias=True))
            return tf.ensure_shape(tf.image.resize(small, [s, s], method="bilinear"), images.shape)

        return {**batch, "image": tf.cond(u[0] < prob, down_up, lambda: images)}

    # ------------------------------------------------------------------- step
    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One Adam step on the per-cell loss; returns the loss and the batch's per-cell accuracy."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.model(batch["image"], training=True)
            per_example = cell_loss(outputs, batch["cells"])
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        right = tf.cast(logits_to_cells(outputs) == batch["cells"], tf.float32)
        return {"loss": tf.reduce_mean(per_example), "cell_accuracy": tf.reduce_mean(right)}

    # ------------------------------------------------------------------- use
    def predict_cells(self, images: tf.Tensor) -> np.ndarray:
        """int64 [N, 9] cell codes of float images in [-1, 1] (any size)."""
        return self.model.predict_cells(images).numpy()

    def features(self, images: tf.Tensor) -> np.ndarray:
        """float32 [N, D] pooled classifier features of float images in [-1, 1] (for the domain FID)."""
        return self.model.features(images).numpy()

    @tf.function
    def _classify(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        out = self.model(images, training=False)
        return {"cells": logits_to_cells(out), "features": out["features"]}

    def classify_split(self, split: str, max_examples: int = 0) -> dict[str, np.ndarray]:
        """Predicted and true cells (and features) of a split's records: {"pred", "target", "features"}."""
        preds, targets, feats, n = [], [], [], 0
        for b in self._dataset(split, int(self.config["eval_batch_size"]), False):
            out = self._classify(b["image"])
            preds.append(out["cells"].numpy())
            feats.append(out["features"].numpy())
            targets.append(b["cells"].numpy())
            n += len(preds[-1])
            if max_examples and n >= max_examples:
                break
        cat = lambda xs: np.concatenate(xs)[:max_examples or None]  # noqa: E731
        return {"pred": cat(preds), "target": cat(targets), "features": cat(feats)}

    # ------------------------------------------------------------------- eval
    def evaluate(self, step: int) -> dict[str, float]:
        """Semantic scores (percent) of the classifier on the eval split's real scenes."""
        got = self.classify_split(self.eval_split, int(self.config["eval_max_examples"]))
        scores = semantic_scores(got["pred"], got["target"])
        keys = ("cell_accuracy", "scene_accuracy", "object_precision", "object_recall", "object_f1",
                "occupancy_accuracy", "size_accuracy", "color_accuracy", "shape_accuracy")
        metrics = {f"eval/{k}": 100.0 * scores[k] for k in keys}
        held = combo_mask(got["target"], HELD_OUT_COMBOS)
        if held.any():
            metrics["eval/heldout_combo_recall"] = 100.0 * float((got["pred"][held] == got["target"][held]).mean())
        return metrics

    # ------------------------------------------------------------------ export
    def export(self, path: str) -> dict[str, Any]:
        """SavedModel: ``classify(image uint8 [N, H, W, 3]) -> {"cells": int64 [N, 9], "features": float32 [N, D]}``."""
        module = CssClassifierServing(self.model)
        tf.saved_model.save(module, path, signatures={"classify": module.classify})
        description = {
            "model": "css_classifier", "image_size": self.image_size, "feature_dim": self.model.feature_dim,
            "cell_code": CODE_RULE,
            "signatures": {"classify": {"inputs": {"image": "uint8 [N,H,W,3] (any H, W: resized to "
                                                            f"{self.image_size})"},
                                        "outputs": {"cells": "int64 [N,9]",
                                                    "features": f"float32 [N,{self.model.feature_dim}]"}}},
        }
        write_export_description(path, description)
        return description


class CssClassifierServing(tf.Module):
    """The exported module: uint8 images in, cell codes and features out."""

    def __init__(self, model: CssClassifier):
        super().__init__(name="css_classifier_serving")
        self.model = model
        self.classify = tf.function(self._classify, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")])

    def _classify(self, image):
        x = from_uint8(image)
        out = self.model(x, training=False)
        return {"cells": logits_to_cells(out), "features": out["features"]}
