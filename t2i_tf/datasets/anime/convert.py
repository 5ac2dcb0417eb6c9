"""Anime faces with tags (the "simple anime faces" data of deep_t2i / MLDS) -> text-to-image TFRecords + info.json.

Reads the layouts as downloaded (``--anime_dir`` is the folder holding them, or the folder containing
``extra_data/``):

- deep_t2i: ``imgs/<id>.jpg`` + ``tags.csv`` (``0,aqua hair aqua eyes``);
- MLDS 2018 HW3 ``extra_data``: ``images/<id>.jpg`` + ``tags.csv`` (the same rows);
- MLDS 2017 HW3: ``faces/<id>.jpg`` + ``tags_clean.csv`` (``0,long hair:12360<TAB>blue eyes:8540``; add
  ``--tag_filter=colours`` to keep only the hair / eye colour tags).

``--images_dir`` / ``--tags_file`` name other places; t2i_tf/datasets/anime/tags.py says how rows are read.
Each image is stored as its centre square at ``--image_size`` (default 64) in ``--image_format`` (png | jpeg);
its one caption is its tags (``"blue hair red eyes"``) and its class the distinct tag string (so "wrong images"
and R-precision's mismatched captions have other tags). The split is stratified by tags: ``--test_fraction``
(default 0.2, deep_t2i's ``valid_pct``) of each tag string's images, chosen with ``--seed``, are the test split
(a tag string with one image stays in train).

Never silent: unreadable / corrupt images, images of another format, rows whose image is missing, rows with empty
tags and images no row names are counted by reason in info.json ``skipped`` and listed one by one in
``skipped_items`` (split, reason, image, detail); the summary line and the first names of each reason are printed.
A malformed row is an error naming its line (``--bad_rows=skip`` counts such rows as ``bad_row`` instead).

    python -m datasets.anime.convert --anime_dir=DIR --out_dir=DIR [--image_size=64] [--image_format=png]
        [--test_fraction=0.2] [--seed=0] [--tag_filter=all|colours] [--tags_format=auto|plain|counted]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from t2i_tf.datasets.anime import images as anime_images
from t2i_tf.datasets.anime import tags as anime_tags
from t2i_tf.datasets.t2i_common import (
    DEFAULT_EXAMPLES_PER_SHARD,
    UNASSIGNED,
    Item,
    T2IWriter,
    run_cli,
)
from t2i_tf.errors import UserError

DATASET = "anime"
IMAGE_DIRS = ("imgs", "images", "faces")
TAG_FILES = ("tags.csv", "tags_clean.csv")
NESTED = ("extra_data",)
DEFAULT_IMAGE_SIZE = 64
DEFAULT_TEST_FRACTION = 0.2
PRINTED_PER_REASON = 10

MISSING_IMAGE = "missing_image"
EMPTY_TAGS = "empty_tags"
UNTAGGED_IMAGE = "untagged_image"
BAD_ROW = "bad_row"


def resolve_layout(anime_dir: str, images_dir: str | None = None, tags_file: str | None = None) -> tuple[str, str]:
    """(images folder, tag file) of ``anime_dir``: the flags when given, else the first published variant found in
    ``anime_dir`` or its ``extra_data/``."""
    if not os.path.isdir(anime_dir):
        raise UserError(f"--anime_dir {anime_dir} is not a folder")
    roots = [anime_dir] + [os.path.join(anime_dir, n) for n in NESTED if os.path.isdir(os.path.join(anime_dir, n))]
    if tags_file is None:
        found = [os.path.join(r, t) for r in roots for t in TAG_FILES if os.path.isfile(os.path.join(r, t))]
        if not found:
            raise UserError(f"no tag file in {anime_dir} (looked for {' or '.join(TAG_FILES)} there and in "
                            f"{'/'.join(NESTED)}/): the anime layout is imgs/ + tags.csv with rows like "
                            "'0.jpg,blue hair red eyes'; give --tags_file otherwise")
        tags_file = found[0]
    elif not os.path.isfile(tags_file):
        raise UserError(f"--tags_file {tags_file} not found")
    if images_dir is None:
        base = os.path.dirname(os.path.abspath(tags_file))
        candidates = [os.path.join(r, d) for r in [base] + roots for d in IMAGE_DIRS]
        images_dir = next((c for c in candidates if os.path.isdir(c)), None)
        if images_dir is None:
            raise UserError(f"no images folder next to {tags_file} (looked for {', '.join(IMAGE_DIRS)}): give "
                            "--images_dir")
    elif not os.path.isdir(images_dir):
        raise UserError(f"--images_dir {images_dir} is not a folder")
    return images_dir, tags_file


def stratified_split(captions: dict[str, str], test_fraction: float, seed: int) -> dict[str, str]:
    """``{image: 'train' | 'test'}``: per tag string, ``round(test_fraction * n)`` of its images (at most n - 1),
    drawn with ``seed`` from the images in name order, are test."""
    if not 0.0 <= test_fraction < 1.0:
        raise UserError(f"--test_fraction must be in [0, 1); got {test_fraction}")
    by_tags: dict[str, list[str]] = collections.defaultdict(list)
    for image, caption in captions.items():
        by_tags[caption].append(image)
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    for caption in sorted(by_tags):
        names = sorted(by_tags[caption])
        n_test = min(len(names) - 1, round(test_fraction * len(names)))
        order = rng.permutation(len(names))
        test = {names[i] for i in order[:n_test]}
        out.update({n: "test" if n in test else "train" for n in names})
    return out


class _Skips:
    """Every skipped image with its reason and detail (info.json ``skipped_items``)."""

    def __init__(self) -> None:
        self.items: list[list[str]] = []

    def add(self, split: str, reason: str, name: str, detail: str) -> None:
        self.items.append([split, reason, name, detail])

    def print_report(self) -> None:
        by_reason: dict[str, list[str]] = collections.defaultdict(list)
        for split, reason, name, detail in self.items:
            by_reason[reason].append(f"{name} ({detail})" if detail else name)
        for reason, names in sorted(by_reason.items()):
            more = f" and {len(names) - PRINTED_PER_REASON} more" if len(names) > PRINTED_PER_REASON else ""
            print(f"skipped {len(names)} {reason}: {'; '.join(names[:PRINTED_PER_REASON])}{more}", file=sys.stderr)
        if self.items:
            print(f"(all {len(self.items)} skipped images are listed in info.json skipped_items)", file=sys.stderr)


def convert_anime(anime_dir: str, out_dir: str, images_dir: str | None = None, tags_file: str | None = None,
                  image_size: int = DEFAULT_IMAGE_SIZE, image_format: str = "png",
                  test_fraction: float = DEFAULT_TEST_FRACTION, seed: int = 0, tag_filter: str = "all",
                  tags_format: str = "auto", bad_rows: str = "error",
                  examples_per_shard: int = DEFAULT_EXAMPLES_PER_SHARD) -> dict[str, Any]:
    """Convert an anime-faces folder to TFRecords in ``out_dir``; returns the info written to info.json."""
    if image_size < 4:
        raise UserError(f"--image_size must be >= 4; got {image_size}")
    if image_format not in anime_images.IMAGE_FORMATS:
        raise UserError(f"--image_format must be one of {', '.join(anime_images.IMAGE_FORMATS)}; got {image_format!r}")
    if bad_rows not in ("error", "skip"):
        raise UserError(f"--bad_rows must be error or skip; got {bad_rows!r}")
    images_dir, tags_file = resolve_layout(anime_dir, images_dir, tags_file)
    skips = _Skips()
    tag_file, bad = _read_rows(tags_file, tags_format, tag_filter, bad_rows)
    for line, detail in bad:
        skips.add(UNASSIGNED, BAD_ROW, f"line {line}", detail)
    listing = {f for f in os.listdir(images_dir) if os.path.isfile(os.path.join(images_dir, f))}
    writer = T2IWriter(out_dir, DATASET, max_side=0, examples_per_shard=examples_per_shard)

    named: set[str] = set()
    captions: dict[str, str] = {}
    paths: dict[str, str] = {}
    for row in tag_file.rows:
        path = anime_images.resolve(images_dir, row.image, listing)
        if path is not None:
            named.add(os.path.basename(path))
        name = os.path.basename(path) if path else row.image
        if not row.caption:
            skips.add(UNASSIGNED, EMPTY_TAGS, name, f"{os.path.basename(tags_file)} line {row.line}")
        elif path is None:
            skips.add(UNASSIGNED, MISSING_IMAGE, row.image, f"not in {images_dir}")
        else:
            captions[name], paths[name] = row.caption, path
    for f in sorted(listing - named):
        if os.path.splitext(f)[1].lower() in anime_images.EXTENSIONS:
            skips.add(UNASSIGNED, UNTAGGED_IMAGE, f, f"no row in {os.path.basename(tags_file)}")
    for split, reason, name, _ in skips.items:
        writer.skip(split, reason, name)

    classes = {c: i + 1 for i, c in enumerate(sorted(set(captions.values())))}
    writer.class_names.update({i: c for c, i in classes.items()})
    split_of = stratified_split(captions, test_fraction, seed)

    def items(split: str) -> Iterator[Item]:
        for name in sorted(captions, key=_natural_key):
            if split_of[name] != split:
                continue
            try:
                data = anime_images.square_image(paths[name], image_size, image_format)
            except anime_images.ImageSkip as e:
                skips.add(split, e.reason, name, e.detail)
                yield Item(name=name, class_id=classes[captions[name]], skip_reason=e.reason)
                continue
            yield Item(name=name, class_id=classes[captions[name]], image_bytes=data, captions=[captions[name]])

    for split in ("train", "test"):
        if split == "test" and test_fraction == 0:
            continue
        writer.write_split(split, items(split))
    source = (f"stratified by tags: test_fraction {test_fraction:g} of each tag string's images (seed {seed}), "
              "a tag string with one image in train")
    extra = {"image_crop": "centre square", "image_size": image_size, "image_format": image_format,
             "skipped_items": skips.items,
             "anime": {"images_dir": os.path.abspath(images_dir), "tags_file": os.path.abspath(tags_file),
                       "tags_format": tag_file.format, "tag_filter": tag_filter, "rows": len(tag_file.rows) + len(bad),
                       "header": tag_file.header, "test_fraction": test_fraction, "seed": seed,
                       "num_tag_strings": len(classes)}}
    sources = {"anime_dir": os.path.abspath(anime_dir), "tags_file": os.path.abspath(tags_file)}
    expected = ("train", "test") if test_fraction > 0 else ("train",)
    info = writer.finish(source, sources, extra, expected_splits=expected)
    skips.print_report()
    return info


def _read_rows(tags_file: str, tags_format: str, tag_filter: str, bad_rows: str):
    """The tag file's rows, and with ``bad_rows='skip'`` the (line, error) of each malformed row left out."""
    if bad_rows == "error":
        return anime_tags.read_tag_file(tags_file, tags_format, tag_filter), []
    return anime_tags.read_tag_file_lenient(tags_file, tags_format, tag_filter)


def _natural_key(name: str) -> tuple:
    """'2.jpg' before '10.jpg'."""
    stem, ext = os.path.splitext(name)
    return (0, int(stem), ext) if stem.isdigit() else (1, stem, ext)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints a UserError on one line and exits non-zero."""
    p = argparse.ArgumentParser(prog="python -m datasets.anime.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("--anime_dir", required=True, help="folder holding imgs/ (or images/, faces/) and tags.csv "
                                                      "(or tags_clean.csv), or the folder containing extra_data/")
    p.add_argument("--out_dir", required=True, help="where to write TFRecord shards and info.json")
    p.add_argument("--images_dir", default=None, help="the images folder (default: found next to the tag file)")
    p.add_argument("--tags_file", default=None, help="the tag file (default: tags.csv or tags_clean.csv, found)")
    p.add_argument("--image_size", type=int, default=DEFAULT_IMAGE_SIZE, help="stored side in pixels (square)")
    p.add_argument("--image_format", default="png", choices=anime_images.IMAGE_FORMATS,
                   help="stored encoding: png (lossless) or jpeg (quality 95)")
    p.add_argument("--test_fraction", type=float, default=DEFAULT_TEST_FRACTION,
                   help="fraction of each tag string's images in the test split (0: train only)")
    p.add_argument("--seed", type=int, default=0, help="seed of the test images' draw")
    p.add_argument("--tag_filter", default="all", choices=anime_tags.TAG_FILTERS,
                   help="all tags, or only '<colour> hair' / '<colour> eyes' (for tags_clean.csv)")
    p.add_argument("--tags_format", default="auto", choices=anime_tags.FORMATS,
                   help="rows '<image>,<tags>' (plain) or '<image>,<tag>:<count><TAB>...' (counted); auto: detected")
    p.add_argument("--bad_rows", default="error", choices=("error", "skip"),
                   help="a malformed row stops the conversion (error, default) or is counted as bad_row (skip)")
    p.add_argument("--examples_per_shard", type=int, default=DEFAULT_EXAMPLES_PER_SHARD)
    a = p.parse_args(argv)
    return run_cli(lambda: convert_anime(a.anime_dir, a.out_dir, a.images_dir, a.tags_file, a.image_size,
                                         a.image_format, a.test_fraction, a.seed, a.tag_filter, a.tags_format,
                                         a.bad_rows, a.examples_per_shard))


if __name__ == "__main__":
    sys.exit(main())
