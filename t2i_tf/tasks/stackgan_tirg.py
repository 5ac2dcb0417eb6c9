"""StackGAN Stage-I conditioned on a TIRG composed feature: *generate* the modified CSS image.

The query of composed retrieval (a source image + "make top-left circle red") goes through a trained,
frozen TIRG model (``tirg_workdir``, a ``--model=tirg`` run); its composed feature phi(x, t) replaces the
sentence embedding of text-to-image StackGAN: conditioning augmentation -> Stage-I generator -> the target
image at ``image_size``. D is matching-aware on the same feature (real target / another query's target /
generated), as in :mod:`t2i_tf.tasks.stackgan`.

Evaluation (``--mode=eval``): held-out queries in file order; CSS semantic accuracy of the generated image
against the *target* scene's cells (t2i_tf/datasets/css/convert.py stores them per image), R-precision in TIRG's
own retrieval space (the generated image's TIRG embedding ranked against its query's composed feature
and 99 queries with other target labels), domain FID.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from t2i_tf.data import css
from t2i_tf.data.pixels import from_uint8, to_uint8
from t2i_tf.data.text import KNOWN_WORDS_RULE, known_word_counts
from t2i_tf.errors import UserError
from t2i_tf.export.description import write_export_description
from t2i_tf.models.noise import NOISE_RULE, generator_noise
from t2i_tf.tasks.conditioners import TirgConditioner
from t2i_tf.tasks.stackgan import StackGanTask
from t2i_tf.runs.config import load_run_config
from t2i_tf.runs.restore import chained_run_config


class StackGanTirgTask(StackGanTask):
    """Stage-I StackGAN from (source image, modification text) through a frozen TIRG, on converted CSS."""

    name = "stackgan_tirg"
    takes_source_image = True
    fixed_settings = dict(StackGanTask.fixed_settings, stage=1)
    architecture_keys = ("image_size", "ngf", "ndf", "z_dim", "c_dim", "ca_activation")

    @classmethod
    def default_workdir(cls, config: dict[str, Any]) -> str:
        return "runs/stackgan_tirg"

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
        return TirgConditioner(int(tirg_config["embed_dim"]))

    def _build_gan(self) -> None:
        from t2i_tf.runs.restore import restore_task

        self.tirg, self.tirg_step = restore_task("tirg", self.config["tirg_workdir"], strategy=self.strategy,
                                                 data_dir=self.data_dir)
        if self.tirg.image_size != self.records_size:
            raise UserError(f"the TIRG run in {self.config['tirg_workdir']} reads {self.tirg.image_size} px images; "
                            f"{self.data_dir} holds {self.records_size} px ones")
        self.conditioner.attach(self.tirg)
        super()._build_gan()

    # ------------------------------------------------------------------ data
    def _target(self, images: tf.Tensor) -> tf.Tensor:
        """Records-size float images -> the generator's size (area averaging)."""
        if self.image_size == self.records_size:
            return images
        return tf.image.resize(images, [self.image_size, self.image_size], method="area")

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
                "css_semantic_target": "the target scene's cells"}

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
        self.source_size, self.z_dim = int(source_size), int(z_dim)
        self.generate = tf.function(self._generate, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"), tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.int64, name="seed")])

    def _generate(self, image, text, seed):
        src = tf.image.resize(tf.cast(image, tf.float32), [self.source_size, self.source_size], antialias=True)
        src = tf.clip_by_value(tf.round(src), 0.0, 255.0) / 127.5 - 1.0
        tokens = self.tokenizer(text)
        cond = self.tirg.compose(src, tokens, training=False)
        z = generator_noise(tf.shape(text)[0], self.z_dim, seed)
        return {"images": to_uint8(self._fake_images(z, cond)), "known_words": known_word_counts(tokens)}
