"""The per-cell CSS scene code: what ``scene_cells`` in captioned CSS records means (the one definition).

A CSS scene is a 3x3 grid of cells, numbered row-major as ``t2i_tf.data.css_scene.pos_cell`` does
(0 = top-left, 2 = top-right, 8 = bottom-right), each empty or holding one object (size, colour, shape).
``scene_cells`` is 9 int64 codes, one per cell:

- ``0``: empty;
- ``1 + (size * NUM_COLORS + colour) * NUM_SHAPES + shape`` (1..48): an object, where ``size``,
  ``colour`` and ``shape`` are indices into ``SIZES`` (small, large), ``COLOR_NAMES`` (gray, red, blue,
  green, brown, purple, cyan, yellow) and ``SHAPES`` (rectangle, circle, triangle) — the orders of
  t2i_tf/data/css_scene.py. E.g. a large red circle is ``1 + (1 * 8 + 1) * 3 + 1 = 29``.

:func:`code_factors` / :func:`factors_code` split and join codes arithmetically, so they work on numpy
arrays and TF tensors alike (the classifier predicts the factors separately).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from t2i_tf.data.css_scene import COLORS, SHAPES, SIZES, cell_pos, pos_cell

NUM_CELLS = 9
EMPTY = 0
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
NUM_SIZES, NUM_COLORS, NUM_SHAPES = len(SIZES), len(COLOR_NAMES), len(SHAPES)
NUM_CODES = 1 + NUM_SIZES * NUM_COLORS * NUM_SHAPES  # 49, including EMPTY
CODE_RULE = (f"0 = empty, else 1 + (size * {NUM_COLORS} + colour) * {NUM_SHAPES} + shape (sizes {','.join(SIZES)}; "
             f"colours {','.join(COLOR_NAMES)}; shapes {','.join(SHAPES)}); cells row-major, 0 = top-left")


def encode_object(size: str, color: str, shape: str) -> int:
    """The cell code (1..48) of one object given by its names."""
    try:
        s, c, h = SIZES.index(size), COLOR_NAMES.index(color), SHAPES.index(shape)
    except ValueError:
        raise ValueError(f"unknown object ({size!r}, {color!r}, {shape!r}): sizes {SIZES}, colours {COLOR_NAMES}, "
                         f"shapes {SHAPES}") from None
    return 1 + (s * NUM_COLORS + c) * NUM_SHAPES + h


def decode_object(code: int) -> tuple[str, str, str] | None:
    """(size, colour, shape) names of a cell code; None for an empty cell."""
    code = int(code)
    if not 0 <= code < NUM_CODES:
        raise ValueError(f"cell code {code} out of range 0..{NUM_CODES - 1}")
    if code == EMPTY:
        return None
    _, s, c, h = code_factors(code)
    return SIZES[int(s)], COLOR_NAMES[int(c)], SHAPES[int(h)]


def code_factors(codes: Any) -> tuple[Any, Any, Any, Any]:
    """(occupied, size, colour, shape) indices of codes (an int, numpy or TF ints); an empty cell's attributes are 0."""
    occupied = codes > 0
    rest = tf.maximum(codes - 1, 0) if tf.is_tensor(codes) else np.maximum(codes - 1, 0)
    return occupied, rest // (NUM_COLORS * NUM_SHAPES), (rest // NUM_SHAPES) % NUM_COLORS, rest % NUM_SHAPES


def factors_code(occupied: Any, size: Any, color: Any, shape: Any) -> Any:
    """Cell codes from (occupied, size, colour, shape) indices: numpy in, numpy out; TF in, TF out."""
    code = 1 + (size * NUM_COLORS + color) * NUM_SHAPES + shape
    if tf.is_tensor(code):
        return tf.where(tf.cast(occupied, tf.bool), code, tf.zeros_like(code))
    return np.where(np.asarray(occupied, bool), code, EMPTY)


def scene_cells(objects: Sequence[dict[str, Any]]) -> list[int]:
    """The 9 cell codes of a CSS object list (``{'pos', 'size', 'color', 'shape'}`` each); ValueError when two
    objects share a cell."""
    cells = [EMPTY] * NUM_CELLS
    for o in objects:
        cell = pos_cell(o["pos"])
        if cells[cell] != EMPTY:
            raise ValueError(f"two objects in cell {cell} (pos {tuple(o['pos'])}): a cell holds at most one")
        cells[cell] = encode_object(o["size"], o["color"], o["shape"])
    return cells


def cells_objects(cells: Sequence[int]) -> list[dict[str, Any]]:
    """The CSS object list of 9 cell codes (objects at their cell centres), e.g. to render or caption them."""
    if len(cells) != NUM_CELLS:
        raise ValueError(f"expected {NUM_CELLS} cell codes, got {len(cells)}")
    out = []
    for cell, code in enumerate(cells):
        obj = decode_object(int(code))
        if obj is not None:
            out.append({"pos": cell_pos(cell), "size": obj[0], "color": obj[1], "shape": obj[2]})
    return out


def combo_mask(codes: np.ndarray, combos: Sequence[tuple[str, str]]) -> np.ndarray:
    """True where a code is an object whose (colour, shape) is one of ``combos`` (e.g. CSS's held-out ones)."""
    codes = np.asarray(codes)
    occupied, _, color, shape = code_factors(codes)
    wanted = np.zeros([NUM_COLORS, NUM_SHAPES], bool)
    for c, s in combos:
        wanted[COLOR_NAMES.index(c), SHAPES.index(s)] = True
    return occupied & wanted[color, shape]
