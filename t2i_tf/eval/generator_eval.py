"""``--mode=eval`` for generators: every metric that applies, with its protocol, into one JSON and TensorBoard.

A generator task provides (see :class:`t2i_tf.tasks.base.GeneratorTask`): the held-out records in file order, images
generated for a batch of them, and optionally sentence / image features for R-precision. This module
streams those batches through each metric's feature extractor, so memory holds features, not images:

- Inception Score and FID with the 2015 Inception graph (``--inception_graph``: pool_3 for FID,
  logits for IS, 10 splits), FID with any Keras model (``--fid_model``);
- R-precision (R=1, 99 captions of other classes drawn from every caption of the evaluated records, e.g. CUB's
  10 per image; fewer when a small test set has fewer, recorded in the protocol; 10 folds) with the task's
  matching encoders;
- CSS semantic accuracy and the classifier-feature "domain FID" with a trained CSS classifier
  (``--css_classifier``), when the records carry scene cell labels.

Real-image statistics use the same records' images at the generator's resolution.

Memory is bounded whatever ``--eval_batch_size`` is: every feature extractor (Inception, ``--fid_model``, the
CSS classifier, the matching encoders) sees at most ``EVAL_CHUNK`` images at a time (features do not depend on
the chunking). A generator that declares ``draws_rows`` (``generate_images(batch, seed, rows=(start, stop))``
gives those rows of the whole batch's images: the batch's noise, cut) draws ``EVAL_CHUNK`` images at a time too;
others draw each batch whole (the noise is defined per batch, so a batch cannot simply be split).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import tensorflow as tf

from t2i_tf.data.pixels import quantized
from t2i_tf.data.records import read_info, shard_paths
from t2i_tf.errors import UserError
from t2i_tf.eval.fid import GaussianAccumulator, frechet_distance
from t2i_tf.eval.inception_score import inception_score
from t2i_tf.eval.protocol import write_metrics_json
from t2i_tf.eval.rprecision import fewest_other_class_captions, r_precision
from t2i_tf.tasks.base import GeneratorTask


@dataclasses.dataclass
class EvalOptions:
    """What to compute: sample count, batch, seeds, and which reference networks to load."""

    num_images: int = 1000
    batch_size: int = 100
    seed: int = 0
    splits: int = 10  # IS splits and R-precision folds
    inception_graph: str | None = None
    fid_model: str | None = None
    css_classifier: str | None = None
    num_mismatched: int = 99


# Images per call of a feature extractor during evaluation: bounds the activations' memory whatever the eval batch
# (DAMSM paper preset, eval batch 100 through Inception at 299 px, --mode=eval: peak RSS 4232 MiB whole, 2314 MiB in
# chunks of 16; bench/peak_memory.py's synthetic records, same losses). The generator too, when its task draws rows
# (AttnGAN paper, --mode=eval --eval_images=100, eval batch 50: 7071 MiB drawing each batch whole, 4028 MiB in rows of
# 16, the same metrics).
EVAL_CHUNK = 16


def in_chunks(fn, *tensors, size: int | None = None):
    """``fn`` applied to consecutive row chunks of ``tensors`` (at most ``size`` rows, default ``EVAL_CHUNK``), outputs
    concatenated as numpy arrays along axis 0; a tuple / list output is concatenated per element, None stays None."""
    size = int(size or EVAL_CHUNK)
    n = int(tensors[0].shape[0])
    if n <= size:
        return _to_numpy(fn(*tensors))
    parts = [_to_numpy(fn(*(t[i:i + size] for t in tensors))) for i in range(0, n, size)]
    if parts[0] is None:
        return None
    if isinstance(parts[0], (tuple, list)):
        return type(parts[0])(np.concatenate([p[k] for p in parts]) for k in range(len(parts[0])))
    return np.concatenate(parts)


def _to_numpy(out):
    if out is None:
        return None
    if isinstance(out, (tuple, list)):
        return type(out)(_to_numpy(o) for o in out)
    return np.asarray(out)


def _batch_rows(batch: dict[str, Any], start: int, stop: int, n: int) -> dict[str, Any]:
    """Rows [start, stop) of every per-example value of ``batch`` (those with ``n`` rows)."""
    return {k: (v[start:stop] if getattr(v, "shape", None) is not None and len(v.shape) and int(v.shape[0]) == n
                else v) for k, v in batch.items()}


def generate_in_chunks(task: Any, batch: dict[str, Any], seed: tuple[int, int], size: int | None = None) -> tf.Tensor:
    """``quantized(task.generate_images(batch, seed))``, drawn ``size`` (default ``EVAL_CHUNK``) rows at a time when the
    task declares ``draws_rows`` (the same images: each chunk is those rows of the whole batch's noise), else whole."""
    size = int(size or EVAL_CHUNK)
    n = int(batch["image"].shape[0])
    if n <= size or not getattr(task, "draws_rows", False):  # a task class without the declaration draws whole
        return quantized(task.generate_images(batch, seed))
    return tf.concat([quantized(task.generate_images(batch, seed, rows=(start, min(n, start + size))))
                      for start in range(0, n, size)], axis=0)


def chunked_matching_features(task: Any, images: tf.Tensor, batch: dict[str, Any], size: int | None = None):
    """``task.matching_features(images, batch)`` computed ``size`` (default ``EVAL_CHUNK``) rows at a time (None when
    the task has none)."""
    size = int(size or EVAL_CHUNK)
    n = int(images.shape[0])
    parts = []
    for start in range(0, n, size):
        stop = min(n, start + size)
        out = task.matching_features(images[start:stop], _batch_rows(batch, start, stop, n))
        if out is None:
            return None
        parts.append((np.asarray(out[0]), np.asarray(out[1])))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class CaptionPool:
    """Every caption of the evaluated records, for R-precision's mismatched captions (CUB / Flowers have 10 per image;
    generators and the DAMSM eval use the first): read from the held-out records in file order, aligned with the
    evaluation batches by (first caption, class id), since the reader may drop a record it has no wrong image for.
    Inactive (``arrays()`` None) for records with one caption per image."""

    def __init__(self, data_dir: str | None, split: str | None):
        self.records = None
        self.max_captions = 1
        self.features: list[np.ndarray] = []
        self.class_ids: list[np.ndarray] = []
        self.failed: str | None = None
        if not data_dir or not split:
            return
        info = read_info(data_dir)
        if info.get("format") != "t2i-v1" or int((info.get("captions_per_image") or {}).get("max") or 1) < 2:
            return
        self.max_captions = int(info["captions_per_image"]["max"])
        self.records = self._read(shard_paths(data_dir, split))

    @classmethod
    def for_task(cls, task: Any) -> CaptionPool:
        """The pool of a generator task that reads text-to-image records with the base ``eval_batches``."""
        if type(task).eval_batches is not GeneratorTask.eval_batches:
            return cls(None, None)
        return cls(getattr(task, "data_dir", None), getattr(task, "eval_split", None))

    @staticmethod
    def _read(paths: list[str]):
        spec = {"captions": tf.io.VarLenFeature(tf.string), "class_id": tf.io.FixedLenFeature([], tf.int64)}
        for serialized in tf.data.TFRecordDataset(paths).batch(256):
            parsed = tf.io.parse_example(serialized, spec)
            captions = tf.sparse.to_dense(parsed["captions"], default_value=b"").numpy()
            for caps, cid in zip(captions, parsed["class_id"].numpy()):
                yield [c for c in caps if c], int(cid)

    def add(self, firsts: np.ndarray, classes: np.ndarray, first_features: np.ndarray, encode) -> None:
        """Add the evaluated batch's records: ``first_features`` are their first captions' sentence features;
        ``encode(rows, captions)`` gives the sentence features of ``captions`` (bytes) of batch rows ``rows``."""
        if self.records is None:
            return
        rows: list[list[bytes]] = []
        for first, cid in zip(firsts, classes):
            for caps, record_cid in self.records:
                if caps and caps[0] == first and record_cid == int(cid):
                    rows.append(caps)
                    break
            else:
                self.records, self.failed = None, "the records could not be matched to the evaluated batches"
                return
        self.features.append(np.asarray(first_features))
        self.class_ids.append(np.asarray(classes))
        for k in range(1, self.max_captions):
            keep = [i for i in range(len(rows)) if len(rows[i]) > k]
            if not keep:
                break
            self.features.append(np.asarray(encode(keep, [rows[i][k] for i in keep])))
            self.class_ids.append(np.asarray(classes)[keep])

    @property
    def active(self) -> bool:
        """Whether the records have several captions per image (and were matched so far)."""
        return self.records is not None

    def arrays(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(sentence features [M, D], class ids [M]) of every caption, or None when inactive."""
        if self.records is None or not self.features:
            return None
        return np.concatenate(self.features), np.concatenate(self.class_ids)


def _task_caption_encoder(task: Any, fake: tf.Tensor, batch: dict[str, Any]):
    """``encode(rows, captions)`` for :class:`CaptionPool` from a generator task's matching features (only the
    sentence side is used, so the image encoder sees one image per chunk)."""
    n = int(fake.shape[0])

    def encode(rows: list[int], captions: list[bytes]) -> np.ndarray:
        sub = {key: tf.gather(v, rows) for key, v in batch.items()
               if getattr(v, "shape", None) is not None and len(v.shape) and int(v.shape[0]) == n}
        sub["caption"] = tf.constant(captions)
        sub.update(task.model_inputs(sub))
        feats = []
        for start in range(0, len(rows), EVAL_CHUNK):
            stop = min(len(rows), start + EVAL_CHUNK)
            feats.append(np.asarray(task.matching_features(fake[:1], _batch_rows(sub, start, stop, len(rows)))[1]))
        return np.concatenate(feats)

    return encode


class _Fid:
    """Streaming Gaussian fits of real and generated features of one extractor."""

    def __init__(self) -> None:
        self.real, self.fake = GaussianAccumulator(), GaussianAccumulator()

    def update(self, real: np.ndarray, fake: np.ndarray) -> None:
        self.real.update(np.asarray(real, np.float64))
        self.fake.update(np.asarray(fake, np.float64))

    def value(self) -> float:
        (mu1, s1), (mu2, s2) = self.real.stats(), self.fake.stats()
        return float(frechet_distance(mu1, s1, mu2, s2))


def evaluate_generator(task: GeneratorTask, options: EvalOptions) -> tuple[dict[str, float], dict[str, Any]]:
    """All applicable generator metrics over ``options.num_images`` held-out captions: (metrics, protocol)."""
    if options.num_images < options.splits:
        raise UserError(f"--eval_images must be >= {options.splits} (the IS splits / R-precision folds); "
                        f"got {options.num_images}")
    if options.batch_size < 1:
        raise UserError(f"--eval_batch_size must be >= 1; got {options.batch_size}")
    inception = fid_model = classifier = None
    if options.inception_graph:
        from t2i_tf.eval.inception_graph import InceptionGraph

        inception = InceptionGraph(options.inception_graph)
    if options.fid_model:
        from t2i_tf.eval.inception_graph import KerasFeatureExtractor

        fid_model = KerasFeatureExtractor(options.fid_model)
    if options.css_classifier:
        from t2i_tf.eval.css_semantic import load_css_classifier

        classifier = load_css_classifier(options.css_classifier)

    fids = {"fid": _Fid(), "fid_keras": _Fid(), "css_domain_fid": _Fid()}
    logits, img_feats, txt_feats, class_ids = [], [], [], []
    pred_cells, real_cells, target_cells = [], [], []
    n = 0
    pool = CaptionPool.for_task(task)
    for b_index, batch in enumerate(task.eval_batches(options.num_images, options.batch_size)):
        real = batch["image"]
        fake = generate_in_chunks(task, batch, (options.seed, b_index))
        n += int(fake.shape[0])
        class_ids.append(batch["class_id"].numpy())
        if inception is not None:
            real_pool = in_chunks(inception.features, real)
            fake_pool, fake_logits = in_chunks(inception.features_and_logits, fake)
            fids["fid"].update(real_pool, fake_pool)
            logits.append(fake_logits)
        if fid_model is not None:
            fids["fid_keras"].update(in_chunks(fid_model.features, real), in_chunks(fid_model.features, fake))
        matching = chunked_matching_features(task, fake, batch)
        if matching is not None:
            img_feats.append(matching[0])
            txt_feats.append(matching[1])
            if pool.active:
                pool.add(batch["caption"].numpy(), batch["class_id"].numpy(), matching[1],
                         _task_caption_encoder(task, fake, batch))
        if classifier is not None:
            if "scene_cells" not in batch:
                raise UserError("--css_classifier needs records with scene cell labels (captioned CSS converted by "
                                "datasets/css/captions.py); these records have none")
            pred_cells.append(in_chunks(classifier.predict_cells, fake))
            real_cells.append(in_chunks(classifier.predict_cells, real))
            target_cells.append(batch["scene_cells"].numpy())
            fids["css_domain_fid"].update(in_chunks(classifier.features, real), in_chunks(classifier.features, fake))
    notes = []
    if n < options.num_images:  # a small test set: use all of it, and say so
        if n < options.splits:
            raise UserError(f"the held-out split has only {n} usable records; at least {options.splits} are needed "
                            "(the IS splits / R-precision folds)")
        notes.append(f"--eval_images={options.num_images} asked for, but the held-out split has only {n} usable "
                     f"records: all {n} were evaluated")
        print(f"note: {notes[-1]}", flush=True)

    metrics: dict[str, float] = {"num_images": float(n)}
    protocol: dict[str, Any] = {
        "num_images": n,
        "images": "the first num_images held-out records in file order, each with its first caption; "
                  "generated images are rounded to uint8 (as saved) before every metric",
        "noise": "z = generator_noise(batch, z_dim, seed, stream=batch_index) (t2i_tf/models/noise.py), batches of batch_size",
        "seed": options.seed,
        "batch_size": options.batch_size,
        "feature_chunk": f"feature extractors see at most {EVAL_CHUNK} images at a time (same features, bounded memory)",
        "generator_chunk": (f"the generator draws at most {EVAL_CHUNK} images at a time (rows of the batch's noise: the "
                            "same images)" if getattr(task, "draws_rows", False) else "the generator draws each batch "
                            "whole"),
        "real_images": f"the same records' images resized to {task.image_size} px (bilinear, antialiased)",
        **task.eval_protocol(),
    }
    if inception is not None:
        is_mean, is_std = inception_score(np.concatenate(logits), splits=options.splits, from_logits=True)
        metrics.update(inception_score=is_mean, inception_score_std=is_std, fid=fids["fid"].value())
        protocol["inception"] = dict(inception.protocol(), is_splits=options.splits,
                                     is_formula="exp(E_x KL(p(y|x) || p(y))) per consecutive split; mean and std")
    if fid_model is not None:
        metrics["fid_keras"] = fids["fid_keras"].value()
        protocol["fid_model"] = fid_model.protocol()
    protocol["skipped"] = []
    protocol["notes"] = notes
    all_classes = np.concatenate(class_ids)
    pooled = pool.arrays() if img_feats else None
    if pooled is not None:
        pool_feats, pool_classes = pooled
        mismatched_from = (f"every caption ({len(pool_classes)}, up to {pool.max_captions} per image) of the "
                           f"evaluated images of other classes")
    else:
        pool_feats, pool_classes = np.concatenate(txt_feats) if txt_feats else None, all_classes
        mismatched_from = "the first caption of each evaluated image of another class"
        if pool.failed:
            notes.append(f"R-precision draws mismatched captions from first captions only: {pool.failed}")
    fewest_others = fewest_other_class_captions(all_classes, pool_classes)
    if img_feats and fewest_others < 1:
        protocol["skipped"].append(f"R-precision: all {n} images share one class, so no caption of another class exists")
    elif img_feats:
        # With fewer other-class captions than asked (a small test set), rank among the ones there are, and say so.
        num_mismatched = min(options.num_mismatched, fewest_others)
        if num_mismatched < options.num_mismatched:
            notes.append(f"R-precision ranks each caption among {num_mismatched} mismatched captions, not "
                         f"{options.num_mismatched}: a class has only {fewest_others} captions of other classes among "
                         f"the {n} images (chance is 1/{num_mismatched + 1})")
            print(f"note: {notes[-1]}", flush=True)
        rp = r_precision(np.concatenate(img_feats), np.concatenate(txt_feats), all_classes, pool_feats, pool_classes,
                         num_mismatched=num_mismatched, folds=options.splits, seed=options.seed)
        metrics.update(r_precision=rp.mean, r_precision_std=rp.std, r_precision_mismatched=float(num_mismatched))
        protocol["r_precision"] = {
            "r": 1, "mismatched_captions": num_mismatched, "mismatched_asked": options.num_mismatched,
            "mismatched_from": mismatched_from, "query_caption": "the first caption of each image (the one it was "
            "generated from)", "folds": options.splits, "similarity": "cosine", "seed": options.seed}
    if classifier is not None:
        from t2i_tf.eval.css_semantic import (
            object_recall_by_novelty,
            semantic_scores,
            text_ignoring_partners,
        )

        pred, real_pred, target = map(np.concatenate, (pred_cells, real_cells, target_cells))
        for key, value in semantic_scores(pred, target).items():
            metrics[f"css_{key}"] = value
        for key, value in object_recall_by_novelty(pred, target).items():
            metrics[f"css_{key}"] = value
        metrics["css_classifier_real_cell_accuracy"] = semantic_scores(real_pred, target)["cell_accuracy"]
        # What a generator drawing right-looking scenes that ignore the text would score: each real image read
        # against the scene of a random record of another base scene (>= 2 cells apart).
        partner = text_ignoring_partners(target, options.seed)
        usable = partner >= 0
        if usable.any():
            ignoring = semantic_scores(real_pred[partner[usable]], target[usable])
            for key in ("cell_accuracy", "object_f1", "scene_accuracy"):
                metrics[f"css_reference_text_ignoring_{key}"] = ignoring[key]
        else:
            protocol["skipped"].append("CSS text-ignoring reference: no two records' scenes are 2 cells apart")
        metrics["css_domain_fid"] = fids["css_domain_fid"].value()
        protocol["css_semantic"] = {
            "classifier_workdir": os.path.abspath(options.css_classifier),
            "classifier_step": _checkpoint_step(options.css_classifier),
            "scores": "9 cell codes per image vs the record's scene; objects (cell, size, colour, shape) micro-averaged "
                      "precision/recall/F1; scene accuracy = all 9 cells right",
            "trust": "css_classifier_real_cell_accuracy: the classifier on the real images of the same records",
            "reference": "css_reference_text_ignoring_*: the real image of a random record (seeded by --seed) whose "
                         "scene differs in >= 2 cells (another base scene) scored against each record's scene: "
                         f"right-looking scenes that ignore the text ({int(usable.sum())} of {len(target)} records "
                         "had such a partner)",
            "novelty": "css_object_recall_novel / _seen: object recall over target objects whose (colour, shape) is "
                       "held out of training / the others (counts in css_objects_novel / _seen)",
            "domain_fid": "Frechet distance of the classifier's pooled features, real vs generated"}
        own_css, own_css_protocol = task.css_metrics(pred, target)  # e.g. stackgan_tirg's edited cells
        metrics.update(own_css)
        protocol["css_semantic"].update(own_css_protocol)
    own_metrics, own_protocol = task.model_eval_metrics(n, options.batch_size, options.seed)
    metrics.update(own_metrics)
    protocol.update(own_protocol)
    return metrics, protocol


def _checkpoint_step(workdir: str) -> int | None:
    ckpt = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    return int(ckpt.rsplit("-", 1)[1]) if ckpt else None


def write_generator_eval(workdir: str, step: int, metrics: dict[str, float], protocol: dict[str, Any],
                         path: str | None = None) -> str:
    """The metrics JSON (``<workdir>/eval/generator_metrics_step<step>.json`` by default) and the same scalars
    in TensorBoard's eval run under ``generator/``; returns the JSON path."""
    path = path or os.path.join(workdir, "eval", f"generator_metrics_step{step}.json")
    write_metrics_json(path, metrics, protocol, step)
    writer = tf.summary.create_file_writer(os.path.join(workdir, "eval"))
    with writer.as_default(step=step):
        for key, value in metrics.items():
            tf.summary.scalar(f"generator/{key}", value)
    writer.flush()
    writer.close()
    return path
