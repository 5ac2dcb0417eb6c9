"""CSS semantic accuracy: do generated (or edited) CSS images show the scene their caption asks for?

A classifier trained by the project on rendered CSS scenes (t2i_tf/tasks/css_classifier.py) reads each
image's 9 cell codes (t2i_tf/data/css_cells.py); :func:`semantic_scores` compares them with the target
scene's codes, :func:`domain_fid` compares the classifier's features of real and generated images.

Objects are compared GeNeVA-style (El-Nouby et al. 2019): an object is (cell, size, colour, shape);
a predicted object is a true positive when the target has the identical object in that cell.
Precision, recall and F1 are micro-averaged (counts summed over all images before dividing); with no
predicted objects precision is 1 (nothing was wrongly found), with no target objects recall is 1, so
all-empty predictions of all-empty targets score 1 and either side alone empty gives F1 = 0.

The classifier's own accuracy on real rendered scenes (its eval metrics) says how far to trust these
numbers: near 100% there, or the metric means little.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from t2i_tf.data.css_cells import NUM_CELLS, code_factors, combo_mask
from t2i_tf.data.css_scene import HELD_OUT_COMBOS
from t2i_tf.errors import UserError
from t2i_tf.eval.fid import fid_from_features

def _ratio(num: float, den: float, empty_value: float = 1.0) -> float:
    return float(num) / float(den) if den else empty_value


def _prf(tp: int, n_pred: int, n_target: int) -> tuple[float, float, float]:
    precision, recall = _ratio(tp, n_pred), _ratio(tp, n_target)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def _check(cells: Any, name: str) -> np.ndarray:
    arr = np.asarray(cells)
    if arr.ndim != 2 or arr.shape[1] != NUM_CELLS or not np.issubdtype(arr.dtype, np.integer):
        raise UserError(f"{name}: expected integer cell codes of shape [N, {NUM_CELLS}], got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)


def semantic_scores(pred_cells: Any, target_cells: Any) -> dict[str, float]:
    """Fractions in [0, 1] comparing predicted and target cell codes (both int [N, 9]).

    - ``cell_accuracy``: cells exactly right (empties included); ``scene_accuracy``: images with all 9 right;
    - ``occupancy_accuracy``: cells right about empty vs occupied;
    - ``object_precision`` / ``object_recall`` / ``object_f1``: GeNeVA-style, see the module docstring;
    - ``size_accuracy`` / ``color_accuracy`` / ``shape_accuracy``: of the target objects, those whose cell
      is predicted occupied with that attribute right;
    - ``*_ignore_size`` (cell_accuracy, object_*): the same with objects compared by colour and shape only
      (size is the least visible attribute at low resolution).
    """
    pred, target = _check(pred_cells, "pred_cells"), _check(target_cells, "target_cells")
    if pred.shape != target.shape:
        raise UserError(f"pred_cells {pred.shape} and target_cells {target.shape} differ in shape")
    p_occ, p_size, p_color, p_shape = code_factors(pred)
    t_occ, t_size, t_color, t_shape = code_factors(target)
    exact = pred == target
    both = p_occ & t_occ
    no_size = (p_occ == t_occ) & (~t_occ | ((p_color == t_color) & (p_shape == t_shape)))
    n_pred, n_target = int(p_occ.sum()), int(t_occ.sum())
    out: dict[str, float] = {
        "cell_accuracy": float(exact.mean()) if exact.size else 1.0,
        "scene_accuracy": float(exact.all(axis=1).mean()) if len(exact) else 1.0,
        "occupancy_accuracy": float((p_occ == t_occ).mean()) if exact.size else 1.0,
    }
    prf = _prf(int((exact & t_occ).sum()), n_pred, n_target)
    out.update(object_precision=prf[0], object_recall=prf[1], object_f1=prf[2])
    for name, p, t in (("size", p_size, t_size), ("color", p_color, t_color), ("shape", p_shape, t_shape)):
        out[f"{name}_accuracy"] = _ratio(int((both & (p == t)).sum()), n_target)
    out["cell_accuracy_ignore_size"] = float(no_size.mean()) if exact.size else 1.0
    prf = _prf(int((no_size & t_occ).sum()), n_pred, n_target)
    out.update(object_precision_ignore_size=prf[0], object_recall_ignore_size=prf[1], object_f1_ignore_size=prf[2])
    return out


def object_recall_by_novelty(pred_cells: Any, target_cells: Any,
                             held_out: Sequence[tuple[str, str]] = HELD_OUT_COMBOS) -> dict[str, float]:
    """Object recall split by the target object's (colour, shape): ``object_recall_novel`` over the combinations
    never seen in training (``held_out``), ``object_recall_seen`` over the others, with their object counts."""
    pred, target = _check(pred_cells, "pred_cells"), _check(target_cells, "target_cells")
    t_occ = target > 0
    novel = combo_mask(target, held_out) & t_occ
    hit = (pred == target) & t_occ
    seen = t_occ & ~novel
    return {"object_recall_novel": _ratio(int((hit & novel).sum()), int(novel.sum())),
            "object_recall_seen": _ratio(int((hit & seen).sum()), int(seen.sum())),
            "objects_novel": float(novel.sum()), "objects_seen": float(seen.sum())}


def text_ignoring_partners(target_cells: Any, seed: int, min_cells_apart: int = 2) -> np.ndarray:
    """For each record, a random other record (seeded) whose scene differs in at least ``min_cells_apart`` cells,
    -1 when there is none: scoring real images against those scenes is what a generator that draws right-looking
    scenes but ignores the text scores. (Two cells: a one-edit neighbour of the same base scene differs in one.)"""
    target = _check(target_cells, "target_cells")
    rng = np.random.default_rng(seed)
    apart = (target[:, None, :] != target[None, :, :]).sum(axis=2) >= min_cells_apart
    out = np.full(len(target), -1, dtype=np.int64)
    for i in range(len(target)):
        candidates = np.flatnonzero(apart[i])
        if candidates.size:
            out[i] = candidates[rng.integers(candidates.size)]
    return out


def domain_fid(features_real: Any, features_fake: Any) -> float:
    """Fréchet distance between the classifier features of real and generated images ([N, D] each)."""
    return fid_from_features(np.asarray(features_real), np.asarray(features_fake))


def load_css_classifier(workdir: str):
    """The trained :class:`CssClassifier` of a css_classifier workdir (saved config + latest checkpoint).

    Use ``model.predict_cells(images)`` (int64 [N, 9]) and ``model.features(images)`` on float images in
    [-1, 1] of any size.
    """
    from t2i_tf.runs.config import load_run_config
    from t2i_tf.runs.restore import restore_task

    if load_run_config(workdir, "css_classifier") is None:
        raise UserError(f"--css_classifier {workdir} has no config.json: train one first "
                        f"(python main.py --model=css_classifier --workdir={workdir})")
    task, _ = restore_task("css_classifier", workdir, data_dir=None)
    return task.model
