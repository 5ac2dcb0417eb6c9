"""Visual Genome (as google/sg2im downloads it) -> scene-graph TFRecords (``train``/``val``/``test``), vocab.json, info.json.

Reads the layout of google/sg2im scripts/download_vg.sh: ``--vg_dir`` holding image_data.json, objects.json,
relationships.json, object_alias.txt, relationship_alias.txt (attributes.json is not read: sg2im draws no attributes)
and the images under ``images/VG_100K*/`` (``--image_dir``), plus sg2im's ``vg_splits.json`` (``--splits_json``,
default ``<vg_dir>/vg_splits.json``; it is sg2im/data/vg_splits.json of google/sg2im).

Filtering is scripts/preprocess_vg.py's, with its defaults (file:line of its HEAD): images smaller than
``--min_image_size`` 200 (:53, :144-160); the object vocabulary is the aliased names with >= ``--min_object_instances``
2000 training instances, most frequent first (:57, :217-245); an object keeps its first in-vocabulary name and must be
``--min_object_size`` 32 px wide and high (:59, :277-312); predicates (lower-cased, aliased) between kept objects with
>= ``--min_relationship_instances`` 500 training instances, in order of first appearance (:65, :315-349); images need
``--min_objects_per_image`` 3 .. ``--max_objects_per_image`` 30 objects (:60-61) and ``--min_relationships_per_image``
1 .. ``--max_relationships_per_image`` 30 relationships (:66-67, :399-436). A small subset needs the instance
thresholds lowered (a vocabulary built from few images would be empty). Each filtered image is a counted skip in
info.json (``small_image``, ``too_few_objects``, ...), as are ``missing_image``, ``corrupt_image``,
``bad_annotation`` (a malformed entry of that image) and ``no_annotations`` (a split image absent from objects.json).

The reader keeps at most ``--max_objects`` 10 objects per graph as the official loader (scripts/train.py:71).
VG has no masks: the mask loss is off on these records (google/sg2im computes it only when masks exist,
train.py:408); the predicted masks still shape the layout.

    python -m datasets.vg.convert --vg_dir=datasets/vg --out_dir=DIR [--splits_json=.../vg_splits.json]
        [--image_dir=DIR] [--min_object_instances=2000 ...] [--max_side=304]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import itertools
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from t2i_tf.data.scene_graph import IMAGE, IN_IMAGE
from t2i_tf.data.scene_graph_records import RELATIONSHIPS
from t2i_tf.datasets.scene_graph_writer import (
    BAD_ANNOTATION,
    BadAnnotation,
    Graph,
    GraphItem,
    SceneGraphWriter,
    check_files,
)
from t2i_tf.datasets.t2i_common import (
    DEFAULT_EXAMPLES_PER_SHARD,
    DEFAULT_MAX_SIDE,
    run_cli,
)
from t2i_tf.datasets.vg import annotations as ann
from t2i_tf.datasets.vg.json_stream import iter_json_array
from t2i_tf.errors import UserError

SPLIT_ORDER = ("train", "val", "test")


@dataclasses.dataclass
class VgFilter:
    """preprocess_vg.py's thresholds (its defaults) and the loader's object cap (train.py:71)."""

    min_image_size: int = 200
    min_object_instances: int = 2000
    min_object_size: float = 32
    min_objects_per_image: int = 3
    max_objects_per_image: int = 30
    min_relationship_instances: int = 500
    min_relationships_per_image: int = 1
    max_relationships_per_image: int = 30
    max_objects: int = 10

    def check(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) < 0:
                raise UserError(f"--{field.name} must be >= 0, got {getattr(self, field.name)}")
        if self.max_objects < 1:
            raise UserError(f"--max_objects must be >= 1, got {self.max_objects}")


def _paths(vg_dir: str, image_dir: str | None, splits_json: str | None) -> dict[str, str]:
    paths = {name: os.path.join(vg_dir, name) for name in ("image_data.json", "objects.json", "relationships.json",
                                                            "object_alias.txt", "relationship_alias.txt")}
    paths["vg_splits.json"] = splits_json or os.path.join(vg_dir, "vg_splits.json")
    check_files({"Visual Genome's " + k + " (scripts/download_vg.sh unzips it into the VG folder)": v
                 for k, v in paths.items() if k != "vg_splits.json"})
    check_files({"sg2im's splits file: pass --splits_json=<google/sg2im>/sg2im/data/vg_splits.json":
                 paths["vg_splits.json"]})
    paths["images"] = image_dir or os.path.join(vg_dir, "images")
    if not os.path.isdir(paths["images"]):
        raise UserError(f"{paths['images']} not found: expected the images folder holding VG_100K/ and VG_100K_2/ "
                        "(download_vg.sh unzips images.zip and images2.zip into <vg_dir>/images), or --image_dir")
    return paths


def _zip_images(objects_path: str, relationships_path: str,
                malformed: collections.Counter) -> Iterator[tuple[int, dict, dict]]:
    """(image id, objects.json entry, relationships.json entry), the two files read side by side (they list the
    images in the same order); a UserError when they do not. Entries without an integer image_id are counted in
    ``malformed`` and left out."""
    pairs = itertools.zip_longest(iter_json_array(objects_path), iter_json_array(relationships_path))
    for index, (objects, relationships) in enumerate(pairs):
        if objects is None or relationships is None:
            raise UserError(f"{objects_path} and {relationships_path} list different numbers of images (entry {index})")
        image_id, rel_id = ann.entry_image_id(objects), ann.entry_image_id(relationships)
        if image_id is None or rel_id is None:
            malformed["entries_without_image_id"] += 1
            continue
        if rel_id != image_id:
            raise UserError(f"entry {index}: image {image_id} in {objects_path} but image {rel_id} in "
                            f"{relationships_path}: the two files must list the images in the same order (as Visual "
                            "Genome's do)")
        yield image_id, objects, relationships


class _VgVocabulary:
    """The object and predicate vocabularies of preprocess_vg.py, built from the training images."""

    def __init__(self, settings: VgFilter, obj_aliases: dict[str, str], rel_aliases: dict[str, str]):
        self.s, self.obj_aliases, self.rel_aliases = settings, obj_aliases, rel_aliases
        self.name_counts: collections.Counter = collections.Counter()
        self.pred_counts: dict[str, int] = {}
        self.objects: list[str] = []
        self.predicates: list[str] = []

    def count_names(self, entry: dict) -> None:
        """Each object's set of aliased names counts once (preprocess_vg.py:225-229)."""
        counts: collections.Counter = collections.Counter()
        for obj in ann.image_objects(entry):
            counts.update(set(ann.object_names(obj, self.obj_aliases)))
        self.name_counts.update(counts)

    def finish_objects(self) -> None:
        self.objects = [IMAGE] + [n for n, c in self.name_counts.most_common() if c >= self.s.min_object_instances]
        self.name_index = {n: i for i, n in enumerate(self.objects)}

    def count_predicates(self, objects: dict, relationships: dict) -> None:
        kept, _ = ann.filter_objects(objects, self.obj_aliases, self.name_index, self.s.min_object_size)
        ids = {o.object_id for o in kept}
        local: dict[str, int] = {}
        for rel in ann.image_relationships(relationships):
            s, pred, o = ann.relationship_parts(rel, self.rel_aliases)
            if s in ids and o in ids:
                local[pred] = local.get(pred, 0) + 1
        for pred, n in local.items():
            self.pred_counts[pred] = self.pred_counts.get(pred, 0) + n

    def finish_predicates(self) -> None:
        self.predicates = [IN_IMAGE] + [p for p, c in self.pred_counts.items() if c >= self.s.min_relationship_instances]
        self.pred_index = {p: i for i, p in enumerate(self.predicates)}


def _graph_fn(kept: list[ann.KeptObject], triples: list[tuple[int, int, int]]):
    """``graph(width, height)``: ids = vocabulary index + 1, boxes divided by the image's size (vg.py:112-117)."""
    def graph(width: int, height: int) -> Graph:
        boxes = np.array([[x / width, y / height, (x + w) / width, (y + h) / height] for x, y, w, h in
                          (o.box for o in kept)], np.float32).reshape(-1, 4)
        return Graph([o.name_index + 1 for o in kept], boxes, triples)
    return graph


def _image_graph(objects: dict, relationships: dict, vocab: _VgVocabulary, s: VgFilter,
                 stats: collections.Counter) -> tuple[list[ann.KeptObject], list[tuple[int, int, int]]] | str:
    """The kept objects and triples of one image, or the reason it is filtered (preprocess_vg.py:385-436)."""
    kept, too_small = ann.filter_objects(objects, vocab.obj_aliases, vocab.name_index, s.min_object_size)
    stats["objects_too_small"] += too_small
    if len(kept) < s.min_objects_per_image:
        return "too_few_objects"
    if len(kept) > s.max_objects_per_image:
        return "too_many_objects"
    index = {o.object_id: i for i, o in enumerate(kept)}
    triples = []
    for rel in ann.image_relationships(relationships):
        sid, pred, oid = ann.relationship_parts(rel, vocab.rel_aliases)
        p = vocab.pred_index.get(pred)
        if p is not None and sid in index and oid in index:
            triples.append((index[sid], p, index[oid]))
    if len(triples) < s.min_relationships_per_image:
        return "too_few_relationships"
    if len(triples) > s.max_relationships_per_image:
        return "too_many_relationships"
    stats["objects_kept"] += len(kept)
    return kept, triples


def convert_vg(vg_dir: str, out_dir: str, image_dir: str | None = None, splits_json: str | None = None,
               settings: VgFilter | None = None, max_side: int = DEFAULT_MAX_SIDE,
               examples_per_shard: int = DEFAULT_EXAMPLES_PER_SHARD) -> dict[str, Any]:
    """Convert a Visual Genome download to scene-graph records in ``out_dir``; returns info.json's content."""
    s = settings or VgFilter()
    s.check()
    paths = _paths(vg_dir, image_dir, splits_json)
    splits = ann.load_splits(paths["vg_splits.json"])
    if "train" not in splits:
        raise UserError(f"{paths['vg_splits.json']} has no 'train' split (the vocabularies are built from it)")
    images: dict[int, ann.ImageEntry] = {}
    malformed_image_entries = 0
    for entry in iter_json_array(paths["image_data.json"]):
        parsed = ann.image_entry(entry)
        if parsed is None:
            malformed_image_entries += 1
        else:
            images[parsed[0]] = parsed[1]
    split_order = [x for x in SPLIT_ORDER if x in splits] + sorted(x for x in splits if x not in SPLIT_ORDER)
    writer = SceneGraphWriter(out_dir, "vg", max_side, examples_per_shard)
    active: dict[int, str] = {}
    for split in split_order:
        for image_id in splits[split]:
            entry = images.get(image_id)
            if image_id in active:
                continue
            if entry is None:
                writer.skip(split, "not_in_image_data", str(image_id))
            elif min(entry.width, entry.height) < s.min_image_size:
                writer.skip(split, "small_image", entry.path)
            else:
                active[image_id] = split
    vocab = _VgVocabulary(s, ann.load_aliases(paths["object_alias.txt"]), ann.load_aliases(paths["relationship_alias.txt"]))
    bad: set[int] = set()
    for entry in iter_json_array(paths["objects.json"]):
        image_id = ann.entry_image_id(entry)
        if image_id is not None and active.get(image_id) == "train":
            try:
                vocab.count_names(entry)
            except BadAnnotation:
                bad.add(image_id)
    vocab.finish_objects()
    for image_id, objects, relationships in _zip_images(paths["objects.json"], paths["relationships.json"],
                                                        collections.Counter()):
        if active.get(image_id) == "train" and image_id not in bad:
            try:
                vocab.count_predicates(objects, relationships)
            except BadAnnotation:
                bad.add(image_id)
    vocab.finish_predicates()
    writer.set_vocab(vocab.objects, vocab.predicates)
    stats: collections.Counter = collections.Counter()
    seen: set[int] = set()
    for image_id, objects, relationships in _zip_images(paths["objects.json"], paths["relationships.json"], stats):
        split = active.get(image_id)
        if split is None or image_id in seen:
            continue
        seen.add(image_id)
        name = images[image_id].path
        try:
            graph = None if image_id in bad else _image_graph(objects, relationships, vocab, s, stats)
        except BadAnnotation:
            graph = None
        if graph is None:
            writer.skip(split, BAD_ANNOTATION, name)
        elif isinstance(graph, str):
            writer.skip(split, graph, name)
        else:
            writer.write(split, GraphItem(name, image_id, os.path.join(paths["images"], name), _graph_fn(*graph)))
    for image_id, split in active.items():
        if image_id not in seen:
            writer.skip(split, "no_annotations", images[image_id].path)
    filtering = {"object_names": len(vocab.objects) - 1, "predicates": len(vocab.predicates) - 1,
                 "objects_too_small": stats["objects_too_small"], "objects_kept": stats["objects_kept"],
                 "malformed_image_data_entries": malformed_image_entries,
                 "entries_without_image_id": stats["entries_without_image_id"],
                 "attributes": "not read (sg2im draws no attributes)"}
    sources = {k: os.path.abspath(v) for k, v in paths.items()}
    graph_info = {"graph_sampling": RELATIONSHIPS, "graph_max_objects": s.max_objects + 1,
                  "graph_max_relations": s.max_relationships_per_image}
    return writer.finish(sources, dataclasses.asdict(s), graph_info, filtering)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m datasets.vg.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("--vg_dir", required=True, help="folder of download_vg.sh (image_data.json, objects.json, ...)")
    p.add_argument("--out_dir", required=True, help="where to write TFRecord shards, vocab.json and info.json")
    p.add_argument("--splits_json", default=None, help="sg2im's sg2im/data/vg_splits.json (default <vg_dir>/vg_splits.json)")
    p.add_argument("--image_dir", default=None, help="folder holding VG_100K/ and VG_100K_2/ (default <vg_dir>/images)")
    for field in dataclasses.fields(VgFilter):
        p.add_argument(f"--{field.name}", type=type(field.default), default=field.default,
                       help=f"default {field.default} (google/sg2im)")
    p.add_argument("--max_side", type=int, default=DEFAULT_MAX_SIDE, help="longest stored image side (0: keep)")
    p.add_argument("--examples_per_shard", type=int, default=DEFAULT_EXAMPLES_PER_SHARD)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints a UserError on one line and exits non-zero."""
    a = parser().parse_args(argv)
    settings = VgFilter(**{f.name: getattr(a, f.name) for f in dataclasses.fields(VgFilter)})
    return run_cli(lambda: convert_vg(a.vg_dir, a.out_dir, a.image_dir, a.splits_json, settings, a.max_side,
                                      a.examples_per_shard))


if __name__ == "__main__":
    sys.exit(main())
