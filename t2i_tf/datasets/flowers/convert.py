"""Oxford-102 Flowers with captions -> text-to-image TFRecords (``train``/``test``) + info.json.

Reads the published layouts as downloaded:

- images ``<flowers_dir>/jpg/image_XXXXX.jpg`` (the ``102flowers.tgz`` archive);
- captions ``<text_dir>/class_XXXXX/image_XXXXX.txt`` (Reed's ``text_c10``, 10 lines), which also give
  each image's class; found next to ``jpg/`` or given by ``--text_dir``;
- the class-disjoint split from the first of: ``--test_classes`` (class ids, e.g. ``3,5`` or
  ``83-102``) or ``--test_fraction`` (that fraction of the classes present, the highest ids); StackGAN's ``{train,test}/filenames.pickle`` (keys like
  ``'jpg/image_06734'``, with ``class_info.pickle``); Reed's ``trainvalclasses.txt`` /
  ``testclasses.txt`` (lines like ``class_00001``); else class ids 1-82 train, 83-102 test (said in
  info.json; a split left with 0 records is a warning naming these options);
- optional StackGAN char-CNN-RNN embeddings (``--embeddings_dir`` holding ``{train,test}/``).

No crop; images are stored with their longest side at most ``--max_side``. Record names are
``class_XXXXX/image_XXXXX``.

    python -m datasets.flowers.convert --flowers_dir=DIR --out_dir=DIR [--text_dir=DIR]
        [--embeddings_dir=DIR] [--split_dir=DIR | --test_classes=IDS | --test_fraction=F] [--max_side=304]
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Iterator, Sequence

from t2i_tf.datasets import stackgan_pickles
from t2i_tf.datasets.t2i_common import (captioned_dataset_parser, DEFAULT_EXAMPLES_PER_SHARD, DEFAULT_MAX_SIDE, MISSING_CAPTIONS, NOT_IN_SPLIT,
                                 UNASSIGNED, Item, T2IWriter, find_split, first_existing, run_cli, split_order)
from t2i_tf.errors import UserError

NUM_TRAIN_CLASSES = 82
TEXT_DIR_CANDIDATES = ("text_c10", os.path.join("cvpr2016_flowers", "text_c10"), "text")
_CLASS_DIR = re.compile(r"^class_(\d+)$")


def image_key(name: str) -> str:
    """'jpg/image_06734', 'class_00077/image_06734.jpg' -> 'image_06734' (how StackGAN keys match)."""
    base = os.path.basename(name)
    return base[:-4] if base.lower().endswith((".jpg", ".txt")) else base


def resolve_text_dir(flowers_dir: str, text_dir: str | None) -> str:
    """The captions folder: ``text_dir`` or the first common variant next to ``jpg/``."""
    if text_dir:
        if not os.path.isdir(text_dir):
            raise UserError(f"--text_dir {text_dir} not found: expected Reed's text_c10 folder of "
                            "class_XXXXX/image_XXXXX.txt caption files")
        return text_dir
    parent = os.path.dirname(os.path.abspath(flowers_dir))
    candidates = [os.path.join(base, c) for base in (flowers_dir, parent) for c in TEXT_DIR_CANDIDATES]
    found = first_existing(candidates)
    if found is None:
        raise UserError("no Flowers captions folder found (tried " + ", ".join(candidates) + "): pass --text_dir "
                        "pointing at Reed's text_c10 (class_XXXXX/image_XXXXX.txt)")
    return found


def caption_index(text_dir: str) -> dict[str, tuple[int, str]]:
    """``{image key: (class id, caption path)}`` from ``text_c10/class_XXXXX/image_XXXXX.txt``."""
    index: dict[str, tuple[int, str]] = {}
    for class_dir in sorted(os.listdir(text_dir)):
        m = _CLASS_DIR.match(class_dir)
        full = os.path.join(text_dir, class_dir)
        if not m or not os.path.isdir(full):
            continue
        for fname in sorted(os.listdir(full)):
            if fname.lower().endswith(".txt"):
                index[image_key(fname)] = (int(m.group(1)), os.path.join(full, fname))
    if not index:
        raise UserError(f"{text_dir}: no class_XXXXX/image_XXXXX.txt caption files (expected Reed's text_c10 layout)")
    return index


def convert_flowers(flowers_dir: str, out_dir: str, text_dir: str | None = None, embeddings_dir: str | None = None,
                    split_dir: str | None = None, max_side: int = DEFAULT_MAX_SIDE,
                    examples_per_shard: int = DEFAULT_EXAMPLES_PER_SHARD, vocab_min_count: int = 1,
                    test_classes: str | None = None, test_fraction: float | None = None) -> dict[str, Any]:
    """Convert Oxford-102 Flowers + captions (+ StackGAN embeddings) to TFRecords in ``out_dir``; returns info."""
    jpg_dir = os.path.join(flowers_dir, "jpg")
    if not os.path.isdir(jpg_dir):
        raise UserError(f"{jpg_dir} not found: --flowers_dir must hold the Oxford-102 jpg/ folder of "
                        "image_XXXXX.jpg files (102flowers.tgz)")
    text = resolve_text_dir(flowers_dir, text_dir)
    if embeddings_dir and not os.path.isdir(embeddings_dir):
        raise UserError(f"--embeddings_dir {embeddings_dir} not found: expected StackGAN's flowers folder with "
                        "train/ and test/ holding char-CNN-RNN-embeddings.pickle and filenames.pickle")
    writer = T2IWriter(out_dir, "flowers", max_side, examples_per_shard, vocab_min_count)
    captions = caption_index(text)
    images = {image_key(f) for f in os.listdir(jpg_dir) if f.lower().endswith(".jpg")}
    split, pickle_class = find_split([embeddings_dir, flowers_dir, os.path.dirname(os.path.abspath(flowers_dir)),
                                      os.path.dirname(os.path.abspath(text)), text], split_dir, image_key,
                                     NUM_TRAIN_CLASSES, "flowers", {c for c, _ in captions.values()}, test_classes,
                                     test_fraction)
    lookup = stackgan_pickles.EmbeddingLookup(embeddings_dir, image_key) if embeddings_dir else None

    assigned: dict[str, list[tuple[str, int]]] = {}
    for key in sorted(images | set(captions) | set(split.names())):
        class_id = captions[key][0] if key in captions else pickle_class.get(key)
        if class_id is None:  # no caption file and no class_info: neither class nor split is known
            writer.skip(UNASSIGNED, MISSING_CAPTIONS, key)
            continue
        writer.class_names.setdefault(class_id, f"class_{class_id:05d}")
        s = split.of(key, class_id)
        if s is None:
            writer.skip(UNASSIGNED, NOT_IN_SPLIT, key)
            continue
        assigned.setdefault(s, []).append((key, class_id))

    def items(s: str) -> Iterator[Item]:
        for key, class_id in assigned.get(s, []):
            yield Item(name=f"class_{class_id:05d}/{key}", class_id=class_id,
                       image_path=os.path.join(jpg_dir, key + ".jpg"),
                       caption_path=captions[key][1] if key in captions else None)

    for s in split_order(list(assigned)):
        writer.write_split(s, items(s), lookup)
        if lookup is not None:
            lookup.release()
    sources = {"flowers_dir": os.path.abspath(flowers_dir), "text_dir": os.path.abspath(text),
               "embeddings": lookup.describe() if lookup else None}
    return writer.finish(split.source, sources, {"image_crop": None}, expected_splits=("train", "test"))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints a UserError on one line and exits non-zero."""
    p = captioned_dataset_parser("python -m datasets.flowers.convert", __doc__.split("\n\n")[0], "--flowers_dir", "folder holding jpg/image_XXXXX.jpg", "flowers")
    a = p.parse_args(argv)
    return run_cli(lambda: convert_flowers(a.flowers_dir, a.out_dir, a.text_dir, a.embeddings_dir, a.split_dir,
                                           a.max_side, a.examples_per_shard, a.vocab_min_count, a.test_classes,
                                           a.test_fraction))


if __name__ == "__main__":
    sys.exit(main())
