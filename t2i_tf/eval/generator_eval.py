"""``--mode=eval`` for generators: every metric that applies, with its protocol, into one JSON and TensorBoard.

A generator task provides (see :class:`t2i_tf.tasks.base.GeneratorTask`): the held-out records in file order, images
generated for a batch of them, and optionally sentence / image features for R-precision. This module
streams those batches through each metric's feature extractor, so memory holds features, not images:

- Inception Score and FID with the 2015 Inception graph (``--inception_graph``: pool_3 for FID,
  logits for IS, 10 splits), FID with any Keras model (``--fid_model``);
- R-precision (R=1, 99 captions of other classes, 10 folds) with the task's matching encoders;
- CSS semantic accuracy and the classifier-feature "domain FID" with a trained CSS classifier
  (``--css_classifier``), when the records carry scene cell labels.

Real-image statistics use the same records' images at the generator's resolution.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import tensorflow as tf

from t2i_tf.data.pixels import quantized
from t2i_tf.errors import UserError
from t2i_tf.eval.fid import GaussianAccumulator, frechet_distance
from t2i_tf.eval.inception_score import inception_score
from t2i_tf.eval.protocol import write_metrics_json
from t2i_tf.eval.rprecision import r_precision
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
    for b_index, batch in enumerate(task.eval_batches(options.num_images, options.batch_size)):
        real = batch["image"]
        fake = quantized(task.generate_images(batch, (options.seed, b_index)))
        n += int(fake.shape[0])
        class_ids.append(batch["class_id"].numpy())
        if inception is not None:
            real_pool = inception.features(real)
            fake_pool, fake_logits = inception.features_and_logits(fake)
            fids["fid"].update(real_pool, fake_pool)
            logits.append(fake_logits)
        if fid_model is not None:
            fids["fid_keras"].update(fid_model.features(real), fid_model.features(fake))
        matching = task.matching_features(fake, batch)
        if matching is not None:
            img_feats.append(matching[0])
            txt_feats.append(matching[1])
        if classifier is not None:
            if "scene_cells" not in batch:
                raise UserError("--css_classifier needs records with scene cell labels (captioned CSS converted by "
                                "datasets/css/captions.py); these records have none")
            pred_cells.append(np.asarray(classifier.predict_cells(fake)))
            real_cells.append(np.asarray(classifier.predict_cells(real)))
            target_cells.append(batch["scene_cells"].numpy())
            fids["css_domain_fid"].update(np.asarray(classifier.features(real)), np.asarray(classifier.features(fake)))
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
    fewest_others = int(n - np.unique(all_classes, return_counts=True)[1].max())
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
        rp = r_precision(np.concatenate(img_feats), np.concatenate(txt_feats), all_classes,
                         num_mismatched=num_mismatched, folds=options.splits, seed=options.seed)
        metrics.update(r_precision=rp.mean, r_precision_std=rp.std)
        protocol["r_precision"] = {
            "r": 1, "mismatched_captions": num_mismatched, "mismatched_from": "other classes of the same set",
            "folds": options.splits, "similarity": "cosine", "seed": options.seed}
    if classifier is not None:
        from t2i_tf.eval.css_semantic import object_recall_by_novelty, semantic_scores, text_ignoring_partners

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
