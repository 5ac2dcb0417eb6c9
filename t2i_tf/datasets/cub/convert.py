"""CUB-200-2011 with captions -> text-to-image TFRecords (``train``/``test``) + info.json.

Reads the published layouts as downloaded:

- ``CUB_200_2011/images.txt`` (``id path``), ``bounding_boxes.txt`` (``id x y w h``) and
  ``images/<class>/<name>.jpg``;
- captions ``<text_dir>/<class>/<name>.txt`` (10 lines), e.g. ``birds/text`` (StackGAN/AttnGAN) or
  ``cvpr2016_cub/text_c10`` (Reed), found next to ``CUB_200_2011`` or given by ``--text_dir``;
- the class-disjoint split (150 train+val / 50 test classes), from the first of: ``--test_classes``
  (class ids, e.g. ``3,5`` or ``151-200``) or ``--test_fraction`` (that fraction of the classes present,
  the highest ids, for a subset of the classes); StackGAN's ``{train,test}/filenames.pickle``; Reed's
  ``trainvalclasses.txt`` / ``testclasses.txt``; else class ids 1-150 train and 151-200 test (the
  standard split; info.json says which was used). A split left with 0 records is a warning naming
  these options (a subset of classes 1-150 has no test split by default);
- optional StackGAN char-CNN-RNN embeddings (``--embeddings_dir`` holding ``{train,test}/``).

Each image is cropped as StackGAN/AttnGAN do (a square of side 1.5 * max(w, h) around the box
centre, clipped to the image) and stored with its longest side at most ``--max_side``. A box row with
a NaN/inf value is a counted skip (``bad_bbox``), not an error.

    python -m datasets.cub.convert --cub_dir=DIR --out_dir=DIR [--text_dir=DIR] [--embeddings_dir=DIR]
        [--split_dir=DIR | --test_classes=IDS | --test_fraction=F] [--max_side=304]
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Iterator, Sequence

from t2i_tf.datasets import stackgan_pickles
from t2i_tf.datasets.t2i_common import (captioned_dataset_parser, DEFAULT_EXAMPLES_PER_SHARD, DEFAULT_MAX_SIDE, BAD_BBOX, MISSING_IMAGE, NOT_IN_SPLIT,
                                 UNASSIGNED, Item, T2IWriter, find_split, first_existing, leading_int, run_cli,
                                 split_order)
from t2i_tf.errors import UserError

CUB_FOLDER = "CUB_200_2011"
NUM_TRAIN_CLASSES = 150
TEXT_DIR_CANDIDATES = ("text", "text_c10", os.path.join("cvpr2016_cub", "text_c10"), os.path.join("birds", "text"))


def _strip_ext(name: str) -> str:
    return name[:-4] if name.lower().endswith(".jpg") else name


def resolve_cub_root(cub_dir: str) -> str:
    """The folder holding images.txt: ``cub_dir`` itself or ``cub_dir/CUB_200_2011``."""
    for root in (cub_dir, os.path.join(cub_dir, CUB_FOLDER)):
        if os.path.isfile(os.path.join(root, "images.txt")):
            break
    else:
        raise UserError(f"{os.path.join(cub_dir, 'images.txt')} not found: --cub_dir must be the CUB-200-2011 "
                        "folder (with images.txt, bounding_boxes.txt and images/) or the folder containing "
                        f"{CUB_FOLDER}/")
    if not os.path.isfile(os.path.join(root, "bounding_boxes.txt")):
        raise UserError(f"{os.path.join(root, 'bounding_boxes.txt')} not found: expected the CUB-200-2011 box file "
                        "('<image id> <x> <y> <width> <height>' per line) next to images.txt")
    if not os.path.isdir(os.path.join(root, "images")):
        raise UserError(f"{os.path.join(root, 'images')} not found: expected the CUB-200-2011 "
                        "images/<class>/<name>.jpg folder next to images.txt")
    return root


def _read_table(path: str, ncols: int, what: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a whitespace table; UserError naming the line when it is malformed."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            fields = raw.decode("utf-8", "replace").split()
            if not fields:
                continue
            if len(fields) != ncols:
                raise UserError(f"{path} line {lineno}: expected {what}, got {raw.strip()[:80]!r}")
            yield lineno, fields


def read_images(root: str) -> list[tuple[str, str]]:
    """``[(image id, relative path)]`` from images.txt in file order."""
    path = os.path.join(root, "images.txt")
    return [(f[0], f[1]) for _, f in _read_table(path, 2, "'<image id> <class>/<name>.jpg'")]


def read_boxes(root: str) -> dict[str, tuple[float, float, float, float] | None]:
    """``{image id: (x, y, w, h)}`` from bounding_boxes.txt; None for a row with a NaN/inf value (a skip later)."""
    path = os.path.join(root, "bounding_boxes.txt")
    boxes: dict[str, tuple[float, float, float, float] | None] = {}
    for lineno, f in _read_table(path, 5, "'<image id> <x> <y> <width> <height>'"):
        try:
            box = tuple(float(v) for v in f[1:])
        except ValueError:
            raise UserError(f"{path} line {lineno}: box values must be numbers, got {f[1:]}") from None
        boxes[f[0]] = box if all(math.isfinite(v) for v in box) else None
    return boxes


def resolve_text_dir(root: str, text_dir: str | None) -> str:
    """The captions folder: ``text_dir`` or the first common variant next to CUB_200_2011."""
    if text_dir:
        if not os.path.isdir(text_dir):
            raise UserError(f"--text_dir {text_dir} not found: expected a folder of <class>/<name>.txt caption files")
        return text_dir
    parent = os.path.dirname(os.path.abspath(root))
    bases = (parent, root, os.path.dirname(parent))
    candidates = [os.path.join(base, c) for base in bases for c in TEXT_DIR_CANDIDATES]
    found = first_existing(candidates)
    if found is None:
        raise UserError("no CUB captions folder found (tried " + ", ".join(candidates[:len(TEXT_DIR_CANDIDATES)]) +
                        ", ...): pass --text_dir pointing at the <class>/<name>.txt captions (e.g. birds/text or "
                        "cvpr2016_cub/text_c10)")
    return found


def convert_cub(cub_dir: str, out_dir: str, text_dir: str | None = None, embeddings_dir: str | None = None,
                split_dir: str | None = None, max_side: int = DEFAULT_MAX_SIDE,
                examples_per_shard: int = DEFAULT_EXAMPLES_PER_SHARD, vocab_min_count: int = 1,
                test_classes: str | None = None, test_fraction: float | None = None) -> dict[str, Any]:
    """Convert CUB-200-2011 + captions (+ StackGAN embeddings) to TFRecords in ``out_dir``; returns info."""
    root = resolve_cub_root(cub_dir)
    text = resolve_text_dir(root, text_dir)
    if embeddings_dir and not os.path.isdir(embeddings_dir):
        raise UserError(f"--embeddings_dir {embeddings_dir} not found: expected StackGAN's birds folder with "
                        "train/ and test/ holding char-CNN-RNN-embeddings.pickle and filenames.pickle")
    writer = T2IWriter(out_dir, "cub", max_side, examples_per_shard, vocab_min_count)
    images = read_images(root)
    boxes = read_boxes(root)
    parent = os.path.dirname(os.path.abspath(root))
    class_ids = [c for c in (leading_int(_strip_ext(rel).split("/")[0]) for _, rel in images) if c is not None]
    split, _ = find_split([embeddings_dir, parent, os.path.dirname(os.path.abspath(text)), text, root], split_dir,
                          _strip_ext, NUM_TRAIN_CLASSES, "cub", class_ids, test_classes, test_fraction)
    lookup = stackgan_pickles.EmbeddingLookup(embeddings_dir, _strip_ext) if embeddings_dir else None

    assigned: dict[str, list[tuple[str, str, int]]] = {}
    known: set[str] = set()
    for image_id, rel in images:
        name = _strip_ext(rel)
        known.add(name)
        class_dir = name.split("/")[0]
        class_id = leading_int(class_dir)
        if class_id is None:
            raise UserError(f"{os.path.join(root, 'images.txt')}: image path {rel!r} does not start with a "
                            "numbered class folder like '001.Black_footed_Albatross/'")
        writer.class_names.setdefault(class_id, class_dir)
        s = split.of(name, class_id)
        if s is None:
            writer.skip(UNASSIGNED, NOT_IN_SPLIT, name)
            continue
        assigned.setdefault(s, []).append((image_id, rel, class_id))
    missing = {}
    for name, s in split.names().items():
        if name not in known:
            missing.setdefault(s, []).append(name)

    def items(s: str) -> Iterator[Item]:
        for image_id, rel, class_id in assigned.get(s, []):
            name = _strip_ext(rel)
            if image_id in boxes and boxes[image_id] is None:  # a NaN/inf box row
                yield Item(name=name, class_id=class_id, skip_reason=BAD_BBOX)
                continue
            yield Item(name=name, class_id=class_id, image_path=os.path.join(root, "images", rel),
                       caption_path=os.path.join(text, name + ".txt"), bbox=boxes.get(image_id), crop=True)
        for name in missing.get(s, []):
            yield Item(name=name, class_id=leading_int(name) or 0, skip_reason=MISSING_IMAGE)

    for s in split_order(list(assigned) + list(missing)):
        writer.write_split(s, items(s), lookup)
        if lookup is not None:
            lookup.release()
    sources = {"cub_dir": os.path.abspath(root), "text_dir": os.path.abspath(text),
               "embeddings": lookup.describe() if lookup else None}
    return writer.finish(split.source, sources, {"image_crop": "stackgan_bbox: side 1.5*max(w,h) around the box "
                                                              "centre, clipped to the image"},
                         expected_splits=("train", "test"))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints a UserError on one line and exits non-zero."""
    p = captioned_dataset_parser("python -m datasets.cub.convert", __doc__.split("\n\n")[0], "--cub_dir", "CUB_200_2011 folder (or the folder containing it)", "birds")
    a = p.parse_args(argv)
    return run_cli(lambda: convert_cub(a.cub_dir, a.out_dir, a.text_dir, a.embeddings_dir, a.split_dir, a.max_side,
                                       a.examples_per_shard, a.vocab_min_count, a.test_classes, a.test_fraction))


if __name__ == "__main__":
    sys.exit(main())
