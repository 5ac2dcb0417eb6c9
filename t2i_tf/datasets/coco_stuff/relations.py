"""The geometric relations google/sg2im draws between COCO objects (sg2im/data/coco.py:295-350).

Predicates (coco.py:197-205, ids = positions): ``__in_image__``, ``left of``, ``right of``, ``above``, ``below``,
``inside``, ``surrounding``. For a subject s and an object o with boxes ``[x0, y0, x1, y1]`` (y down): s strictly
contains o's box -> ``surrounding``; s strictly inside o's box -> ``inside``; else by the angle theta = atan2(dy, dx)
of s's centre minus o's centre: |theta| >= 3pi/4 ``left of``, [-3pi/4, -pi/4) ``above``, [-pi/4, pi/4) ``right of``,
[pi/4, 3pi/4) ``below``. A centre is the mean position of the object's mask cells, the mask's M x M grid spanning the
box with cell positions ``linspace(x0, x1, M)`` (``linspace(y0, y1, M)``); the box centre when the mask is empty.
"""

from __future__ import annotations

import math

import numpy as np

PREDICATES = ("__in_image__", "left of", "right of", "above", "below", "inside", "surrounding")
PREDICATE_IDS = {p: i for i, p in enumerate(PREDICATES)}


def mask_centre(box: np.ndarray, mask: np.ndarray | None) -> tuple[float, float]:
    """(x, y) of an object: the mean of its mask cells' positions in the box, or the box centre."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if mask is None or not mask.any():
        return 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    m = mask.shape[0]
    ys, xs = np.nonzero(mask)
    grid_x, grid_y = np.linspace(x0, x1, m), np.linspace(y0, y1, m)
    return float(grid_x[xs].mean()), float(grid_y[ys].mean())


def geometric_predicate(box_s: np.ndarray, box_o: np.ndarray, centre_s: tuple[float, float],
                        centre_o: tuple[float, float]) -> str:
    """The predicate of subject s and object o (module docstring)."""
    sx0, sy0, sx1, sy1 = box_s
    ox0, oy0, ox1, oy1 = box_o
    if sx0 < ox0 and sx1 > ox1 and sy0 < oy0 and sy1 > oy1:
        return "surrounding"
    if sx0 > ox0 and sx1 < ox1 and sy0 > oy0 and sy1 < oy1:
        return "inside"
    theta = math.atan2(centre_s[1] - centre_o[1], centre_s[0] - centre_o[0])
    if theta >= 3 * math.pi / 4 or theta <= -3 * math.pi / 4:
        return "left of"
    if theta < -math.pi / 4:
        return "above"
    if theta < math.pi / 4:
        return "right of"
    return "below"


def pair_triples(boxes: np.ndarray, masks: np.ndarray | None) -> list[tuple[int, int, int]]:
    """``(s, predicate id, o)`` for every ordered pair s != o of the objects (boxes [n, 4] in [0, 1], masks
    [n, M, M]); the reader draws one of each object's pairs per graph, as coco.py:321-350 draws one per image load."""
    centres = [mask_centre(boxes[k], None if masks is None else masks[k]) for k in range(len(boxes))]
    return [(s, PREDICATE_IDS[geometric_predicate(boxes[s], boxes[o], centres[s], centres[o])], o)
            for s in range(len(boxes)) for o in range(len(boxes)) if s != o]
