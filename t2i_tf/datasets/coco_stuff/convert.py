"""COCO 2017 + COCO-Stuff (as google/sg2im downloads them) -> scene-graph TFRecords (``train``/``val``), vocab.json, info.json.

Reads the layout of google/sg2im scripts/download_coco.sh: ``--coco_dir`` holding
``annotations/instances_{train,val}2017.json``, ``annotations/stuff_{train,val}2017.json`` and the images
``images/{train,val}2017/<file_name>`` (``--image_dir`` for another images folder). train2017 is the ``train`` split
and val2017 the ``val`` split, as scripts/train.py:75-86 reads them.

Objects follow sg2im/data/coco.py (file:line of google/sg2im's HEAD) with its defaults (train.py:87-92): instance
and stuff annotations whose box covers more than ``--min_object_size`` 0.02 of the image (coco.py:136-139), whose
category is in ``--instance_whitelist`` / ``--stuff_whitelist`` (default all) and is not COCO-Stuff's ``other``
unless ``--include_other`` (coco.py:140-143); only images with stuff annotations (``--stuff_only``, coco.py:161-173);
images with ``--min_objects_per_image`` 3 .. ``--max_objects_per_image`` 8 objects (coco.py:187-195). Object ids are
the COCO category ids (vocab.json ``object_idx_to_name`` holds 'NONE' at unused ids, ``__image__`` at 0, coco.py:175-
185); boxes are divided by the image's size (coco.py:264-269); masks are each segmentation (polygons or RLE,
t2i_tf/datasets/coco_stuff/masks.py) cut to its box and shrunk to ``--mask_size`` 16 (coco.py:271-284). The records
hold the geometric relation of every ordered pair of objects (relations.py); the reader draws one per object and
graph as coco.py:321-350 does on every load. Skips are counted in info.json: ``no_stuff``, ``too_few_objects``,
``too_many_objects``, ``missing_image``, ``corrupt_image``, ``bad_annotation`` (a malformed annotation of the image).

The annotation files are read whole (as the official loader and pycocotools do): instances_train2017.json needs a
few GB of memory.

    python -m datasets.coco_stuff.convert --coco_dir=datasets/coco --out_dir=DIR [--min_object_size=0.02 ...]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import numbers
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from t2i_tf.data.scene_graph import IMAGE
from t2i_tf.data.scene_graph_records import ONE_RELATION_PER_OBJECT
from t2i_tf.datasets.coco_stuff.masks import box_mask, segmentation_mask
from t2i_tf.datasets.coco_stuff.relations import PREDICATES, pair_triples
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
from t2i_tf.errors import UserError

SPLITS = {"train": "train2017", "val": "val2017"}
UNUSED = "NONE"


@dataclasses.dataclass
class CocoFilter:
    """sg2im/data/coco.py's object and image filters with scripts/train.py's defaults, and the mask size."""

    min_object_size: float = 0.02
    min_objects_per_image: int = 3
    max_objects_per_image: int = 8
    instance_whitelist: tuple[str, ...] | None = None
    stuff_whitelist: tuple[str, ...] | None = None
    include_other: bool = False
    stuff_only: bool = True
    mask_size: int = 16

    def check(self) -> None:
        if self.min_object_size < 0 or self.min_objects_per_image < 0:
            raise UserError("--min_object_size and --min_objects_per_image must be >= 0")
        if self.max_objects_per_image < max(1, self.min_objects_per_image):
            raise UserError(f"--max_objects_per_image {self.max_objects_per_image} must be >= 1 and >= "
                            f"--min_objects_per_image {self.min_objects_per_image}")
        if self.mask_size < 1:
            raise UserError(f"--mask_size must be >= 1, got {self.mask_size}")


def _load(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable JSON file ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations",
                                                                                       "categories")):
        raise UserError(f"{path}: expected a COCO annotation file with 'images', 'annotations' and 'categories' lists")
    return data


def _categories(data: dict, path: str) -> dict[int, str]:
    out = {}
    for c in data["categories"]:
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or c["id"] < 1 or not isinstance(c.get("name"), str):
            raise UserError(f"{path}: category {c!r} needs an integer id >= 1 and a name")
        out[c["id"]] = c["name"]
    return out


def object_names(categories: dict[int, str]) -> list[str]:
    """vocab ``object_idx_to_name``: ``__image__`` at 0, each category at its id, 'NONE' elsewhere (coco.py:175-185)."""
    names = [UNUSED] * (1 + max(categories, default=0))
    names[0] = IMAGE
    for cid, name in categories.items():
        names[cid] = name
    return names


def _bbox(ann: dict) -> tuple[float, float, float, float]:
    box = ann.get("bbox")
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, numbers.Real) for v in box)):
        raise BadAnnotation("bbox must be [x, y, w, h]")
    return tuple(float(v) for v in box)


class _Images:
    """One split's images and their kept annotations, filtered as coco.py:96-195."""

    def __init__(self, instances: dict, stuff: dict, categories: dict[int, str], s: CocoFilter,
                 instance_names: set[str], stuff_names: set[str]):
        self.entries: dict[int, dict] = {}
        for image in instances["images"]:
            if (isinstance(image, dict) and isinstance(image.get("id"), int) and isinstance(image.get("file_name"), str)
                    and all(isinstance(image.get(k), int) and image[k] > 0 for k in ("width", "height"))):
                self.entries[image["id"]] = image
        self.objects: dict[int, list[dict]] = collections.defaultdict(list)
        self.bad: set[int] = set()
        self.stats: collections.Counter = collections.Counter()
        allowed = set(s.instance_whitelist or instance_names) | set(s.stuff_whitelist or stuff_names)
        with_stuff: set[int] = set()
        for source, data in (("instances", instances), ("stuff", stuff)):
            for ann in data["annotations"]:
                image_id = ann.get("image_id") if isinstance(ann, dict) else None
                if image_id not in self.entries:
                    self.stats["annotations_of_unknown_images"] += 1
                    continue
                if source == "stuff":
                    with_stuff.add(image_id)
                try:
                    keep = self._keep(ann, categories, allowed, s)
                except BadAnnotation:
                    self.bad.add(image_id)
                    continue
                if keep:
                    self.objects[image_id].append(ann)
        self.order = [i for i in self.entries if not s.stuff_only or i in with_stuff]
        self.without_stuff = [i for i in self.entries if s.stuff_only and i not in with_stuff]

    def _keep(self, ann: dict, categories: dict[int, str], allowed: set[str], s: CocoFilter) -> bool:
        image = self.entries[ann["image_id"]]
        _, _, w, h = _bbox(ann)
        name = categories.get(ann.get("category_id"))
        if name is None or "segmentation" not in ann:
            raise BadAnnotation("unknown category_id or no segmentation")
        if not (w * h) / (image["width"] * image["height"]) > s.min_object_size:
            self.stats["objects_too_small"] += 1
        elif name not in allowed:
            self.stats["objects_not_whitelisted"] += 1
        elif name == "other" and not s.include_other:
            self.stats["objects_other"] += 1
        else:
            return True
        return False


def _graph_fn(anns: list[dict], mask_size: int):
    """``graph(width, height)`` of one image's kept annotations: ids = category id + 1, normalised boxes, masks and
    the relation of every ordered pair."""
    def graph(width: int, height: int) -> Graph:
        boxes = np.array([[x / width, y / height, (x + w) / width, (y + h) / height]
                          for x, y, w, h in map(_bbox, anns)], np.float32).reshape(-1, 4)
        masks = np.stack([box_mask(segmentation_mask(a["segmentation"], height, width), _bbox(a), mask_size)
                          for a in anns]) if anns else np.zeros([0, mask_size, mask_size], np.uint8)
        return Graph([a["category_id"] + 1 for a in anns], boxes, pair_triples(boxes, masks), masks)
    return graph


def convert_coco_stuff(coco_dir: str, out_dir: str, image_dir: str | None = None, settings: CocoFilter | None = None,
                       max_side: int = DEFAULT_MAX_SIDE,
                       examples_per_shard: int = DEFAULT_EXAMPLES_PER_SHARD) -> dict[str, Any]:
    """Convert COCO 2017 + COCO-Stuff to scene-graph records in ``out_dir``; returns info.json's content."""
    s = settings or CocoFilter()
    s.check()
    ann_dir = os.path.join(coco_dir, "annotations")
    images_dir = image_dir or os.path.join(coco_dir, "images")
    paths = {f"{kind}_{split}": os.path.join(ann_dir, f"{kind}_{folder}.json")
             for split, folder in SPLITS.items() for kind in ("instances", "stuff")}
    check_files({f"COCO's {os.path.basename(p)} (scripts/download_coco.sh unzips it into <coco_dir>/annotations)": p
                 for p in paths.values()})
    writer = SceneGraphWriter(out_dir, "coco_stuff", max_side, examples_per_shard, s.mask_size)
    vocab: list[str] | None = None
    filtering: dict[str, Any] = {}
    for split, folder in SPLITS.items():
        instances, stuff = _load(paths[f"instances_{split}"]), _load(paths[f"stuff_{split}"])
        inst_cats = _categories(instances, paths[f"instances_{split}"])
        stuff_cats = _categories(stuff, paths[f"stuff_{split}"])
        names = object_names({**inst_cats, **stuff_cats})
        if vocab is None:
            vocab = names
            writer.set_vocab(names, PREDICATES, [UNUSED])
        elif names != vocab:
            raise UserError(f"the {split} annotation files list other categories than the train ones "
                            "(google/sg2im asserts the two vocabularies are equal, train.py:258)")
        found = _Images(instances, stuff, {**inst_cats, **stuff_cats}, s, set(inst_cats.values()),
                        set(stuff_cats.values()))
        del instances, stuff
        for image_id in found.without_stuff:
            writer.skip(split, "no_stuff", found.entries[image_id]["file_name"])
        for image_id in found.order:
            name = found.entries[image_id]["file_name"]
            anns = found.objects.get(image_id, [])
            if image_id in found.bad:
                writer.skip(split, BAD_ANNOTATION, name)
            elif len(anns) < s.min_objects_per_image:
                writer.skip(split, "too_few_objects", name)
            elif len(anns) > s.max_objects_per_image:
                writer.skip(split, "too_many_objects", name)
            else:
                item = GraphItem(f"{folder}/{name}", image_id, os.path.join(images_dir, folder, name),
                                 _graph_fn(anns, s.mask_size))
                writer.write(split, item)
        filtering[split] = dict(found.stats, images_without_stuff=len(found.without_stuff))
    sources = {"annotations": os.path.abspath(ann_dir), "images": os.path.abspath(images_dir)}
    graph_info = {"graph_sampling": ONE_RELATION_PER_OBJECT, "graph_max_objects": s.max_objects_per_image + 1,
                  "graph_max_relations": s.max_objects_per_image}
    return writer.finish(sources, dataclasses.asdict(s), graph_info, filtering)


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m datasets.coco_stuff.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("--coco_dir", required=True, help="folder of download_coco.sh (annotations/, images/)")
    p.add_argument("--out_dir", required=True, help="where to write TFRecord shards, vocab.json and info.json")
    p.add_argument("--image_dir", default=None, help="folder holding train2017/ and val2017/ (default <coco_dir>/images)")
    p.add_argument("--min_object_size", type=float, default=0.02, help="least box area / image area (exclusive)")
    p.add_argument("--min_objects_per_image", type=int, default=3)
    p.add_argument("--max_objects_per_image", type=int, default=8)
    p.add_argument("--instance_whitelist", type=_names, default=None, help="comma-separated instance categories")
    p.add_argument("--stuff_whitelist", type=_names, default=None, help="comma-separated stuff categories")
    p.add_argument("--include_other", type=_bool, default=False, help="keep COCO-Stuff's 'other' objects")
    p.add_argument("--stuff_only", type=_bool, default=True, help="only images with stuff annotations")
    p.add_argument("--mask_size", type=int, default=16, help="stored mask side M (the reader resizes to --mask_size)")
    p.add_argument("--max_side", type=int, default=DEFAULT_MAX_SIDE, help="longest stored image side (0: keep)")
    p.add_argument("--examples_per_shard", type=int, default=DEFAULT_EXAMPLES_PER_SHARD)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints a UserError on one line and exits non-zero."""
    a = parser().parse_args(argv)
    settings = CocoFilter(a.min_object_size, a.min_objects_per_image, a.max_objects_per_image, a.instance_whitelist,
                          a.stuff_whitelist, a.include_other, a.stuff_only, a.mask_size)
    return run_cli(lambda: convert_coco_stuff(a.coco_dir, a.out_dir, a.image_dir, settings, a.max_side,
                                              a.examples_per_shard))


if __name__ == "__main__":
    sys.exit(main())
