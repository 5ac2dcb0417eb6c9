"""StackGAN Stage-I conditioned on a TIRG composed feature: *generate* the modified CSS image.

The query of composed retrieval (a source image + "make top-left circle red") goes through a trained,
frozen TIRG model (``tirg_workdir``, a ``--model=tirg`` run); its composed feature phi(x, t) replaces the
sentence embedding of text-to-image StackGAN: conditioning augmentation -> Stage-I generator -> the target
image at ``image_size``. D is matching-aware on the same feature (real target / another query's target /
generated), as in :mod:`t2i_tf.tasks.stackgan`.

``source_skip`` (the cpu preset): the generator also sees the source image itself, U-Net style
(:class:`t2i_tf.models.stackgan_tirg.SourceSkipGenerator`); a CSS modification changes one object, so the source
holds most of the target and the composed feature has to say only what changes. The task's condition is then
``[composed feature | the source at the generator's size, flattened]`` (:class:`TirgSourceConditioner`), so the
GAN step, generation and export pass one tensor as before; D stays conditioned on the CA mean of the composed
feature alone.

Evaluation (``--mode=eval``): held-out queries in file order; CSS semantic accuracy of the generated image
against the *target* scene's cells (t2i_tf/datasets/css/convert.py stores them per image), R-precision in TIRG's
own retrieval space (the generated image's TIRG embedding ranked against its query's composed feature
and 99 queries with other target labels), domain FID. :meth:`StackGanTirgTask.model_eval_metrics` adds the
copy-the-source reference (the source scene scored against the target scene), overall and on the edited cells
(where source and target scenes differ); :func:`edit_scores` scores predicted cells on those edited cells.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

from t2i_tf.data import css
from t2i_tf.data.pixels import area_resize, from_uint8, to_uint8
from t2i_tf.data.text import KNOWN_WORDS_RULE, known_word_counts
from t2i_tf.errors import UserError
from t2i_tf.eval.css_semantic import semantic_scores
from t2i_tf.export.description import write_export_description
from t2i_tf.models.noise import NOISE_RULE, generator_noise
from t2i_tf.models.stackgan import StageIDiscriminator
from t2i_tf.models.stackgan_tirg import SourceSkipGenerator
from t2i_tf.runs.config import load_run_config
from t2i_tf.runs.restore import chained_run_config
from t2i_tf.tasks.conditioners import TirgConditioner
from t2i_tf.tasks.stackgan import StackGanTask


def _prf(tp: int, n_pred: int, n_target: int) -> dict[str, float]:
    """Object precision / recall / F1 with css_semantic's conventions (an empty side scores 1)."""
    p = tp / n_pred if n_pred else 1.0
    r = tp / n_target if n_target else 1.0
    return {"object_precision": p, "object_recall": r, "object_f1": 2 * p * r / (p + r) if p + r > 0 else 0.0}


def edit_scores(pred_cells: np.ndarray, source_cells: np.ndarray, target_cells: np.ndarray) -> dict[str, float]:
    """Predicted cell codes (int [N, 9]) scored on the cells a query edits (source and target scene differ there) and
    on the cells it keeps: ``edited_cell_accuracy`` (the edited cell's code exactly right, an emptied cell included),
    ``edited_object_*`` (objects of css_semantic, counted on edited cells only), ``kept_cell_accuracy``, and the
    number of edited cells (``edited_cells``). A copy of the source scores 0 on edited cells by construction."""
    pred, source, target = (np.asarray(a, np.int64) for a in (pred_cells, source_cells, target_cells))
    if not pred.shape == source.shape == target.shape or pred.ndim != 2:
        raise ValueError(f"cell arrays must be [N, 9] alike; got {pred.shape}, {source.shape}, {target.shape}")
    edited = source != target
    right = pred == target
    n_edit, n_kept = int(edited.sum()), int((~edited).sum())
    out = {"edited_cells": float(n_edit),
           "edited_cell_accuracy": float(right[edited].mean()) if n_edit else 1.0,
           "kept_cell_accuracy": float(right[~edited].mean()) if n_kept else 1.0}
    tp = int((right & edited & (target > 0)).sum())
    prf = _prf(tp, int(((pred > 0) & edited).sum()), int(((target > 0) & edited).sum()))
    out.update({f"edited_{k}": v for k, v in prf.items()})
    return out


def edit_l1(fake: tf.Tensor, target: tf.Tensor, source: tf.Tensor, threshold: float = 0.1) -> tf.Tensor:
    """Per-example mean |fake - target| over the pixels where target and source differ by more than ``threshold``
    in some channel (0 for an example with no such pixel)."""
    fake, target, source = (tf.cast(x, tf.float32) for x in (fake, target, source))
    mask = tf.cast(tf.reduce_max(tf.abs(target - source), axis=-1, keepdims=True) > threshold, tf.float32)
    diff = tf.reduce_sum(tf.abs(fake - target) * mask, axis=[1, 2, 3])
    return diff / tf.maximum(3.0 * tf.reduce_sum(mask, axis=[1, 2, 3]), 1.0)


class TirgSourceConditioner(TirgConditioner):
    """``source_skip``: the composed feature and the source image at ``image_size``, packed in one vector
    ``[feature (dim) | source pixels (image_size^2 * 3)]``; :meth:`split` unpacks it."""

    def __init__(self, dim: int, image_size: int):
        super().__init__(dim)
        self.feature_dim, self.image_size = int(dim), int(image_size)
        self.dim = self.feature_dim + self.image_size ** 2 * 3

    def source_at_size(self, source: tf.Tensor) -> tf.Tensor:
        """Records-size float sources -> the generator's size (area averaging, as the targets)."""
        return area_resize(source, self.image_size)

    def condition(self, batch: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        feature = super().condition(batch, training)
        source = tf.cast(self.source_at_size(batch["source"]), feature.dtype)
        return tf.concat([feature, tf.reshape(source, [-1, self.image_size ** 2 * 3])], axis=-1)

    def split(self, cond: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(composed feature [N, dim], source [N, S, S, 3])."""
        s = self.image_size
        return cond[:, :self.feature_dim], tf.reshape(cond[:, self.feature_dim:], [-1, s, s, 3])

    def matching_features(self, images, batch):
        """R-precision in TIRG's space: the composed feature alone."""
        s = self.tirg.image_size
        resized = tf.image.resize(images, [s, s], method="bilinear") if images.shape[1] != s else images
        return (self.tirg.model.embed_images(resized, training=False).numpy(),
                TirgConditioner.condition(self, batch).numpy())


class StackGanTirgTask(StackGanTask):
    """Stage-I StackGAN from (source image, modification text) through a frozen TIRG, on converted CSS."""

    name = "stackgan_tirg"
    takes_source_image = True
    fixed_settings: ClassVar[dict[str, Any]] = dict(StackGanTask.fixed_settings, stage=1)
    architecture_keys = ("image_size", "ngf", "ndf", "z_dim", "c_dim", "ca_activation", "source_skip")

    @classmethod
    def default_workdir(cls, config: dict[str, Any]) -> str:
        return "runs/stackgan_tirg"

    def prepare(self, workdir: str) -> None:
        """A run saved before ``source_skip`` existed is the plain generator (whatever the preset says now)."""
        saved = load_run_config(workdir, self.name) if workdir and os.path.isdir(workdir) else None
        if saved is not None and "source_skip" not in saved:
            self.config["source_skip"] = False
        super().prepare(workdir)

    @classmethod
    def records_image_size(cls, config: dict[str, Any]) -> int:
        """The TIRG run's size: TIRG reads the same records (its source images)."""
        tirg = load_run_config(config["tirg_workdir"], "tirg") if os.path.isdir(config["tirg_workdir"]) else None
        return int(tirg["image_size"]) if tirg else 64

    def _prepare_records(self) -> None:
        """Converted CSS records (as --model=tirg reads): queries, gallery images and their scene cells."""
        self.data_dir = self.config["data_dir"]
        info = css.read_info(self.data_dir)
        if info.get("dataset") != "css":
            raise UserError(f"{self.data_dir} holds dataset {info.get('dataset')!r}; --model=stackgan_tirg needs "
                            "converted CSS records (as --model=tirg)")
        self.records_size = int(info["image_size"])
        self.eval_split = "test" if "test" in info.get("splits", {}) else "train"
        self._data: dict[str, Any] = {}

    def make_conditioner(self, workdir: str) -> TirgConditioner:
        """The TIRG run's composed feature (the run itself is restored in build)."""
        tirg_config = chained_run_config(self.config.get("tirg_workdir") or "", "tirg", "tirg_workdir", "TIRG",
                                         "--model=stackgan_tirg")
        if self.source_skip:
            return TirgSourceConditioner(int(tirg_config["embed_dim"]), int(self.config["image_size"]))
        return TirgConditioner(int(tirg_config["embed_dim"]))

    @property
    def source_skip(self) -> bool:
        return bool(self.config.get("source_skip", False))

    def _build_gan(self) -> None:
        from t2i_tf.runs.restore import restore_task

        self.tirg, self.tirg_step = restore_task("tirg", self.config["tirg_workdir"], strategy=self.strategy,
                                                 data_dir=self.data_dir)
        if self.tirg.image_size != self.records_size:
            raise UserError(f"the TIRG run in {self.config['tirg_workdir']} reads {self.tirg.image_size} px images; "
                            f"{self.data_dir} holds {self.records_size} px ones")
        self.conditioner.attach(self.tirg)
        if not self.source_skip:
            super()._build_gan()
            return
        c, s, cd = self.config, self.image_size, int(self.config["c_dim"])
        self.generator = SourceSkipGenerator(s, int(c["ngf"]), int(c["z_dim"]), cd, ca_activation=c["ca_activation"],
                                             name="generator")
        self.discriminator = StageIDiscriminator(s, int(c["ndf"]), cd, name="discriminator")
        self.generator((tf.zeros([2, int(c["z_dim"])]), tf.zeros([2, self.conditioner.feature_dim]),
                        tf.zeros([2, s, s, 3]), None))
        self.discriminator((tf.zeros([2, s, s, 3]), tf.zeros([2, cd])))

    # ------------------------------------------------------------- forward
    def stacked_forward(self, z: tf.Tensor, cond: tf.Tensor, training: bool = False):
        """``source_skip``: the generator reads the composed feature and the source, both packed in ``cond``."""
        if not self.source_skip:
            return super().stacked_forward(z, cond, training)
        feature, source = self.conditioner.split(cond)
        return self.generator((z, feature, source, self._ca_noise(tf.shape(z)[0], training)), training=training)

    def _generator_loss(self, fake, mu, logvar, images, cond) -> tuple[tf.Tensor, tf.Tensor]:
        """StackGAN's G loss; ``source_skip`` with ``edit_l1`` > 0 adds ``l1_coef * edit_l1`` x the L1 averaged over
        the pixels the query edits (target and source differ by more than 0.1 in a channel), so the one changed
        object weighs as much as the whole image's L1 instead of a few percent of it."""
        per_example, kl = super()._generator_loss(fake, mu, logvar, images, cond)
        weight = float(self.config.get("edit_l1", 0.0))
        if self.source_skip and weight > 0:
            per_example += float(self.config["l1_coef"]) * weight * edit_l1(fake, images, self.conditioner.split(cond)[1])
        return per_example, kl

    def d_condition(self, cond: tf.Tensor) -> tf.Tensor:
        """D sees the CA mean of the composed feature (not the packed source), not back-propagated."""
        if self.source_skip:
            cond = self.conditioner.split(cond)[0]
        return super().d_condition(cond)

    # ------------------------------------------------------------------ data
    def _target(self, images: tf.Tensor) -> tf.Tensor:
        """Records-size float images -> the generator's size (area averaging)."""
        return area_resize(images, self.image_size)

    def train_dataset(self, input_context: tf.distribute.InputContext, seed: int) -> tf.data.Dataset:
        per_replica = input_context.get_per_replica_batch_size(self.global_batch_size)
        ds = css.train_dataset(self.data_dir, per_replica, seed=seed,
                               input_context=input_context)
        tokenizer = self.tirg.tokenizer

        def to_inputs(b):
            target = self._target(b["target_image"])
            # Rows 2i, 2i+1 share a source but not a modification: the neighbour's target is a hard "wrong" image.
            return {"source": b["source_image"], "tokens": tokenizer(b["text"]), "image": target,
                    "wrong_image": tf.roll(target, 1, axis=0)}

        return ds.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    # ------------------------------------------------------------------ eval
    def _split_data(self, split: str) -> dict[str, np.ndarray]:
        if split not in self._data:
            images, labels = css.read_gallery(self.data_dir, split)
            self._data[split] = {"images": images, "labels": labels, "cells": css.read_scene_cells(self.data_dir, split),
                                 "queries": css.read_queries(self.data_dir, split)}
        return self._data[split]

    def _query_batch(self, split: str, idx: np.ndarray) -> dict[str, tf.Tensor]:
        d = self._split_data(split)
        q = d["queries"]
        src, dst = q["source_id"][idx], q["target_id"][idx]
        texts = tf.constant(q["text"][idx].astype(str))
        return {"source": from_uint8(tf.constant(d["images"][src])), "tokens": self.tirg.tokenizer(texts),
                "caption": texts, "image": self._target(from_uint8(tf.constant(d["images"][dst]))),
                "class_id": tf.constant(q["target_label"][idx]), "scene_cells": tf.constant(d["cells"][dst]),
                "source_cells": tf.constant(d["cells"][src]),
                "source_uint8": d["images"][src], "target_uint8": d["images"][dst]}

    def _eval_batch(self) -> dict[str, tf.Tensor]:
        if self._eval_cache is None:
            n = min(int(self.config["eval_batch_size"]), len(self._split_data(self.eval_split)["queries"]["text"]))
            b = self._query_batch(self.eval_split, np.arange(n))
            b["wrong_image"] = tf.roll(b["image"], 1, axis=0)
            self._eval_cache = b
        return self._eval_cache

    def eval_batches(self, num_images: int, batch_size: int, split: str | None = None):
        """The first ``num_images`` queries of ``split`` (default: the held-out one) in file order whose target scene
        has cell labels."""
        split = split or self.eval_split
        d = self._split_data(split)
        known = np.nonzero((d["cells"][d["queries"]["target_id"]] >= 0).all(axis=1))[0]
        self.skipped_queries = len(d["queries"]["text"]) - len(known)
        idx = known[:num_images]
        for start in range(0, len(idx), batch_size):
            b = self._query_batch(split, idx[start:start + batch_size])
            yield {k: v for k, v in b.items() if not k.endswith("_uint8")}

    def eval_protocol(self) -> dict[str, Any]:
        return {"model": "stackgan_tirg", "image_size": self.image_size, "eval_split": self.eval_split,
                "data_dir": os.path.abspath(self.data_dir), "text_encoder": "tirg composed feature (frozen)",
                "tirg_workdir": os.path.abspath(self.config["tirg_workdir"]), "tirg_step": int(self.tirg_step),
                "queries": "held-out (source image, modification text) queries in file order; real image = the target",
                "queries_without_target_cells_skipped": int(getattr(self, "skipped_queries", 0)),
                "r_precision_encoders": "TIRG: the generated image's embedding vs its query's composed feature and "
                                        "99 queries with other target labels",
                "css_semantic_target": "the target scene's cells", "source_skip": self.source_skip}

    def _eval_source_cells(self, num_images: int) -> np.ndarray:
        """The source scenes' cell codes of the first ``num_images`` evaluated queries (eval_batches' order)."""
        d = self._split_data(self.eval_split)
        q = d["queries"]
        known = np.nonzero((d["cells"][q["target_id"]] >= 0).all(axis=1))[0][:num_images]
        return d["cells"][q["source_id"][known]]

    def css_metrics(self, pred_cells: np.ndarray, target_cells: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
        """The CSS classifier's cells of the generated images scored on the cells each query edits (``css_edited_*``)
        and keeps (``css_kept_cell_accuracy``): whether the text was followed, not only the source copied. For the
        generator eval, which reads ``pred_cells`` / ``target_cells`` of its first N queries in order."""
        source = self._eval_source_cells(len(pred_cells))
        known = (source >= 0).all(axis=1)
        scores = edit_scores(np.asarray(pred_cells)[known], source[known], np.asarray(target_cells)[known])
        metrics = {f"css_{k}": v for k, v in scores.items() if k != "edited_cells"}
        return metrics, {"edited_cells": "css_edited_*: the generated image's cells where the query's source and "
                                          "target scenes differ (the edit), scored against the target; "
                                          "css_kept_cell_accuracy: the other cells (what should be copied)"}

    def model_eval_metrics(self, num_images: int, batch_size: int, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
        """The copy-the-source reference over the same held-out queries: the source scene's cells scored against
        the target scene, overall (``css_reference_source_*``) and on the edited cells
        (``css_reference_source_edited_*``: 0 by construction; with ``edited_cells``, the number of edited cells)."""
        source, target = [], []
        for b in self.eval_batches(num_images, batch_size):
            source.append(b["source_cells"].numpy())
            target.append(b["scene_cells"].numpy())
        source, target = np.concatenate(source), np.concatenate(target)
        known = (source >= 0).all(axis=1)
        source, target = source[known], target[known]
        scores = semantic_scores(source, target)
        metrics = {f"css_reference_source_{k}": scores[k] for k in ("cell_accuracy", "object_f1", "scene_accuracy",
                                                                   "color_accuracy")}
        edits = edit_scores(source, source, target)
        metrics.update({"css_reference_source_edited_cell_accuracy": edits["edited_cell_accuracy"],
                        "css_edited_cells": edits["edited_cells"], "css_queries_with_source_cells": float(known.sum())})
        protocol = {"css_reference_source": "the query's source scene (its true cell codes, i.e. a perfect copy of "
                                            "the source image, read by a perfect classifier) scored against the "
                                            "target scene, over the evaluated queries whose source cells are known "
                                            "(css_queries_with_source_cells); the edited cells are those where source "
                                            "and target scenes differ (css_edited_cells), where a copy scores 0"}
        return metrics, protocol

    # ---------------------------------------------------------------- generate
    def generate(self, captions: list[str] | None, num_samples: int, seed: int = 0,
                 source_image: np.ndarray | None = None, max_rows: int = 4) -> dict[str, Any]:
        """Rows of [source, target (held-out queries only), num_samples generated images] per query.

        Without ``captions``: the first ``max_rows`` held-out queries. With ``captions`` (modification texts):
        ``source_image`` (uint8 [H, W, 3]) is modified by each of them. Noise as GAN-CLS's generate.
        """
        if num_samples < 1:
            raise UserError(f"--num_samples must be >= 1; got {num_samples}")
        s = self.records_size
        if captions:
            if source_image is None:
                raise UserError("--model=stackgan_tirg modifies a source image: give --image=PATH with --text")
            src = tf.image.resize(np.asarray(source_image)[None], [s, s], antialias=True)
            src_u8 = np.clip(np.round(src.numpy()), 0, 255).astype(np.uint8)
            src_u8 = np.repeat(src_u8, len(captions), 0)
            batch = {"source": from_uint8(tf.constant(src_u8)), "tokens": self.tirg.tokenizer(tf.constant(captions))}
            targets = None
        else:
            b = self._eval_batch()
            rows = min(max_rows, int(b["image"].shape[0]))
            captions = [c.decode("utf-8") for c in b["caption"][:rows].numpy()]
            batch = {"source": b["source"][:rows], "tokens": b["tokens"][:rows]}
            src_u8, targets = b["source_uint8"][:rows], b["target_uint8"][:rows]
        rows = len(captions)
        cond = tf.repeat(self.condition(batch), num_samples, axis=0)
        z = generator_noise(rows * num_samples, int(self.config["z_dim"]), seed)
        fake = to_uint8(self.fake_images(z, cond)).numpy().reshape(rows, num_samples, self.image_size, self.image_size, 3)
        shown = [self._resize_uint8(src_u8)[:, None]]
        if targets is not None:
            shown.append(self._resize_uint8(targets)[:, None])
        images = np.concatenate(shown + [fake], axis=1)
        captions = [f"{c}  [source{', target' if targets is not None else ''}, samples]" for c in captions]
        return {"images": images, "captions": captions, "unknown_words": {}}

    def _resize_uint8(self, images: np.ndarray) -> np.ndarray:
        out = tf.image.resize(tf.constant(images), [self.image_size, self.image_size], antialias=True)
        return np.clip(np.round(out.numpy()), 0, 255).astype(np.uint8)

    # ------------------------------------------------------------------ export
    def export(self, path: str) -> dict[str, Any]:
        """SavedModel ``generate(image uint8 [N,H,W,3], text string [N], seed int64) -> {"images": uint8}``."""
        module = _TirgGeneratorServing(self, self.records_size, int(self.config["z_dim"]))
        tf.saved_model.save(module, path, signatures={"generate": module.generate})
        described = {"generate": {"inputs": {"image": "uint8 [N,H,W,3] source images (resized to "
                                                      f"{self.records_size})", "text": "string [N] modifications",
                                             "seed": "int64 scalar"},
                                  "outputs": {"images": f"uint8 [N,{self.image_size},{self.image_size},3]",
                                              "known_words": KNOWN_WORDS_RULE}}}
        description = {"model": self.name, "image_size": self.image_size, "z_dim": int(self.config["z_dim"]),
                       "signatures": described,
                       "noise": NOISE_RULE}
        write_export_description(path, description)
        return description


class _TirgGeneratorServing(tf.Module):
    """The exported module: TIRG (tokenizer + model) composing the query, the Stage-I generator drawing it."""

    def __init__(self, task: StackGanTirgTask, source_size: int, z_dim: int):
        super().__init__(name="stackgan_tirg_serving")
        self.tirg, self.tokenizer, self.generator = task.tirg.model, task.tirg.tokenizer, task.generator
        self._fake_images = task.fake_images
        self._condition = task.conditioner.condition
        self.source_size, self.z_dim = int(source_size), int(z_dim)
        self.generate = tf.function(self._generate, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"), tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.int64, name="seed")])

    def _generate(self, image, text, seed):
        src = tf.image.resize(tf.cast(image, tf.float32), [self.source_size, self.source_size], antialias=True)
        src = tf.clip_by_value(tf.round(src), 0.0, 255.0) / 127.5 - 1.0
        tokens = self.tokenizer(text)
        cond = self._condition({"source": src, "tokens": tokens})
        z = generator_noise(tf.shape(text)[0], self.z_dim, seed)
        return {"images": to_uint8(self._fake_images(z, cond)), "known_words": known_word_counts(tokens)}
