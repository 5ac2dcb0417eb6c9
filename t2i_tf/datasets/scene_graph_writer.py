"""Shared writer of the Visual Genome / COCO-Stuff converters: scene-graph TFRecords (t2i_tf/data/scene_graph_records.py
has the schema), ``vocab.json`` and ``info.json`` with a skip report.

A converter hands :class:`SceneGraphWriter` its :class:`GraphItem` one at a time (splits may interleave, so one
pass over the annotation files writes every split). The writer reads each image
(PNG / JPEG only: t2i_tf/data/images.py), asks the item for its graph at the image's size, shrinks the image to
``max_side`` and writes one example; an image that is missing, unreadable or not a complete PNG / JPEG, or whose
annotations are malformed, is a counted skip with its reason, never a crash.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from t2i_tf.data import images
from t2i_tf.data.records import (
    ShardedRecordWriter,
    bytes_feature,
    float_feature,
    int64_feature,
    make_example,
    write_info,
)
from t2i_tf.data.scene_graph_records import FORMAT, VOCAB_FILE
from t2i_tf.datasets.t2i_common import (
    CORRUPT_IMAGE,
    DEFAULT_EXAMPLES_PER_SHARD,
    DEFAULT_MAX_SIDE,
    JPEG_QUALITY,
    CorruptImage,
    SkipCounter,
    check_shard_options,
    process_image,
    read_image_file,
    summary_line,
)
from t2i_tf.errors import UserError
from t2i_tf.files import publish_staging, start_staging, write_text_atomic

BAD_ANNOTATION = "bad_annotation"


class BadAnnotation(Exception):
    """An annotation entry of one image that cannot be read (a missing key, a wrong type): that image is skipped."""


@dataclasses.dataclass
class Graph:
    """One image's objects (vocabulary ids), boxes ``[x0, y0, x1, y1]`` in [0, 1], triples over object indices and,
    for COCO, uint8 masks ``[n, M, M]``."""

    objects: Sequence[int]
    boxes: np.ndarray
    triples: Sequence[Sequence[int]]
    masks: np.ndarray | None = None


@dataclasses.dataclass
class GraphItem:
    """An image to write: its file, and ``graph(width, height)`` (a :class:`Graph`, or BadAnnotation)."""

    name: str
    image_id: int
    image_path: str
    graph: Callable[[int, int], Graph]


class SceneGraphWriter:
    """Writes :class:`GraphItem` as ``{split}-NNNNN.tfrecord`` shards, then vocab.json and info.json."""

    def __init__(self, out_dir: str, dataset: str, max_side: int = DEFAULT_MAX_SIDE,
                 examples_per_shard: int = DEFAULT_EXAMPLES_PER_SHARD, mask_size: int = 0):
        check_shard_options(max_side, examples_per_shard)
        self.final_dir = out_dir
        self.out_dir = start_staging(out_dir)  # published by finish(): a failed conversion leaves out_dir as it was
        self.dataset = dataset
        self.vocab: dict[str, Any] | None = None
        self.max_side, self.examples_per_shard, self.mask_size = int(max_side), int(examples_per_shard), int(mask_size)
        self.skips = SkipCounter()
        self.splits: dict[str, dict[str, Any]] = {}
        self.max_objects = 0
        self.max_triples = 0
        self._writers: dict[str, ShardedRecordWriter] = {}

    def set_vocab(self, object_names: Sequence[str], predicates: Sequence[str],
                  unused_object_names: Sequence[str] = ()) -> None:
        """The vocab.json to write (google/sg2im's keys): ``object_names[0]`` is ``__image__``, ``predicates[0]``
        ``__in_image__``; ``unused_object_names`` are placeholders of unused indices (COCO's 'NONE')."""
        self.vocab = {"dataset": self.dataset, "object_idx_to_name": list(object_names),
                      "object_name_to_idx": {n: i for i, n in enumerate(object_names) if n not in unused_object_names},
                      "pred_idx_to_name": list(predicates), "pred_name_to_idx": {p: i for i, p in enumerate(predicates)},
                      "unused_object_names": sorted(set(unused_object_names)),
                      "ids": "record object id = object index + 1 (0 = no object, 1 = __image__); "
                             "predicate id = predicate index"}

    def skip(self, split: str, reason: str, name: str) -> None:
        """Count an image left out before it reaches :meth:`write_split` (a filter, a malformed entry)."""
        self.skips.skip(split, reason, name)

    def write(self, split: str, item: GraphItem) -> bool:
        """Validate ``item`` and append it to ``{split}-*.tfrecord`` (splits may interleave); False when skipped."""
        example = self._example(split, item)
        if split not in self._writers:
            self._writers[split] = ShardedRecordWriter(self.out_dir, split, self.examples_per_shard)
            self.splits[split] = {"num_examples": 0, "num_shards": 0, "num_objects": 0, "num_triples": 0}
        if example is None:
            return False
        data, graph = example
        self._writers[split].write(data)
        counts = self.splits[split]
        counts["num_objects"] += len(graph.objects)
        counts["num_triples"] += len(graph.triples)
        return True

    def _example(self, split: str, item: GraphItem) -> tuple[bytes, Graph] | None:
        def skip(reason: str) -> None:
            self.skips.skip(split, reason, item.name)

        data, reason = read_image_file(item.image_path)
        if reason:
            return skip(reason)
        try:
            width, height = images.image_header_size(data)
            encoded, _ = process_image(data, None, self.max_side)
        except (images.UnreadableImage, CorruptImage):
            return skip(CORRUPT_IMAGE)
        try:
            graph = item.graph(width, height)
        except BadAnnotation:
            return skip(BAD_ANNOTATION)
        n = len(graph.objects)
        features = {"image": bytes_feature(encoded), "name": bytes_feature(item.name),
                    "image_id": int64_feature(int(item.image_id)), "objects": int64_feature(list(graph.objects)),
                    "boxes": float_feature(np.asarray(graph.boxes, np.float32).reshape(-1)),
                    "triples": int64_feature([int(v) for t in graph.triples for v in t])}
        if self.mask_size:
            masks = np.asarray(graph.masks, np.uint8).reshape(n, self.mask_size, self.mask_size)
            features["masks"] = bytes_feature(masks.tobytes())
        self.max_objects = max(self.max_objects, n)
        self.max_triples = max(self.max_triples, len(graph.triples))
        return make_example(features), graph

    def finish(self, sources: dict[str, Any], settings: dict[str, Any], graph: dict[str, Any],
               filtering: dict[str, Any]) -> dict[str, Any]:
        """Write vocab.json and info.json, publish the folder, print the one-line summary; returns the info.

        ``graph``: ``graph_sampling``, ``graph_max_objects`` (slots with the image node) and ``graph_max_relations``
        (relation rows of one read graph) for the reader; ``settings``: the converter's thresholds."""
        if self.vocab is None:
            raise ValueError("set_vocab() before finish()")
        for split, writer in self._writers.items():
            writer.close()
            self.splits[split].update(num_examples=writer.count, num_shards=len(writer.paths))
        write_text_atomic(os.path.join(self.out_dir, VOCAB_FILE), json.dumps(self.vocab, indent=1))
        info: dict[str, Any] = {
            "dataset": self.dataset, "format": FORMAT,
            "features": ["image", "name", "image_id", "objects", "boxes", "triples"] + (["masks"] if self.mask_size else []),
            "splits": self.splits, "num_object_names": len(self.vocab["object_idx_to_name"]),
            "num_predicates": len(self.vocab["pred_idx_to_name"]), "vocab_file": VOCAB_FILE,
            "mask_size": self.mask_size, "max_objects_per_record": self.max_objects,
            "max_triples_per_record": self.max_triples, **graph,
            "skipped": self.skips.as_info(), "skipped_examples": self.skips.examples_info(),
            "settings": settings, "filtering": filtering, "sources": sources,
            "image": {"max_side": self.max_side, "formats": list(images.FORMATS),
                      "encoding": "original JPEG/PNG bytes when not resized, else re-encoded (JPEG quality "
                                  f"{JPEG_QUALITY}, PNG stays PNG)"},
            "embedding_dim": None,
        }
        write_info(self.out_dir, info)
        publish_staging(self.out_dir, self.final_dir)
        self.out_dir = self.final_dir
        print(summary_line(info, self.out_dir).replace(" (no embeddings)", ""))
        return info


def check_files(paths: dict[str, str]) -> None:
    """A one-line UserError naming the first of ``paths`` (what -> path) that is not a file."""
    for what, path in paths.items():
        if not os.path.isfile(path):
            raise UserError(f"{path} not found: expected {what}")
