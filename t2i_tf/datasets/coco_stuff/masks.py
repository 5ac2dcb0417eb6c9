"""COCO segmentations -> binary masks, without pycocotools: polygons rasterised with PIL, RLE decoded in numpy.

A COCO ``segmentation`` is one of (the COCO data format, cocodataset.org/#format-data):

- polygons ``[[x0, y0, x1, y1, ...], ...]`` in pixels (``iscrowd`` 0 instances): their union, each filled with
  ``PIL.ImageDraw.polygon`` (the pixels the outline passes through included; pycocotools' rasteriser differs on
  boundary pixels only);
- uncompressed RLE ``{"size": [h, w], "counts": [n0, n1, ...]}`` (crowd instances): alternating runs of 0 and 1,
  starting with 0, over the pixels in column-major order;
- compressed RLE ``{"size": [h, w], "counts": "<string>"}`` (COCO-Stuff): the same runs, each written as 5-bit
  groups in characters from '0' (48), 0x20 marking "more groups", 0x10 in the last group the sign, and every run
  after the third stored as the difference to the run two before.

:func:`box_mask` then crops the box (rounded as sg2im/data/coco.py:276-280 does) and shrinks it to M x M: a cell is
in the mask when more than half of it is covered (coco.py:281-283 thresholds a bilinear resize at the same half).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from t2i_tf.datasets.scene_graph_writer import BadAnnotation


def rle_counts_from_string(text: str) -> list[int]:
    """The run lengths of a compressed RLE ``counts`` string (module docstring)."""
    counts: list[int] = []
    p = 0
    while p < len(text):
        value, shift, more = 0, 0, True
        while more:
            if p >= len(text):
                raise BadAnnotation("compressed RLE ends inside a run")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise BadAnnotation(f"compressed RLE has the character {text[p]!r}")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            p += 1
            shift += 5
            if not more and c & 0x10:
                value -= 1 << shift  # negative: sign-extend the last group
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def decode_rle(counts: Sequence[int], height: int, width: int) -> np.ndarray:
    """uint8 [height, width] of run lengths (0-runs first, column-major pixels)."""
    runs = np.asarray(counts, np.int64)
    if runs.ndim != 1 or (runs < 0).any() or runs.sum() != height * width:
        raise BadAnnotation(f"RLE runs sum to {int(runs.sum()) if runs.ndim == 1 else '?'}, "
                            f"not {height} x {width} pixels")
    values = (np.arange(len(runs)) % 2).astype(np.uint8)
    flat = np.repeat(values, runs)
    return flat.reshape(width, height).T.copy()


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """uint8 [height, width]: the union of the filled polygons (flat ``[x0, y0, x1, y1, ...]`` lists)."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        if (not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2
                or not all(isinstance(v, numbers.Real) for v in poly)):
            raise BadAnnotation("a polygon must be a flat list of at least 3 x, y pairs")
        draw.polygon([(float(poly[k]), float(poly[k + 1])) for k in range(0, len(poly), 2)], fill=1, outline=1)
    return np.asarray(canvas, np.uint8)


def segmentation_mask(seg: Any, height: int, width: int) -> np.ndarray:
    """uint8 [height, width] of a COCO segmentation (polygons, uncompressed or compressed RLE)."""
    if isinstance(seg, list):
        return polygons_to_mask(seg, height, width)
    if not isinstance(seg, dict) or "counts" not in seg:
        raise BadAnnotation("segmentation is neither polygons nor RLE")
    size = seg.get("size", [height, width])
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise BadAnnotation("RLE size must be [height, width]")
    counts = seg["counts"]
    if isinstance(counts, str):
        counts = rle_counts_from_string(counts)
    elif not (isinstance(counts, list) and all(isinstance(v, int) for v in counts)):
        raise BadAnnotation("RLE counts must be a string or a list of ints")
    return decode_rle(counts, size[0], size[1])


def box_mask(mask: np.ndarray, bbox: Sequence[float], mask_size: int) -> np.ndarray:
    """uint8 [M, M]: the box ``[x, y, w, h]`` of a full-image mask (at least one pixel), shrunk to M x M by area."""
    x, y, w, h = bbox
    x0, x1 = round(x), round(x + w)  # Python rounding, as coco.py:276-277
    y0, y1 = round(y), round(y + h)
    crop = mask[y0:max(y0 + 1, y1), x0:max(x0 + 1, x1)].astype(np.float32)
    if crop.size == 0:
        return np.zeros([mask_size, mask_size], np.uint8)
    shrunk = Image.fromarray(crop).resize((mask_size, mask_size), Image.BOX)
    return (np.asarray(shrunk) > 0.5).astype(np.uint8)
