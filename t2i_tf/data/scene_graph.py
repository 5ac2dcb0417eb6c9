"""CSS scene graphs (sg2im): objects and relations read off the 3x3 grid, the ground-truth layout, JSON graphs.

A graph is two padded tensors, the form the sg2im model, the tf.data pipeline and the exported
``generate(objects, triples, seed)`` share:

- ``objects`` int32 ``[O]``: object ids, slot 0 the ``__image__`` object (as the official code adds one per
  image), 0 = no object. Id ``1`` is ``__image__``; id ``code + 1`` is the CSS object of cell code ``code``
  (t2i_tf/data/css_cells.py), named ``"<size> <colour> <shape>"``, e.g. ``"large red circle"``;
- ``triples`` int32 ``[T, 3]``: ``(subject slot, predicate id, object slot)``, ``-1`` rows are padding.

Predicates (ids = positions in ``PREDICATES``): ``__in_image__`` (an object with no place given), the 9 CSS
places ("at top left" ... "at bottom right", object -> ``__image__``) and 8 relative ones between two objects
("left of", "right of", "above", "below" in the same row / column, "above left of" ... for diagonals).

From a record's ``scene_cells`` (:func:`graph_from_cells`, TF ops, batched) a graph holds every object in cell
order, its place triple, and one relative triple per pair (earlier cell as subject); boxes are the rendered
objects' extents ``[x0, y0, x1, y1]`` in [0, 1] (a cell's centre +- the size's half side, as
t2i_tf/data/css_scene.py renders them), masks the shapes rendered into their boxes (``mask_size`` px).

A JSON graph (:func:`encode_graph`) is the official sg2im form:
``{"objects": ["large red circle", "small blue triangle"], "relationships": [[0, "left of", 1],
[1, "at bottom right", "image"]]}``; objects without a relation to the image get ``__in_image__``.
A CSS caption is read into the same graph as its scene's records (:func:`caption_cells`).

The names above are CSS's (:data:`CSS_VOCAB`); Visual Genome / COCO-Stuff records (t2i_tf/data/scene_graph_records.py)
bring their own :class:`GraphVocab` (the official vocabularies, ``__image__`` = id 1, ``__in_image__`` = predicate 0),
and JSON graphs are read with it (no captions, no places: every object gets ``__in_image__``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import tensorflow as tf

from t2i_tf.data.css_cells import (
    COLOR_NAMES,
    NUM_CELLS,
    NUM_CODES,
    decode_object,
    encode_object,
)
from t2i_tf.data.css_scene import HALF_SIZE_PX, SHAPES, SIZES, _shape_spans
from t2i_tf.errors import UserError

IMAGE = "__image__"
IN_IMAGE = "__in_image__"
PLACES = ("at top left", "at top", "at top right", "on the left", "in the center", "on the right",
          "at bottom left", "at bottom", "at bottom right")
# Relative predicates by (sign of the row difference, sign of the column difference) of subject minus object.
_RELATIVE = {(-1, -1): "above left of", (-1, 0): "above", (-1, 1): "above right of", (0, -1): "left of",
             (0, 1): "right of", (1, -1): "below left of", (1, 0): "below", (1, 1): "below right of"}
RELATIVE = ("left of", "right of", "above", "below", "above left of", "above right of", "below left of",
            "below right of")
PREDICATES: tuple[str, ...] = (IN_IMAGE, *PLACES, *RELATIVE)
PLACE_IDS = {p: 1 + i for i, p in enumerate(PLACES)}
PREDICATE_IDS = {p: i for i, p in enumerate(PREDICATES)}
# Object names by id - 1: "__image__", then the 48 CSS objects in cell-code order.
OBJECT_NAMES: tuple[str, ...] = (IMAGE, *(" ".join(decode_object(c)) for c in range(1, NUM_CODES)))
OBJECT_IDS = {name: i + 1 for i, name in enumerate(OBJECT_NAMES)}
IMAGE_ID = 1
NUM_OBJECT_IDS = len(OBJECT_NAMES) + 1  # with 0 = padding
NUM_PREDICATES = len(PREDICATES)
MAX_CSS_OBJECTS = NUM_CELLS
GRAPH_RULE = ("objects int32 [N, O]: object ids (0 = none; 1 = __image__; see object_names, id = index + 1); "
              "triples int32 [N, T, 3]: (subject slot, predicate id, object slot), rows of -1 are padding")

# Relative predicate id of (subject cell, object cell), for every ordered pair of cells (-1 on the diagonal).
_REL_TABLE = np.full([NUM_CELLS, NUM_CELLS], -1, np.int32)
for _s, _o in itertools.permutations(range(NUM_CELLS), 2):
    _d = (int(np.sign(_s // 3 - _o // 3)), int(np.sign(_s % 3 - _o % 3)))
    _REL_TABLE[_s, _o] = PREDICATE_IDS[_RELATIVE[_d]]
# The pairs (i < j) of object slots 1..9 the graph of a record relates.
_PAIRS = np.array(list(itertools.combinations(range(MAX_CSS_OBJECTS), 2)), np.int32)
CSS_NUM_TRIPLES = MAX_CSS_OBJECTS + len(_PAIRS)  # 9 places + 36 pairs
CSS_NUM_SLOTS = 1 + MAX_CSS_OBJECTS


@dataclasses.dataclass(frozen=True)
class GraphVocab:
    """A dataset's object and predicate names: object id = position + 1 (0 = no object; ``object_names[0]`` is
    ``__image__``), predicate id = position (``predicates[0]`` is ``__in_image__``). ``image_predicates`` relate an
    object to the image (CSS: ``__in_image__`` and the places; elsewhere ``__in_image__`` only); names in
    ``unused_names`` (COCO's 'NONE' holes) are never read."""

    dataset: str
    object_names: tuple[str, ...]
    predicates: tuple[str, ...]
    image_predicates: frozenset[str] = frozenset({IN_IMAGE})
    unused_names: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.object_names or self.object_names[0] != IMAGE:
            raise UserError(f"{self.dataset} vocabulary: the first object name must be {IMAGE!r}")
        if not self.predicates or self.predicates[0] != IN_IMAGE:
            raise UserError(f"{self.dataset} vocabulary: the first predicate must be {IN_IMAGE!r}")

    @property
    def num_object_ids(self) -> int:
        """Rows of the object embedding / classes of the object classifier (with 0 = none)."""
        return len(self.object_names) + 1

    @property
    def num_predicates(self) -> int:
        return len(self.predicates)

    def object_id(self, name: Any) -> int | None:
        """The id of an object name (exact, else lower-cased with single spaces); None for unknown names."""
        ids = _name_ids(self)
        if not isinstance(name, str) or name in self.unused_names or name == IMAGE:
            return None
        return ids.get(name, ids.get(" ".join(name.lower().split())))

    def predicate_id(self, name: Any) -> int | None:
        return self.predicates.index(name) if isinstance(name, str) and name in self.predicates else None

    def describe_objects(self) -> str:
        """What an object name must be, for error messages."""
        if self.dataset == "css":
            return (f"expected '<size> <colour> <shape>' with sizes {'/'.join(SIZES)}, colours {'/'.join(COLOR_NAMES)}, "
                    f"shapes {'/'.join(SHAPES)}")
        names = [n for n in self.object_names[1:] if n not in self.unused_names]
        return f"not one of the {len(names)} {self.dataset} object names (e.g. {', '.join(names[:5])}; see vocab.json)"


@lru_cache(maxsize=8)
def _name_ids(vocab: GraphVocab) -> dict[str, int]:
    ids: dict[str, int] = {}
    for i, name in enumerate(vocab.object_names):
        ids.setdefault(" ".join(name.lower().split()), i + 1)
    ids.update({name: i + 1 for i, name in enumerate(vocab.object_names)})
    return ids


CSS_VOCAB = GraphVocab("css", OBJECT_NAMES, PREDICATES, frozenset({IN_IMAGE, *PLACES}))


@lru_cache(maxsize=16)
def shape_masks(mask_size: int) -> np.ndarray:
    """float32 [3 shapes, M, M]: each CSS shape rendered to fill its box (the renderer's spans at 16 M px,
    area-averaged to M, kept where at least half covered)."""
    big = 16 * int(mask_size)
    out = np.zeros([len(SHAPES), mask_size, mask_size], np.float32)
    for k, shape in enumerate(SHAPES):
        canvas = np.zeros([big, big], np.float32)
        for r, c0, c1 in _shape_spans(big / 2, big / 2, big / 2, shape, big, big):
            canvas[r, c0:c1] = 1.0
        out[k] = canvas.reshape(mask_size, 16, mask_size, 16).mean(axis=(1, 3)) >= 0.5
    return out


def cell_boxes(cells: tf.Tensor, sizes: tf.Tensor) -> tf.Tensor:
    """[x0, y0, x1, y1] boxes in [0, 1] of objects of size index ``sizes`` centred in grid ``cells`` (any shape)."""
    half = tf.gather(tf.constant([HALF_SIZE_PX[s] / 64.0 for s in SIZES], tf.float32), sizes)
    cy = (tf.cast(cells // 3, tf.float32) + 0.5) / 3.0
    cx = (tf.cast(cells % 3, tf.float32) + 0.5) / 3.0
    return tf.stack([cx - half, cy - half, cx + half, cy + half], axis=-1)


def graph_from_cells(scene_cells: tf.Tensor, mask_size: int = 16) -> dict[str, tf.Tensor]:
    """The scene graph and ground-truth layout of ``scene_cells`` int [B, 9] (TF ops, usable in tf.data):
    ``objects`` int32 [B, 10], ``triples`` int32 [B, 45, 3], ``boxes`` float32 [B, 10, 4], ``masks`` float32
    [B, 10, M, M] (with ``mask_size`` M > 0), ``cells`` int32 [B, 10] (each slot's grid cell, -1 for none)."""
    cells = tf.cast(scene_cells, tf.int32)
    b = tf.shape(cells)[0]
    occupied = cells > 0
    index = tf.range(NUM_CELLS, dtype=tf.int32)[None, :]
    order = tf.argsort(tf.where(occupied, index, index + NUM_CELLS), axis=1, stable=True)  # occupied first
    slot_occ = tf.gather(occupied, order, batch_dims=1)
    slot_code = tf.gather(cells, order, batch_dims=1)
    ones = tf.ones([b, 1], tf.int32)
    objects = tf.concat([ones, tf.where(slot_occ, slot_code + 1, 0)], axis=1)
    slot_cell = tf.concat([-ones, tf.where(slot_occ, order, -1)], axis=1)

    slots = tf.range(1, MAX_CSS_OBJECTS + 1, dtype=tf.int32)[None, :] + tf.zeros([b, 1], tf.int32)
    place = tf.stack([slots, 1 + order, tf.zeros_like(slots)], axis=-1)
    place = tf.where(slot_occ[..., None], place, -1)
    i, j = tf.constant(_PAIRS[:, 0]), tf.constant(_PAIRS[:, 1])
    cell_i, cell_j = tf.gather(order, i, axis=1), tf.gather(order, j, axis=1)
    rel = tf.gather_nd(tf.constant(_REL_TABLE), tf.stack([cell_i, cell_j], axis=-1))
    pair = tf.stack([tf.broadcast_to(i + 1, tf.shape(rel)), rel, tf.broadcast_to(j + 1, tf.shape(rel))], axis=-1)
    valid = tf.gather(slot_occ, i, axis=1) & tf.gather(slot_occ, j, axis=1)
    pair = tf.where(valid[..., None], pair, -1)
    triples = tf.concat([place, pair], axis=1)

    code = tf.maximum(slot_code - 1, 0)
    size = code // (len(COLOR_NAMES) * len(SHAPES))
    shape = code % len(SHAPES)
    obj_boxes = tf.where(slot_occ[..., None], cell_boxes(order, size), 0.0)
    image_box = tf.tile(tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), [b, 1, 1])
    out = {"objects": objects, "triples": triples, "boxes": tf.concat([image_box, obj_boxes], axis=1),
           "cells": slot_cell}
    if mask_size > 0:
        table = tf.constant(shape_masks(int(mask_size)))
        obj_masks = tf.where(slot_occ[..., None, None], tf.gather(table, shape), 0.0)
        image_mask = tf.ones([b, 1, mask_size, mask_size])
        out["masks"] = tf.concat([image_mask, obj_masks], axis=1)
    return out


def empty_graph(n: int) -> dict[str, tf.Tensor]:
    """``n`` graphs holding only the ``__image__`` object (the text-ignoring reference's input)."""
    return {"objects": tf.ones([n, 1], tf.int32), "triples": tf.fill([n, 1, 3], -1)}


# ------------------------------------------------------------------------------------------ captions
_PLACE_PHRASES = {"at the top left": 0, "at the top": 1, "at the top right": 2, "on the left": 3, "in the center": 4,
                  "on the right": 5, "at the bottom left": 6, "at the bottom": 7, "at the bottom right": 8}
_PLACE_PATTERN = "|".join(sorted((re.escape(p) for p in _PLACE_PHRASES), key=len, reverse=True))
_OBJECT_RE = re.compile(rf"\b({'|'.join(SIZES)}) ({'|'.join(COLOR_NAMES)}) ({'|'.join(SHAPES)}) ({_PLACE_PATTERN})\b")
_FILLER = {"a", "an", "and"}
EMPTY_CAPTIONS = ("an empty white canvas", "a blank white picture", "nothing but a white background",
                  "an empty white image")


def caption_cells(caption: str) -> list[int]:
    """The 9 cell codes a CSS caption ("a large red circle at the top left and a small blue triangle in the
    center", as t2i_tf/data/css_scene.scene_caption words scenes) describes; a UserError for other text."""
    text = " ".join(caption.lower().replace(",", " , ").split())
    if text.strip(" .") in EMPTY_CAPTIONS:
        return [0] * NUM_CELLS
    cells = [0] * NUM_CELLS
    for m in _OBJECT_RE.finditer(text):
        cell = _PLACE_PHRASES[m.group(4)]
        if cells[cell]:
            raise UserError(f"caption {caption!r}: two objects {m.group(4)}")
        cells[cell] = encode_object(m.group(1), m.group(2), m.group(3))
    rest = [w for w in _OBJECT_RE.sub(" ", text).replace(",", " ").replace(".", " ").split() if w not in _FILLER]
    if rest or not any(cells):
        raise UserError(f"caption {caption!r} is not a CSS scene caption: expected objects like 'a large red circle "
                        f"at the top left' joined by ',' / 'and' (sizes {'/'.join(SIZES)}, colours "
                        f"{'/'.join(COLOR_NAMES)}, shapes {'/'.join(SHAPES)}, places "
                        f"{'; '.join(_PLACE_PHRASES)})" + (f"; could not read: {' '.join(rest)!r}" if rest else ""))
    return cells


# --------------------------------------------------------------------------------------- JSON graphs
def _object_slot(value: Any, num_objects: int, where: str) -> int:
    """Slot of a relationship end: an object index (-> index + 1) or "image" / "__image__" (-> 0)."""
    if isinstance(value, str) and value in ("image", IMAGE):
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < num_objects:
        raise UserError(f"{where}: {value!r} is not an object index 0..{num_objects - 1} (or \"image\")")
    return value + 1


def encode_graph(graph: Any, max_objects: int = MAX_CSS_OBJECTS, where: str = "graph",
                 vocab: GraphVocab = CSS_VOCAB) -> tuple[np.ndarray, np.ndarray]:
    """A JSON scene graph (module docstring) as (objects int32 [1 + n], triples int32 [t, 3]) in ``vocab``'s ids; a
    one-line UserError for unknown object / predicate names, triples pointing to missing objects or too many objects."""
    if not isinstance(graph, dict) or not isinstance(graph.get("objects"), list):
        raise UserError(f"{where}: expected a JSON object {{\"objects\": [...], \"relationships\": [[s, p, o], ...]}}")
    names, rels = graph["objects"], graph.get("relationships", graph.get("triples", []))
    if not isinstance(rels, list):
        raise UserError(f"{where}: \"relationships\" must be a list of [subject, predicate, object]")
    if len(names) > max_objects:
        raise UserError(f"{where}: {len(names)} objects, at most {max_objects} are allowed")
    objects = [IMAGE_ID]
    for k, name in enumerate(names):
        oid = vocab.object_id(name)
        if oid is None:
            raise UserError(f"{where}: unknown object {name!r} (object {k}): {vocab.describe_objects()}")
        objects.append(oid)
    triples, in_image = [], set()
    for k, rel in enumerate(rels):
        at = f"{where}: relationship {k} {rel!r}"
        if not isinstance(rel, (list, tuple)) or len(rel) != 3:
            raise UserError(f"{at}: expected [subject, predicate, object]")
        s, o = _object_slot(rel[0], len(names), at), _object_slot(rel[2], len(names), at)
        pred = vocab.predicate_id(rel[1])
        if pred is None:
            raise UserError(f"{at}: unknown predicate {rel[1]!r}; expected one of {', '.join(vocab.predicates)}")
        to_image = rel[1] in vocab.image_predicates
        if s == 0 or (o == 0) != to_image:
            raise UserError(f"{at}: {rel[1]!r} relates " + ("an object to the image" if to_image else "two objects")
                            + (" (the subject cannot be the image)" if s == 0 else ""))
        if s == o:
            raise UserError(f"{at}: an object cannot relate to itself")
        if o == 0:
            in_image.add(s)
        triples.append([s, pred, o])
    triples += [[s, PREDICATE_IDS[IN_IMAGE], 0] for s in range(1, len(objects)) if s not in in_image]
    return np.asarray(objects, np.int32), np.asarray(triples, np.int32).reshape(-1, 3)


def read_graph(text: str, max_objects: int = MAX_CSS_OBJECTS,
               vocab: GraphVocab = CSS_VOCAB) -> tuple[np.ndarray, np.ndarray]:
    """A graph from a JSON file path (``*.json``), inline JSON (``{...}``) or, for CSS, a caption (via its cells)."""
    stripped = text.strip()
    if stripped.lower().endswith(".json") and not stripped.startswith("{"):
        if not os.path.isfile(stripped):
            raise UserError(f"scene graph file {stripped} not found")
        try:
            with open(stripped) as f:
                return encode_graph(json.load(f), max_objects, stripped, vocab)
        except json.JSONDecodeError as e:
            raise UserError(f"scene graph file {stripped}: not valid JSON ({e})") from None
    if stripped.startswith("{"):
        try:
            graph = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise UserError(f"scene graph {stripped[:40]!r}...: not valid JSON ({e})") from None
        return encode_graph(graph, max_objects, vocab=vocab)
    if vocab.dataset != "css":
        raise UserError(f"{stripped[:60]!r} is not a scene graph: a {vocab.dataset} model reads a JSON file (*.json) or "
                        "inline JSON {\"objects\": [names], \"relationships\": [[i, predicate, j], ...]}")
    cells = caption_cells(stripped)
    g = graph_from_cells(tf.constant([cells]), mask_size=0)
    objects, triples = g["objects"][0].numpy(), g["triples"][0].numpy()
    keep_o, keep_t = objects > 0, triples[:, 0] >= 0
    return objects[keep_o], triples[keep_t]


def pad_graphs(graphs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """A batch of (objects, triples) padded to the longest: objects with 0, triples with -1 rows."""
    o = max(len(g[0]) for g in graphs)
    t = max(max(len(g[1]) for g in graphs), 1)
    objects = np.zeros([len(graphs), o], np.int32)
    triples = np.full([len(graphs), t, 3], -1, np.int32)
    for k, (obj, tri) in enumerate(graphs):
        objects[k, :len(obj)] = obj
        triples[k, :len(tri)] = tri
    return objects, triples
