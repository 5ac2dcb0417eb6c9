"""Visual Genome annotation files as google/sg2im's scripts/preprocess_vg.py reads them (file:line of its HEAD).

- ``image_data.json``: ``[{"image_id", "width", "height", "url", ...}]``; the image file is the url's last folder and
  name (``VG_100K/1.jpg``, preprocess_vg.py:163-170) under the images folder;
- ``objects.json``: ``[{"image_id", "objects": [{"object_id", "names": [...], "x", "y", "w", "h"}]}]``;
- ``relationships.json``: ``[{"image_id", "relationships": [{"relationship_id", "predicate", "subject": {"object_id"},
  "object": {"object_id"}}]}]``;
- ``object_alias.txt`` / ``relationship_alias.txt``: comma-separated names per line, all read as the first
  (preprocess_vg.py:206-214);
- ``vg_splits.json`` (google/sg2im sg2im/data/vg_splits.json): ``{"train": [image ids], "val": [...], "test": [...]}``.

An entry whose fields are missing or of the wrong type raises :class:`BadAnnotation` for its image.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from typing import Any

from t2i_tf.datasets.scene_graph_writer import BadAnnotation
from t2i_tf.errors import UserError


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def load_aliases(path: str) -> dict[str, str]:
    """``{name: the first name of its line}`` of an alias file (every name of a line, the first included)."""
    aliases: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                names = [s.strip() for s in line.split(",")]
                for name in names:
                    aliases[name] = names[0]
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path} cannot be read as a UTF-8 alias list ({type(e).__name__})") from None
    return aliases


def load_splits(path: str) -> dict[str, list[int]]:
    """``{split: [image ids]}`` of vg_splits.json; a one-line UserError when it is not that."""
    try:
        with open(path) as f:
            splits = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a JSON file of splits ({type(e).__name__}: {e})") from None
    if not isinstance(splits, dict) or not splits or not all(
            isinstance(ids, list) and all(isinstance(i, int) for i in ids) for ids in splits.values()):
        raise UserError(f"{path}: expected {{\"train\": [image ids], \"val\": [...], \"test\": [...]}} "
                        "(google/sg2im sg2im/data/vg_splits.json)")
    return {str(k): v for k, v in splits.items()}


@dataclasses.dataclass
class ImageEntry:
    """One image_data.json entry: size as listed and the image's path under the images folder."""

    width: int
    height: int
    path: str


def image_entry(entry: Any) -> tuple[int, ImageEntry] | None:
    """``(image id, ImageEntry)`` of an image_data.json entry; None when it is malformed."""
    if not isinstance(entry, dict) or not isinstance(entry.get("image_id"), int):
        return None
    url = entry.get("url")
    if not isinstance(url, str) or "/" not in url or not _number(entry.get("width")) or not _number(entry.get("height")):
        return None
    parts = url.rstrip("/").split("/")
    return entry["image_id"], ImageEntry(int(entry["width"]), int(entry["height"]), f"{parts[-2]}/{parts[-1]}")


def entry_image_id(entry: Any) -> int | None:
    """The image id of an objects.json / relationships.json entry; None when it has none (a malformed entry)."""
    if isinstance(entry, dict) and isinstance(entry.get("image_id"), int):
        return entry["image_id"]
    return None


def object_names(obj: Any, aliases: dict[str, str]) -> list[str]:
    """The aliased names of one object, in order (BadAnnotation when it has no list of names)."""
    names = obj.get("names") if isinstance(obj, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadAnnotation("object without a list of names")
    return [aliases.get(n, n) for n in names]


def image_objects(entry: dict) -> list[dict]:
    """The object list of an objects.json entry (BadAnnotation when it has none)."""
    objects = entry.get("objects")
    if not isinstance(objects, list):
        raise BadAnnotation("no object list")
    return objects


@dataclasses.dataclass
class KeptObject:
    """An object that passed the filters: its vocabulary index and box ``[x, y, w, h]`` in pixels."""

    object_id: int
    name_index: int
    box: tuple[float, float, float, float]


def filter_objects(entry: dict, aliases: dict[str, str], name_to_index: dict[str, int], min_object_size: float,
                   ) -> tuple[list[KeptObject], int]:
    """The objects of an objects.json entry whose first in-vocabulary (aliased) name exists and whose box is at least
    ``min_object_size`` wide and high (preprocess_vg.py:277-312), and the number too small."""
    kept, too_small = [], 0
    for obj in image_objects(entry):
        names = object_names(obj, aliases)
        box = tuple(obj.get(k) for k in ("x", "y", "w", "h"))
        if not all(_number(v) for v in box) or not isinstance(obj.get("object_id"), int):
            raise BadAnnotation("object without an integer object_id and numeric x, y, w, h")
        index = next((name_to_index[n] for n in names if n in name_to_index), None)
        small = box[2] < min_object_size or box[3] < min_object_size
        too_small += small
        if index is not None and not small:
            kept.append(KeptObject(obj["object_id"], index, box))
    return kept, too_small


def relationship_parts(rel: Any, aliases: dict[str, str]) -> tuple[int, str, int]:
    """``(subject object_id, aliased lower-case predicate, object object_id)`` of a relationship (BadAnnotation when
    a part is missing); the predicate as preprocess_vg.py:330-331 reads it."""
    try:
        s, o, pred = rel["subject"]["object_id"], rel["object"]["object_id"], rel["predicate"]
    except (KeyError, TypeError):
        raise BadAnnotation("relationship without subject / object object_id and predicate") from None
    if not isinstance(s, int) or not isinstance(o, int) or not isinstance(pred, str):
        raise BadAnnotation("relationship with a non-integer object_id or a non-string predicate")
    pred = pred.lower().strip()
    return s, aliases.get(pred, pred), o


def image_relationships(entry: dict) -> list:
    """The relationship list of a relationships.json entry (BadAnnotation when it has none)."""
    rels = entry.get("relationships")
    if not isinstance(rels, list):
        raise BadAnnotation("no relationship list")
    return rels
