"""GeNeVA's per-turn metrics on CSS: object precision / recall / F1 and relational similarity after each turn.

The drawn canvas after turn t is read by the project's CSS classifier into 9 cell codes and compared with the
target scene after turn t. Objects: :func:`t2i_tf.eval.css_semantic.semantic_scores` (an object is (cell, size,
colour, shape), micro-averaged). Relational similarity (rsim), after GeNeVA's geneva/metrics/inception_localizer.py
``get_graph_similarity``: objects are identified by type (size, colour, shape: the classifier's label, as GeNeVA's
detector labels); over the types found in both the drawn and the target canvas, a graph of left/right and
above/below relations is built from their cell positions in each (each object also against the canvas centre, as
the official graph's diagonal), and rsim = (the fraction of relation entries that agree) x (the recall of the
target's types). An image whose drawing shares no type with the target scores 0; an empty drawing of an empty
target scores 1. Reported as the mean over images.

Given the scenes before each turn, the edit itself is scored too: ``edit_accuracy`` is the fraction of the cells
the turn changed that the drawing has exactly right (the added object in its cell, or the removed one's cell
empty), ``add_accuracy`` / ``remove_accuracy`` the same over add / remove turns. Copying the previous canvas
scores 0 there, however high its object F1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from t2i_tf.data.css_cells import NUM_CELLS, NUM_CODES
from t2i_tf.eval.css_semantic import semantic_scores

RSIM_RULE = ("rsim = recall of the target's object types x agreement of the left/right and above/below relations "
             "among the types found in both (positions = cell centres, first object of a type in row-major order; "
             "each object also against the canvas centre); no shared type: 0; both empty: 1")


def type_positions(cells: Any) -> dict[int, tuple[int, int]]:
    """Object type (cell code) -> (column, row) of its first cell (row-major) in one image's 9 codes."""
    out: dict[int, tuple[int, int]] = {}
    for cell, code in enumerate(np.asarray(cells).reshape(NUM_CELLS)):
        if 0 < int(code) < NUM_CODES and int(code) not in out:
            out[int(code)] = (cell % 3, cell // 3)
    return out


def relation_graph(coords: np.ndarray) -> np.ndarray:
    """[2, k, k] signs of x and y of object i minus object j (j == i: the canvas centre), for ``coords`` [k, 2]."""
    coords = np.asarray(coords, np.float64).reshape(-1, 2)
    diff = coords[:, None, :] - coords[None, :, :]
    k = len(coords)
    diff[np.arange(k), np.arange(k)] = coords - 1.0  # the centre cell is (1, 1)
    return np.sign(diff).transpose(2, 0, 1)


def relational_similarity(pred_cells: Any, target_cells: Any) -> np.ndarray:
    """rsim per image (:data:`RSIM_RULE`) of predicted vs target cell codes, both int [N, 9]."""
    pred, target = np.asarray(pred_cells), np.asarray(target_cells)
    if pred.shape != target.shape or pred.ndim != 2 or pred.shape[1] != NUM_CELLS:
        raise ValueError(f"expected two [N, {NUM_CELLS}] code arrays of one shape; got {pred.shape}, {target.shape}")
    out = np.zeros(len(pred))
    for i, (p, t) in enumerate(zip(pred, target)):
        p_pos, t_pos = type_positions(p), type_positions(t)
        if not t_pos and not p_pos:
            out[i] = 1.0
            continue
        shared = sorted(set(p_pos) & set(t_pos))
        if not shared:
            continue
        agree = relation_graph(np.array([p_pos[c] for c in shared])) == relation_graph(np.array([t_pos[c] for c in shared]))
        out[i] = len(shared) / len(t_pos) * agree.mean()
    return out


def turn_scores(pred_cells: Any, target_cells: Any, prev_cells: Any = None) -> dict[str, float]:
    """The semantic scores and rsim of one set of images (fractions in [0, 1]) with their count; with the scenes
    before the turn ``prev_cells``, the edit accuracies too."""
    pred, target = np.asarray(pred_cells).reshape(-1, NUM_CELLS), np.asarray(target_cells).reshape(-1, NUM_CELLS)
    if not len(pred):
        return {}
    scores = semantic_scores(pred, target)
    scores["rsim"] = float(relational_similarity(pred, target).mean())
    scores["images"] = float(len(pred))
    if prev_cells is not None:
        changed = np.asarray(prev_cells).reshape(-1, NUM_CELLS) != target
        right = pred == target
        for name, where in (("edit", changed), ("add", changed & (target > 0)), ("remove", changed & (target == 0))):
            scores[f"{name}_accuracy"] = float(right[where].mean()) if where.any() else float("nan")
    return scores


def per_turn_scores(pred_cells: Any, target_cells: Any, turn_mask: Any,
                    prev_cells: Any = None) -> dict[str, dict[str, float]]:
    """``{"turn1": scores, ..., "all": scores}`` over the real turns (``turn_mask`` [N, T]) of drawn canvases
    ``pred_cells`` [N, T, 9] against the targets ``target_cells`` [N, T, 9] (and the scenes before each turn
    ``prev_cells`` [N, T, 9] for the edit accuracies)."""
    pred, target, mask = np.asarray(pred_cells), np.asarray(target_cells), np.asarray(turn_mask, bool)
    if pred.shape != target.shape or pred.shape[:2] != mask.shape:
        raise ValueError(f"pred {pred.shape}, target {target.shape} and mask {mask.shape} do not match")
    prev = None if prev_cells is None else np.asarray(prev_cells)
    out = {}
    for t in range(mask.shape[1]):
        if mask[:, t].any():
            m = mask[:, t]
            out[f"turn{t + 1}"] = turn_scores(pred[:, t][m], target[:, t][m], None if prev is None else prev[:, t][m])
    out["all"] = turn_scores(pred[mask], target[mask], None if prev is None else prev[mask])
    return out
