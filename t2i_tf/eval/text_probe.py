"""Can a generator's text features tell the scene? A linear probe from caption features to the CSS cell codes.

A generator conditioned on a sentence vector can only draw what that vector holds. On captioned CSS a caption
describes its scene exactly, so a good text encoder's features should let a *linear* read-out recover the 9 cell
codes. The probe (ridge regression to one-hot targets, closed form, no randomness) has, per cell, one head each
for occupied / size / colour / shape, combined into a cell code with
:func:`t2i_tf.data.css_cells.factors_code`. It is fitted on features of train captions and scored on held-out
captions with the generators' own metrics (:func:`t2i_tf.eval.css_semantic.semantic_scores`), so a probe's
object F1 is the ceiling of what a generator reading those features can draw, by a linear reading.

    python -m t2i_tf.eval.text_probe --model=gan_cls --workdir=runs/gan_cls_gan [--train_records=4000]
        [--test_records=1000] [--ridge=1.0]

The features are the ones R-precision uses (``task.matching_features``: GAN-CLS / StackGAN's co-trained
sentence encoder, AttnGAN's DAMSM sentence vector, stackgan_tirg's TIRG query).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from t2i_tf.data.css_cells import NUM_CELLS, NUM_COLORS, NUM_SHAPES, NUM_SIZES, code_factors, factors_code
from t2i_tf.errors import UserError
from t2i_tf.eval.css_semantic import object_recall_by_novelty, semantic_scores

# (head name, number of classes) per cell, in the order of code_factors' outputs.
HEADS = (("occupied", 2), ("size", NUM_SIZES), ("color", NUM_COLORS), ("shape", NUM_SHAPES))


def _design(features: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    x = (np.asarray(features, np.float64) - mean) / scale
    return np.concatenate([x, np.ones([len(x), 1])], axis=1)


def _targets(cells: np.ndarray) -> np.ndarray:
    """One-hot targets [N, 9 * sum(classes)] for every (cell, head); attributes of empty cells are all zero."""
    factors = code_factors(np.asarray(cells, np.int64))
    occupied = factors[0]
    blocks = []
    for cell in range(NUM_CELLS):
        for (name, classes), values in zip(HEADS, factors):
            onehot = np.eye(classes)[np.asarray(values[:, cell], np.int64)]
            if name != "occupied":
                onehot = onehot * occupied[:, cell:cell + 1]
            blocks.append(onehot)
    return np.concatenate(blocks, axis=1)


class CellProbe:
    """Ridge regression from features [N, D] to per-cell factor one-hots; ``predict`` gives cell codes [N, 9]."""

    def __init__(self, ridge: float = 1.0):
        if not ridge > 0:
            raise UserError(f"ridge must be > 0; got {ridge}")
        self.ridge = float(ridge)
        self.weights: np.ndarray | None = None

    def fit(self, features: Any, cells: Any) -> "CellProbe":
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or len(x) != len(cells) or len(x) == 0:
            raise UserError(f"probe: features [N, D] and cells [N, 9] must agree; got {x.shape} and {np.shape(cells)}")
        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0) + 1e-8
        a = _design(x, self.mean, self.scale)
        reg = self.ridge * np.eye(a.shape[1])
        reg[-1, -1] = 0.0  # the bias is not shrunk
        self.weights = np.linalg.solve(a.T @ a + reg, a.T @ _targets(cells))
        return self

    def predict(self, features: Any) -> np.ndarray:
        if self.weights is None:
            raise UserError("probe: fit before predict")
        scores = _design(features, self.mean, self.scale) @ self.weights
        width = sum(c for _, c in HEADS)
        out = []
        for cell in range(NUM_CELLS):
            block = scores[:, cell * width:(cell + 1) * width]
            picks, start = [], 0
            for _, classes in HEADS:
                picks.append(block[:, start:start + classes].argmax(axis=1))
                start += classes
            out.append(factors_code(picks[0].astype(bool), picks[1], picks[2], picks[3]))
        return np.stack(out, axis=1).astype(np.int64)


def probe_scores(train_features: Any, train_cells: Any, test_features: Any, test_cells: Any,
                 ridge: float = 1.0) -> dict[str, float]:
    """Fit on train, score on test with the generators' CSS metrics (+ ``train_cell_accuracy``)."""
    probe = CellProbe(ridge).fit(train_features, train_cells)
    test_pred = probe.predict(test_features)
    out = semantic_scores(test_pred, test_cells)
    out.update({k: v for k, v in object_recall_by_novelty(test_pred, test_cells).items() if k.startswith("object_")})
    out["train_cell_accuracy"] = semantic_scores(probe.predict(train_features), train_cells)["cell_accuracy"]
    return out


def caption_features(task: Any, split: str, num_records: int, batch_size: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(text features [N, D], scene cells [N, 9]) of the first ``num_records`` records of ``split`` (first caption
    each; stackgan_tirg: queries, scored against their target scenes), through the task's R-precision text
    features."""
    feats, cells = [], []
    for b in task.eval_batches(num_records, batch_size, split=split):
        if "scene_cells" not in b:
            raise UserError("the probe needs captioned CSS records (scene cell labels); these records have none")
        matching = task.matching_features(b["image"], b)
        if matching is None:
            raise UserError(f"--model={task.name} has no text features to probe")
        feats.append(np.asarray(matching[1]).reshape(len(b["scene_cells"]), -1))
        cells.append(b["scene_cells"].numpy())
    return np.concatenate(feats), np.concatenate(cells)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m t2i_tf.eval.text_probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="gan_cls | stackgan | stackgan_tirg | attngan")
    p.add_argument("--workdir", required=True)
    p.add_argument("--train_records", type=int, default=4000)
    p.add_argument("--test_records", type=int, default=1000)
    p.add_argument("--ridge", type=float, default=1.0)
    args = p.parse_args(argv)
    try:
        from t2i_tf.runs.restore import restore_task

        task, step = restore_task(args.model, args.workdir)
        train = caption_features(task, "train", args.train_records)
        test = caption_features(task, task.eval_split, args.test_records)
        scores = probe_scores(*train, *test, ridge=args.ridge)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"model": args.model, "workdir": args.workdir, "step": step, "train_records": len(train[0]),
                      "test_records": len(test[0]), "feature_dim": int(train[0].shape[1]), "ridge": args.ridge,
                      **{k: round(v, 4) for k, v in scores.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
