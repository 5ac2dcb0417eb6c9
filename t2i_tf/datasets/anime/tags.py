"""The tag files of the "simple anime faces" layouts: one row per image, its name and its tags.

Two row formats, as published:

- ``plain`` (deep_t2i's ``tags.csv``, the MLDS 2018 HW3 ``extra_data/tags.csv``): ``<image>,<tags>``, e.g.
  ``0,aqua hair aqua eyes`` or ``0.jpg,blue hair red eyes``; the tags are free text (a quoted field may hold
  commas; more than two unquoted fields are read as comma-separated tags);
- ``counted`` (the MLDS 2017 ``tags_clean.csv``): ``<image>,<tag>:<count><TAB><tag>:<count>...``, e.g.
  ``0,long hair:12360<TAB>blue eyes:8540``; the counts are dropped. ``auto`` (default) takes a file named
  ``tags_clean.csv``, or whose first row's tags hold a TAB or a ``tag:count`` item, as counted; then every row must
  be.

Tags are normalised to one caption per image: lower case, Danbooru underscores as spaces (``blue_hair`` ->
``blue hair``), whitespace collapsed. ``tag_filter="colours"`` keeps only ``<colour> hair`` / ``<colour> eyes``
tags of the MLDS colour lists (what deep_t2i and the MLDS homework condition on). A row that cannot be read
(no tag field, an empty or path-like image name, a ``counted`` item without an integer count, a second row for
the same image, bytes that are not UTF-8) is a :class:`~t2i_tf.errors.UserError` naming the file and line; a row
whose tags are empty (after the filter) is returned with an empty caption for the converter to count.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re

from t2i_tf.errors import UserError

PLAIN, COUNTED = "plain", "counted"
FORMATS = ("auto", PLAIN, COUNTED)
TAG_FILTERS = ("all", "colours")

# deep_t2i's tokenizer vocabulary (deep_t2i/data_anime_heads.py Tokenizer) = the MLDS 2018 tag lists; MLDS 2017
# also has gray eyes.
HAIR_COLOURS = ("orange", "white", "aqua", "gray", "green", "red", "purple", "pink", "blue", "black", "brown",
                "blonde")
EYE_COLOURS = ("black", "orange", "purple", "pink", "yellow", "aqua", "green", "brown", "red", "blue", "gray")

# A first row naming the columns instead of an image (written by pandas / spreadsheets); it is skipped and said.
HEADER_NAMES = ("id", "image", "image_id", "image_name", "img", "file", "filename", "file_name", "name")

_COUNTED_ITEM = re.compile(r"^\s*([^:\t]+?)\s*:\s*(-?\d+)\s*$")
_COLOUR_TAG = re.compile(r"\b(\w+) (hair|eyes)\b")
_SPACES = re.compile(r"\s+")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclasses.dataclass(frozen=True)
class Row:
    """One image's row: the image name as written, its caption (normalised tags, "" when none) and its line."""

    image: str
    caption: str
    line: int


@dataclasses.dataclass
class TagFile:
    """The rows of a tag file and how it was read."""

    path: str
    format: str
    rows: list[Row]
    header: list[str] | None = None


def normalise(tags: str) -> str:
    """Lower case, underscores as spaces, whitespace collapsed: ``'Blue_Hair  red eyes'`` -> ``'blue hair red eyes'``."""
    return _SPACES.sub(" ", tags.replace("_", " ").lower()).strip()


def colour_tags(caption: str) -> str:
    """Only the ``<colour> hair`` / ``<colour> eyes`` tags of a normalised caption, in their order."""
    kept = [f"{c} {part}" for c, part in _COLOUR_TAG.findall(caption)
            if c in (HAIR_COLOURS if part == "hair" else EYE_COLOURS)]
    return " ".join(kept)


def _is_counted(path: str, fields: list[str]) -> bool:
    """The ``auto`` rule: a file named tags_clean.csv, or a first row of two fields whose tags hold a TAB or a
    ``tag:count`` item."""
    if os.path.basename(path) == "tags_clean.csv":
        return True
    return len(fields) == 2 and ("\t" in fields[1] or any(_COUNTED_ITEM.match(i) for i in fields[1].split("\t")))


def _decode(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"{path} line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the tag file as "
                        "UTF-8") from None


def _check_image_name(path: str, line: int, name: str) -> str:
    name = name.strip()
    if not name:
        raise UserError(f"{path} line {line}: empty image name; expected '<image>,<tags>' such as "
                        "'0.jpg,blue hair red eyes'")
    if "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise UserError(f"{path} line {line}: image name {name[:80]!r} must be a file name inside the images "
                        "folder (no path)")
    return name


def _tags_of(path: str, line: int, fields: list[str], fmt: str) -> str:
    if fmt == COUNTED:
        if len(fields) != 2:
            raise UserError(f"{path} line {line}: expected '<image>,<tag>:<count><TAB>...' (2 fields), got "
                            f"{len(fields)} fields")
        tags = []
        for item in fields[1].split("\t"):
            if not item.strip():
                continue
            m = _COUNTED_ITEM.match(item)
            if not m:
                raise UserError(f"{path} line {line}: tag item {item.strip()[:60]!r} is not '<tag>:<count>' (the "
                                "tags_clean.csv format); use --tags_format=plain if the file holds plain tags")
            tags.append(m.group(1))
        return normalise(" ".join(tags))
    return normalise(" ".join(fields[1:]))


def read_tag_file(path: str, fmt: str = "auto", tag_filter: str = "all") -> TagFile:
    """Every row of the tag file at ``path``; ``fmt`` auto: ``counted`` when the first row's tags are all
    ``tag:count`` items, else ``plain``. A UserError names the line of the first malformed row."""
    return _read(path, fmt, tag_filter, None)


def read_tag_file_lenient(path: str, fmt: str = "auto", tag_filter: str = "all") -> tuple[TagFile, list[tuple[int, str]]]:
    """:func:`read_tag_file` that leaves malformed rows out; returns them as (line, error). A file that is not
    UTF-8 or has no good row is still an error."""
    bad: list[tuple[int, str]] = []
    return _read(path, fmt, tag_filter, bad), bad


def _read(path: str, fmt: str, tag_filter: str, bad: list[tuple[int, str]] | None) -> TagFile:
    if fmt not in FORMATS:
        raise UserError(f"--tags_format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if tag_filter not in TAG_FILTERS:
        raise UserError(f"--tag_filter must be one of {', '.join(TAG_FILTERS)}; got {tag_filter!r}")
    if not os.path.isfile(path):
        raise UserError(f"tag file {path} not found")
    with open(path, "rb") as f:
        text = _decode(path, f.read())
    rows: list[Row] = []
    header: list[str] | None = None
    seen: dict[str, int] = {}
    for line, raw in enumerate(text.split("\n"), 1):
        raw = raw.rstrip("\r")
        try:
            fields = next(csv.reader([raw]), [])
        except csv.Error as e:
            _bad(bad, UserError(f"{path} line {line}: not a readable CSV row ({e})"), line)
            continue
        if not fields or all(not f.strip() for f in fields):
            continue
        if not rows and header is None and not seen and fields[0].strip().lower() in HEADER_NAMES:
            header = fields
            continue
        try:
            if fmt == "auto" and len(fields) >= 2:
                fmt = COUNTED if _is_counted(path, fields) else PLAIN
            row = _row(path, line, fields, PLAIN if fmt == "auto" else fmt, tag_filter, seen)
        except UserError as e:
            _bad(bad, e, line)
            continue
        seen[row.key] = line
        rows.append(Row(row.image, row.caption, line))
    if not rows:
        raise UserError(f"{path} has no readable rows; expected one '<image>,<tags>' row per image such as "
                        "'0.jpg,blue hair red eyes'")
    return TagFile(path, PLAIN if fmt == "auto" else fmt, rows, header)


def _bad(bad: list[tuple[int, str]] | None, error: UserError, line: int) -> None:
    if bad is None:
        raise error
    bad.append((line, str(error)))


@dataclasses.dataclass(frozen=True)
class _Parsed:
    image: str
    caption: str
    key: str


def _row(path: str, line: int, fields: list[str], fmt: str, tag_filter: str, seen: dict[str, int]) -> _Parsed:
    if len(fields) < 2:
        raise UserError(f"{path} line {line}: expected '<image>,<tags>' such as '0.jpg,blue hair red eyes'; "
                        f"got {','.join(fields)[:80]!r} (no comma)")
    image = _check_image_name(path, line, fields[0])
    caption = _tags_of(path, line, fields, fmt)
    if tag_filter == "colours":
        caption = colour_tags(caption)
    key = os.path.splitext(image)[0] if os.path.splitext(image)[1].lower() in IMAGE_EXTENSIONS else image
    if key in seen:
        raise UserError(f"{path} line {line}: image {image!r} already has a row (line {seen[key]}); give each "
                        "image one row")
    return _Parsed(image, caption, key)
