"""Shared pieces of the text-to-image converters (CUB, Flowers, hd5): schema, images, skips, vocabulary.

Every converter turns its layout into a stream of :class:`Item` per split and hands it to
:class:`T2IWriter`, which validates each item (image present and decodable, captions present and
non-empty, embeddings present when the dataset has them), crops/resizes the image, writes one
``tf.train.Example`` per image into ``{split}-NNNNN.tfrecord`` shards, counts every skip with its
reason and finally writes ``info.json`` and prints a one-line summary.

Record schema (one example per image):

- ``image``: bytes, encoded JPEG or PNG, already cropped, longest side <= ``max_side``;
- ``name``: bytes, e.g. ``001.Black_footed_Albatross/Black_Footed_Albatross_0046_18``;
- ``class_id``: int64 (the dataset's own 1-based class number);
- ``captions``: bytes list, every caption of the image as a raw (UTF-8) string;
- ``embeddings``: float list ``[num_embeddings * embedding_dim]`` (only when the dataset ships
  char-CNN-RNN embeddings; ``embedding_dim`` is in info.json);
- extra int64 lists a converter adds per image (``Item.extra_int64``, e.g. captioned CSS's
  ``scene_cells``): listed in info.json ``features`` and in ``extra_int64`` as name -> length (null when
  lengths vary), so readers know they exist. Every item of a record set carries the same names.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import re
import sys
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from t2i_tf.datasets import stackgan_pickles
from t2i_tf.data import images
from t2i_tf.data.records import (ShardedRecordWriter, bytes_feature, float_feature, int64_feature, make_example,
                                 write_info)
from t2i_tf.data.text import TOKENIZER_RULE, python_tokens
from t2i_tf.errors import UserError
from t2i_tf.files import publish_staging, start_staging

FORMAT = "t2i-v1"
DEFAULT_MAX_SIDE = 304
DEFAULT_EXAMPLES_PER_SHARD = 1024
JPEG_QUALITY = 95
BBOX_SCALE = 1.5  # StackGAN/AttnGAN: R = int(max(w, h) * 0.75), crop [c - R, c + R]
MAX_SKIP_EXAMPLES = 5
UNASSIGNED = "unassigned"  # skips of items whose split could not be determined

# Skip reasons (the keys of info.json "skipped").
MISSING_IMAGE = "missing_image"
CORRUPT_IMAGE = "corrupt_image"
MISSING_CAPTIONS = "missing_captions"
EMPTY_CAPTIONS = "empty_captions"
MISSING_EMBEDDINGS = "missing_embeddings"
MISSING_BBOX = "missing_bbox"
BAD_BBOX = "bad_bbox"
NOT_IN_SPLIT = "not_in_split"
UNREADABLE_FILE = "unreadable_file"

TRAIN_CLASS_LIST = "trainvalclasses.txt"  # Reed's class lists (cvpr2016_cub / cvpr2016_flowers)
TEST_CLASS_LIST = "testclasses.txt"

_REPLACEMENT_RUN = re.compile("\ufffd+")
_LEADING_INT = re.compile(r"(\d+)")


class CorruptImage(Exception):
    """The bytes are not an image PIL can decode."""


class BadBox(Exception):
    """A bounding box that leaves nothing of the image."""


@dataclasses.dataclass
class Item:
    """One image to convert: where its pieces are, or why it is already known to be skipped."""

    name: str
    class_id: int
    image_path: str | None = None
    image_bytes: bytes | None = None
    caption_path: str | None = None
    captions: Sequence[str] | None = None
    bbox: Sequence[float] | None = None
    crop: bool = False
    embeddings: np.ndarray | None = None
    skip_reason: str | None = None
    extra_int64: dict[str, Sequence[int]] | None = None  # more int64 list features (same names on every item)


# ---------------------------------------------------------------------------------------------- text


def tokenize(caption: str) -> list[str]:
    """The words of a caption as the models' in-graph tokenizer splits them (t2i_tf.data.text.TOKENIZER_RULE)."""
    return python_tokens(caption)


def decode_caption_bytes(data: bytes) -> list[str]:
    """Non-empty caption lines of a caption file.

    Bytes are read as UTF-8 (Latin-1 if that fails); runs of U+FFFD (mojibake in the CUB captions,
    which StackGAN/AttnGAN replace by a space) become one space; lines are stripped.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin1")
    lines = (_REPLACEMENT_RUN.sub(" ", line).strip() for line in text.splitlines())
    return [line for line in lines if line]


def leading_int(text: str) -> int | None:
    """The first run of digits in ``text`` as an int ('001.Black...' -> 1, 'class_00077' -> 77)."""
    m = _LEADING_INT.search(text)
    return int(m.group(1)) if m else None


as_str = stackgan_pickles.as_str


def read_class_list(path: str) -> list[str]:
    """Non-empty stripped lines of a Reed-style class list (``trainvalclasses.txt`` etc.)."""
    with open(path, "rb") as f:
        return [line for line in (as_str(raw).strip() for raw in f.read().splitlines()) if line]


# --------------------------------------------------------------------------------------------- image


def stackgan_crop_box(bbox: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """The (x1, y1, x2, y2) crop StackGAN/AttnGAN take around a CUB box ``[x, y, w, h]``.

    As in their ``get_imgs``/``custom_crop``: the box is truncated to ints, R = int(0.75 * max(w, h)),
    the centre is int((2x + w) / 2), int((2y + h) / 2), and the square [c - R, c + R) is clipped to
    the image (so near a border the crop is not square; the reader resizes it to a square, as they do).
    """
    x, y, w, h = (int(v) for v in bbox)
    r = int(max(w, h) * 0.75)
    cx = int((2 * x + w) / 2)
    cy = int((2 * y + h) / 2)
    x1, y1 = max(0, cx - r), max(0, cy - r)
    x2, y2 = min(width, cx + r), min(height, cy + r)
    if w <= 0 or h <= 0 or x2 <= x1 or y2 <= y1:
        raise BadBox(f"box {list(bbox)} leaves nothing of a {width}x{height} image")
    return x1, y1, x2, y2


def open_image(data: bytes) -> Image.Image:
    """``data`` fully decoded by the one image reader (PNG / JPEG, bounded pixels, complete); :class:`CorruptImage`
    if it is not such an image."""
    try:
        return images.open_image(data)
    except images.UnreadableImage as e:
        raise CorruptImage(str(e)) from None


def process_image(data: bytes, bbox: Sequence[float] | None = None, max_side: int = DEFAULT_MAX_SIDE,
                  quality: int = JPEG_QUALITY) -> tuple[bytes, tuple[int, int]]:
    """Crop (StackGAN box crop when ``bbox`` is given) and shrink to ``max_side``; returns (bytes, (w, h)).

    The original bytes are kept when nothing changes and they are an RGB/greyscale JPEG or PNG;
    otherwise the result is re-encoded in the source format (PNG stays PNG, anything else JPEG).
    ``max_side <= 0`` keeps the full resolution. Raises CorruptImage / BadBox.
    """
    img = open_image(data)
    width, height = img.size
    box = stackgan_crop_box(bbox, width, height) if bbox is not None else None
    if box == (0, 0, width, height):
        box = None
    cw, ch = (box[2] - box[0], box[3] - box[1]) if box else (width, height)
    scale = max_side / max(cw, ch) if max_side and max_side > 0 and max(cw, ch) > max_side else 1.0
    if box is None and scale == 1.0 and img.format in ("JPEG", "PNG") and img.mode in ("RGB", "L"):
        return data, (width, height)
    fmt = "PNG" if img.format == "PNG" else "JPEG"
    try:
        rgb = images.to_rgb(img)
        if box is not None:
            rgb = rgb.crop(box)
        if scale != 1.0:
            size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
            rgb = rgb.resize(size, Image.BICUBIC)
        out = io.BytesIO()
        if fmt == "PNG":
            rgb.save(out, format="PNG")
        else:
            rgb.save(out, format="JPEG", quality=quality)
    except Exception as e:  # noqa: BLE001 -- a file PIL opened but cannot convert is as bad as one it cannot open
        raise CorruptImage(f"{type(e).__name__}: {e}") from None
    return out.getvalue(), rgb.size


# ----------------------------------------------------------------------------------- skips and stats


class SkipCounter:
    """Counts skipped items per split and reason, keeping the first few names as examples."""

    def __init__(self) -> None:
        self.counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.examples: dict[str, dict[str, list[str]]] = collections.defaultdict(lambda: collections.defaultdict(list))

    def skip(self, split: str, reason: str, name: str) -> None:
        self.counts[split][reason] += 1
        names = self.examples[split][reason]
        if len(names) < MAX_SKIP_EXAMPLES:
            names.append(name)

    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def as_info(self) -> dict[str, dict[str, int]]:
        return {s: dict(sorted(c.items())) for s, c in sorted(self.counts.items()) if c}

    def examples_info(self) -> dict[str, dict[str, list[str]]]:
        return {s: {r: list(v) for r, v in sorted(d.items())} for s, d in sorted(self.examples.items()) if d}


class Vocabulary:
    """Word counts of the training captions, split as the models' in-graph tokenizer splits them."""

    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()

    def update(self, captions: Iterable[str]) -> None:
        for caption in captions:
            self.counts.update(tokenize(caption))

    def as_info(self, min_count: int) -> dict[str, Any]:
        words = sorted(((w, c) for w, c in self.counts.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
        return {"source": "train captions", "tokenizer": TOKENIZER_RULE,
                "min_count": int(min_count), "size": len(words), "words": [[w, int(c)] for w, c in words]}


class _Range:
    """Min/max of a per-image count."""

    def __init__(self) -> None:
        self.lo: int | None = None
        self.hi: int | None = None

    def add(self, n: int) -> None:
        self.lo = n if self.lo is None else min(self.lo, n)
        self.hi = n if self.hi is None else max(self.hi, n)

    def as_info(self) -> dict[str, int] | None:
        return None if self.lo is None else {"min": self.lo, "max": self.hi}


# ---------------------------------------------------------------------------------------------- writer


EmbeddingFn = Callable[[Item, str], "np.ndarray | None"]


def item_embeddings(item: Item, split: str) -> np.ndarray | None:
    """Embedding hook for items that carry their own ``embeddings``."""
    return item.embeddings



def read_image_file(path: str | None) -> tuple[bytes | None, str | None]:
    """(the file's bytes, None), or (None, the skip reason) for a missing or unreadable image file."""
    if not path or not os.path.isfile(path):
        return None, MISSING_IMAGE
    try:
        with open(path, "rb") as f:
            return f.read(), None
    except OSError:
        return None, UNREADABLE_FILE

def check_shard_options(max_side: int | None, examples_per_shard: int) -> None:
    """A one-line UserError for a record writer's --max_side / --examples_per_shard out of range."""
    if max_side is None or max_side < 0:
        raise UserError(f"--max_side must be >= 0 (0 keeps full resolution), got {max_side}")
    if examples_per_shard < 1:
        raise UserError(f"--examples_per_shard must be >= 1, got {examples_per_shard}")

class T2IWriter:
    """Writes validated :class:`Item` streams as text-to-image TFRecords and the dataset's info.json."""

    def __init__(self, out_dir: str, dataset: str, max_side: int = DEFAULT_MAX_SIDE,
                 examples_per_shard: int = DEFAULT_EXAMPLES_PER_SHARD, vocab_min_count: int = 1,
                 vocab_split: str = "train"):
        check_shard_options(max_side, examples_per_shard)
        if vocab_min_count < 1:
            raise UserError(f"--vocab_min_count must be >= 1, got {vocab_min_count}")
        self.final_dir = out_dir
        self.out_dir = start_staging(out_dir)  # published by finish(): a failed conversion leaves out_dir as it was
        self.dataset = dataset
        self.max_side = int(max_side)
        self.examples_per_shard = int(examples_per_shard)
        self.vocab_min_count = int(vocab_min_count)
        self.vocab_split = vocab_split
        self.skips = SkipCounter()
        self.vocab = Vocabulary()
        self.splits: dict[str, dict[str, Any]] = {}
        self.class_names: dict[int, str] = {}
        self.captions_range = _Range()
        self.embeddings_range = _Range()
        self.embedding_dim: int | None = None
        self.extra_int64: dict[str, int | None] | None = None  # name -> length (None: varies); set by the first item

    def skip(self, split: str, reason: str, name: str) -> None:
        """Count an item skipped outside :meth:`write_split` (e.g. its split is unknown)."""
        self.skips.skip(split, reason, name)

    def write_split(self, split: str, items: Iterable[Item], embeddings: EmbeddingFn | None = None) -> int:
        """Validate and write ``items`` to ``{split}-NNNNN.tfrecord``; returns the number written.

        ``embeddings(item, split)`` returns an array [num, dim] or None (-> skip 'missing_embeddings');
        pass None when the dataset has no embeddings, :func:`item_embeddings` when the items carry them.
        """
        classes: set[int] = set()
        with ShardedRecordWriter(self.out_dir, split, self.examples_per_shard) as writer:
            for item in items:
                example = self._example(split, item, embeddings)
                if example is None:
                    continue
                writer.write(example)
                classes.add(int(item.class_id))
            count, shards = writer.count, len(writer.paths)
        self.splits[split] = {"num_examples": count, "num_shards": shards, "num_classes": len(classes),
                              "class_ids": sorted(classes)}
        return count

    def _example(self, split: str, item: Item, embeddings: EmbeddingFn | None) -> bytes | None:
        def skip(reason: str) -> None:
            self.skips.skip(split, reason, item.name)

        if item.skip_reason:
            return skip(item.skip_reason)
        data = item.image_bytes
        if data is None:
            data, reason = read_image_file(item.image_path)
            if reason:
                return skip(reason)
        captions = item.captions
        if captions is None:
            if not item.caption_path or not os.path.isfile(item.caption_path):
                return skip(MISSING_CAPTIONS)
            try:
                with open(item.caption_path, "rb") as f:
                    captions = decode_caption_bytes(f.read())
            except OSError:
                return skip(UNREADABLE_FILE)
        captions = [c for c in captions if c.strip()]
        if not captions:
            return skip(EMPTY_CAPTIONS)
        emb = None
        if embeddings is not None:
            emb = embeddings(item, split)
            if emb is None:
                return skip(MISSING_EMBEDDINGS)
            emb = np.asarray(emb, dtype=np.float32)
            if emb.ndim == 1:
                emb = emb[None, :]
            if self.embedding_dim is None:
                self.embedding_dim = int(emb.shape[-1])
            elif emb.shape[-1] != self.embedding_dim:
                raise UserError(f"embeddings of '{item.name}' have dimension {emb.shape[-1]}, "
                                f"the others {self.embedding_dim}")
        if item.crop and item.bbox is None:
            return skip(MISSING_BBOX)
        try:
            image, _ = process_image(data, item.bbox if item.crop else None, self.max_side)
        except CorruptImage:
            return skip(CORRUPT_IMAGE)
        except BadBox:
            return skip(BAD_BBOX)
        features = {"image": bytes_feature(image), "name": bytes_feature(item.name),
                    "class_id": int64_feature(int(item.class_id)), "captions": bytes_feature(list(captions))}
        if emb is not None:
            features["embeddings"] = float_feature(emb.reshape(-1))
            self.embeddings_range.add(int(emb.shape[0]))
        features.update(self._extra_features(item))
        self.captions_range.add(len(captions))
        if split == self.vocab_split:
            self.vocab.update(captions)
        return make_example(features)

    def _extra_features(self, item: Item) -> dict[str, Any]:
        """``item.extra_int64`` as features, checking every item carries the same names."""
        extra = {str(k): [int(v) for v in values] for k, values in (item.extra_int64 or {}).items()}
        clash = set(extra) & {"image", "name", "class_id", "captions", "embeddings"}
        if clash:
            raise UserError(f"extra int64 feature(s) {sorted(clash)} of '{item.name}' would replace the schema's own")
        if self.extra_int64 is None:
            self.extra_int64 = {k: len(v) for k, v in extra.items()}
        elif set(extra) != set(self.extra_int64):
            raise UserError(f"'{item.name}' has extra int64 features {sorted(extra)}, the items before it "
                            f"{sorted(self.extra_int64)}: every item must carry the same ones")
        for k, v in extra.items():
            if self.extra_int64[k] is not None and self.extra_int64[k] != len(v):
                self.extra_int64[k] = None
        return {k: int64_feature(v) for k, v in extra.items()}

    def finish(self, split_source: str, sources: dict[str, Any], extra: dict[str, Any] | None = None,
               expected_splits: Sequence[str] = ()) -> dict:
        """Write info.json, print the one-line summary (and a warning per ``expected_splits`` split left empty)
        and return the info dict."""
        warnings = empty_split_warnings(self.splits, split_source, expected_splits)
        info: dict[str, Any] = {
            "dataset": self.dataset,
            "format": FORMAT,
            "features": ["image", "name", "class_id", "captions"] + (["embeddings"] if self.embedding_dim else [])
            + sorted(self.extra_int64 or {}),
            "extra_int64": dict(sorted((self.extra_int64 or {}).items())),
            "splits": self.splits,
            "num_classes": len({c for s in self.splits.values() for c in s["class_ids"]}),
            "class_names": {str(k): v for k, v in sorted(self.class_names.items())},
            "captions_per_image": self.captions_range.as_info(),
            "embedding_dim": self.embedding_dim,
            "embeddings_per_image": self.embeddings_range.as_info(),
            "skipped": self.skips.as_info(),
            "skipped_examples": self.skips.examples_info(),
            "split_source": split_source,
            "sources": sources,
            "image": {"max_side": self.max_side, "encoding": "original JPEG/PNG bytes when not cropped or resized, "
                      f"else re-encoded (JPEG quality {JPEG_QUALITY}, PNG stays PNG)"},
            "vocabulary": self.vocab.as_info(self.vocab_min_count),
            "warnings": warnings,
        }
        if extra:
            info.update(extra)
        write_info(self.out_dir, info)
        publish_staging(self.out_dir, self.final_dir)
        self.out_dir = self.final_dir
        print(summary_line(info, self.out_dir))
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr, flush=True)
        return info


def summary_line(info: dict, out_dir: str) -> str:
    """One line: examples per split and skips per split and reason."""
    counts = ", ".join(f"{s}={v['num_examples']}" for s, v in info["splits"].items())
    skipped = info["skipped"]
    total = sum(sum(r.values()) for r in skipped.values())
    if total:
        detail = "; ".join(f"{s}: " + ", ".join(f"{r}={n}" for r, n in reasons.items())
                           for s, reasons in skipped.items())
        skip_text = f"skipped {total} ({detail})"
    else:
        skip_text = "nothing skipped"
    emb = f"embeddings dim {info['embedding_dim']}" if info.get("embedding_dim") else "no embeddings"
    return f"{info['dataset']}: wrote {counts} to {out_dir} ({emb}); {skip_text}"


def captioned_dataset_parser(prog: str, description: str, root_flag: str, root_help: str, dataset: str) -> "argparse.ArgumentParser":
    """The shared CLI of the CUB and Flowers converters (plus its own root-folder flag)."""
    import argparse

    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument(root_flag, required=True, help=root_help)
    p.add_argument("--out_dir", required=True, help="where to write TFRecord shards and info.json")
    p.add_argument("--text_dir", default=None, help="captions folder (default: searched next to the images)")
    p.add_argument("--embeddings_dir", default=None, help=f"StackGAN {dataset} folder with {{train,test}}/*.pickle")
    p.add_argument("--split_dir", default=None, help="folder with StackGAN {train,test}/filenames.pickle or Reed's "
                                                     "trainvalclasses.txt/testclasses.txt (default: searched)")
    p.add_argument("--test_classes", default=None, help="class ids of the test split, e.g. '3,5' or '151-200' (the "
                                                        "other classes train); overrides the split files")
    p.add_argument("--test_fraction", type=float, default=None,
                   help="class-disjoint split of a subset: this fraction of the classes present (the highest class "
                        "ids, at least one) is the test split; overrides the split files")
    p.add_argument("--max_side", type=int, default=DEFAULT_MAX_SIDE, help="longest stored side (0: keep)")
    p.add_argument("--examples_per_shard", type=int, default=DEFAULT_EXAMPLES_PER_SHARD)
    p.add_argument("--vocab_min_count", type=int, default=1)
    return p


def run_cli(fn: Callable[[], Any]) -> int:
    """Run a converter; a UserError is printed on one line (no traceback) and exits 1."""
    try:
        fn()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def default_class_split(class_id: int, num_train_classes: int) -> str:
    """The deterministic fallback split: class ids 1..num_train_classes train, the rest test."""
    return "train" if class_id <= num_train_classes else "test"


def first_existing(candidates: Iterable[str], kind: str = "dir") -> str | None:
    """The first path of ``candidates`` that exists as a directory (``kind='dir'``) or file."""
    check = os.path.isdir if kind == "dir" else os.path.isfile
    for c in candidates:
        if c and check(c):
            return c
    return None


# ---------------------------------------------------------------------------------------------- splits


class Split:
    """Which split an image belongs to, and where that rule came from."""

    def __init__(self, source: str, by_name: dict[str, str] | None = None, by_class: dict[int, str] | None = None,
                 num_train_classes: int | None = None):
        self.source = source
        self.by_name = by_name
        self.by_class = by_class
        self.num_train_classes = num_train_classes

    def of(self, key: str, class_id: int | None) -> str | None:
        if self.by_name is not None:
            return self.by_name.get(key)
        if class_id is None:
            return None
        if self.by_class is not None:
            return self.by_class.get(class_id)
        return default_class_split(class_id, self.num_train_classes)

    def names(self) -> dict[str, str]:
        return self.by_name or {}


def parse_class_ids(text: str, flag: str = "--test_classes") -> set[int]:
    """Class ids from ``'3,5,151-200'`` (commas, spaces and inclusive ranges); a UserError naming ``flag`` otherwise."""
    ids: set[int] = set()
    for part in str(text).replace(" ", ",").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise UserError(f"{flag} must be class ids like '3,5' or '151-200'; got {text!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        ids.update(range(lo, hi + 1))
    if not ids:
        raise UserError(f"{flag} names no class id; got {text!r}")
    return ids


def explicit_class_split(class_ids: Iterable[int], test_classes: str | None = None,
                         test_fraction: float | None = None) -> Split | None:
    """The split asked for by ``--test_classes`` or ``--test_fraction`` over the classes present (None: neither)."""
    if test_classes is not None and test_fraction is not None:
        raise UserError("give --test_classes or --test_fraction, not both")
    present = sorted(set(int(c) for c in class_ids))
    if test_classes is not None:
        test = parse_class_ids(test_classes)
        unknown = sorted(test - set(present))
        if unknown:
            raise UserError(f"--test_classes names class id(s) {', '.join(map(str, unknown[:10]))} that no image has "
                            f"(present: {_id_ranges(present)})")
        if set(present) <= test:
            raise UserError(f"--test_classes={test_classes} takes every class present ({_id_ranges(present)}): "
                            "no class would be left to train on")
        return Split(f"test_classes: {_id_ranges(sorted(test))} test, the other {len(present) - len(test)} classes "
                     "train", by_class={c: "test" if c in test else "train" for c in present})
    if test_fraction is None:
        return None
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"--test_fraction must be between 0 and 1 (exclusive); got {test_fraction}")
    if len(present) < 2:
        raise UserError(f"--test_fraction needs at least 2 classes for a class-disjoint split; the images have "
                        f"{len(present)}")
    num_test = min(len(present) - 1, max(1, int(round(test_fraction * len(present)))))
    test_ids = present[-num_test:]
    return Split(f"test_fraction {test_fraction:g}: the highest {num_test} of {len(present)} class ids "
                 f"({_id_ranges(test_ids)}) test, the rest train",
                 by_class={c: "test" if c in test_ids else "train" for c in present})


def _id_ranges(ids: Sequence[int]) -> str:
    """'1-3,7' for [1, 2, 3, 7]."""
    out, start = [], None
    for i, c in enumerate(ids):
        if start is None:
            start = c
        if i + 1 == len(ids) or ids[i + 1] != c + 1:
            out.append(str(start) if start == c else f"{start}-{c}")
            start = None
    return ",".join(out)


def empty_split_warnings(splits: dict[str, dict[str, Any]], split_source: str,
                         expected: Sequence[str] = ("train", "test")) -> list[str]:
    """A warning per expected split that got no record, naming the fix (a small subset of classes, typically)."""
    out = []
    for s in expected:
        if splits.get(s, {}).get("num_examples", 0) == 0:
            out.append(f"the {s} split has 0 records (split: {split_source.split(':')[0]}): for a subset of the "
                       "classes give --test_classes=IDS (e.g. '3,5') or --test_fraction=0.2 (class-disjoint), or "
                       "--split_dir with trainvalclasses.txt/testclasses.txt naming your classes")
    return out


def find_split(search_dirs: Sequence[str | None], explicit: str | None, key: Callable[[str], str],
               num_train_classes: int, dataset: str, class_ids: Iterable[int] = (),
               test_classes: str | None = None, test_fraction: float | None = None) -> tuple[Split, dict[str, int]]:
    """--test_classes / --test_fraction over ``class_ids`` when given, else StackGAN pickles, else Reed class lists,
    else the default class split; plus pickle class ids."""
    asked = explicit_class_split(class_ids, test_classes, test_fraction)
    if asked is not None:
        if explicit:
            raise UserError("give --split_dir or --test_classes / --test_fraction, not both")
        return asked, {}
    dirs = [explicit] if explicit else [d for d in search_dirs if d]
    if explicit and not os.path.isdir(explicit):
        raise UserError(f"--split_dir {explicit} not found")
    for d in dirs:
        if stackgan_pickles.split_dirs(d):
            by_name, class_of = stackgan_pickles.read_split_lists(d, key)
            where = ", ".join(os.path.abspath(p) for p in stackgan_pickles.split_dirs(d).values())
            return Split(f"stackgan_filenames_pickles: {where}", by_name=by_name), class_of
    for d in dirs:
        train, test = os.path.join(d, TRAIN_CLASS_LIST), os.path.join(d, TEST_CLASS_LIST)
        if os.path.isfile(train) and os.path.isfile(test):
            by_class: dict[int, str] = {}
            for path, split in ((train, "train"), (test, "test")):
                for line in read_class_list(path):
                    cid = leading_int(line)
                    if cid is None:
                        raise UserError(f"{path}: expected one class per line like '001.Black_footed_Albatross' "
                                        f"or 'class_00001', got {line!r}")
                    by_class[cid] = split
            return Split(f"reed_class_lists: {os.path.abspath(train)}, {os.path.abspath(test)}", by_class=by_class), {}
    if explicit:
        raise UserError(f"--split_dir {explicit} has neither StackGAN {{train,test}}/filenames.pickle nor "
                        f"{TRAIN_CLASS_LIST} + {TEST_CLASS_LIST}")
    return Split(f"default_class_split: class ids 1-{num_train_classes} train, the rest test "
                 f"(no StackGAN filenames.pickle or Reed class lists found for {dataset})",
                 num_train_classes=num_train_classes), {}


def split_order(splits: Sequence[str]) -> list[str]:
    """train, test, then any other split names sorted."""
    known = [s for s in ("train", "test") if s in splits]
    return known + sorted(s for s in set(splits) if s not in known)
