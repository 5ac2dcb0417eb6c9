"""CSS scenes as the project describes them: a 3x3 grid of cells holding coloured shapes of two sizes, their
rendering (the official CSS 2D recipe) and their caption. The generator (t2i_tf/datasets/css/generate.py),
the converters and the semantic evaluation all read scenes through this module."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np

ROWS = ("top", "middle", "bottom")
COLS = ("left", "center", "right")
CELL_NAMES = tuple(f"{r}-{c}" for r in ROWS for c in COLS)
SIZES = ("small", "large")
COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (244, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 205, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SHAPES = ("rectangle", "circle", "triangle")
HALF_SIZE_PX = {"small": 4.0, "large": 8.0}  # at 64 px; scaled with the image size
# (colour, shape) pairs absent from every train image: the "novel" part of the test split.
HELD_OUT_COMBOS: tuple[tuple[str, str], ...] = (
    ("red", "circle"),
    ("blue", "triangle"),
    ("green", "rectangle"),
    ("yellow", "triangle"),
)
_CAPTION_PLACES = (
    "at the top left", "at the top", "at the top right",
    "on the left", "in the center", "on the right",
    "at the bottom left", "at the bottom", "at the bottom right",
)

Obj = tuple[str, str, str]  # (size, colour, shape)
Scene = tuple[Obj | None, ...]  # 9 cells in row-major order, at most one object each
Edit = tuple[str, int, Obj | None]  # (kind, cell, new object or None for remove)


def held_out_combos() -> list[tuple[str, str]]:
    """The (colour, shape) combinations that never appear in generated train images."""
    return list(HELD_OUT_COMBOS)


def cell_pos(cell: int) -> tuple[float, float]:
    """Centre (y, x) of a grid cell as fractions of the image height/width."""
    return ((cell // 3 + 0.5) / 3, (cell % 3 + 0.5) / 3)


def pos_cell(pos: Sequence[float]) -> int:
    """The grid cell that holds a (y, x) position given as fractions."""
    row = min(max(int(float(pos[0]) * 3), 0), 2)
    col = min(max(int(float(pos[1]) * 3), 0), 2)
    return row * 3 + col


def scene_objects(scene: Scene) -> list[dict[str, Any]]:
    """A scene as the CSS object list: ``{'pos', 'size', 'color', 'shape'}`` per object."""
    return [
        {"pos": cell_pos(cell), "size": obj[0], "color": obj[1], "shape": obj[2]}
        for cell, obj in enumerate(scene)
        if obj is not None
    ]


@lru_cache(maxsize=4096)
def _shape_spans(y: float, x: float, s: float, shape: str, height: int, width: int) -> tuple[tuple[int, int, int], ...]:
    """Rows and column ranges ``(row, col0, col1)`` an object covers (the official 2D recipe)."""
    spans = []
    if shape == "rectangle":
        for r in range(int(y - s), int(y + s)):
            spans.append((r, int(x - s), int(x + s)))
    elif shape == "circle":  # a diamond
        for r in range(int(y - s), int(y + s) + 1):
            left = x + (abs(r - y) - s)
            spans.append((r, int(left), int(2 * x - left)))
    elif shape == "triangle":  # pointing up
        for r in range(int(y - s), int(y + s)):
            a = x + (r - y + s) / 2
            b = 2 * x - a
            spans.append((r, int(min(a, b)), int(max(a, b))))
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    return tuple(
        (r, max(c0, 0), min(c1, width)) for r, c0, c1 in spans if 0 <= r < height and min(c1, width) > max(c0, 0)
    )


def render_scene(objects: Sequence[dict[str, Any]], image_size: int = 64) -> np.ndarray:
    """Render a CSS object list to a uint8 [H, W, 3] image on a white background."""
    height = width = int(image_size)
    canvas = np.ones((height, width, 3), dtype=np.float32)
    scale = image_size / 64.0
    for obj in objects:
        y, x = float(obj["pos"][0]) * height, float(obj["pos"][1]) * width
        color = np.asarray(COLORS[obj["color"]], dtype=np.float32) / 255.0
        for r, c0, c1 in _shape_spans(y, x, HALF_SIZE_PX[obj["size"]] * scale, obj["shape"], height, width):
            canvas[r, c0:c1] = color
    return np.round(canvas * 255.0).astype(np.uint8)


def scene_caption(objects: Sequence[dict[str, Any]]) -> str:
    """A deterministic natural caption of a scene (for text-to-image), e.g.
    'a large red circle at the top left and a small blue triangle in the center'."""
    parts = [
        f"a {o['size']} {o['color']} {o['shape']} {_CAPTION_PLACES[pos_cell(o['pos'])]}"
        for o in sorted(objects, key=lambda o: pos_cell(o["pos"]))
    ]
    if not parts:
        return "an empty white canvas"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]
