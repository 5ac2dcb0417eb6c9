"""Reading CSS object lists from the raw annotation file (py2 / py3 pickles: str or bytes keys and values)."""

from __future__ import annotations

from typing import Any, Sequence

from t2i_tf.data.css_scene import COLORS, SHAPES, SIZES
from t2i_tf.errors import UserError


def text_value(value: Any) -> str:
    """A string from a py3 str or a py2/py3 byte string."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin1")
    return str(value)


def get_key(d: Any, key: str) -> Any:
    """``d[key]`` for a str or bytes key; KeyError when neither is there (or ``d`` is not a dict)."""
    if isinstance(d, dict):
        for k in (key, key.encode("ascii")):
            if k in d:
                return d[k]
    raise KeyError(key)


def parse_objects(raw: Sequence[Any], where: str) -> list[dict[str, Any]]:
    """A CSS object list with str fields; a UserError naming ``where`` when it is not one."""
    out = []
    try:
        for o in raw:
            obj = {"pos": tuple(float(p) for p in get_key(o, "pos")), "size": text_value(get_key(o, "size")),
                   "color": text_value(get_key(o, "color")), "shape": text_value(get_key(o, "shape"))}
            if obj["size"] not in SIZES or obj["color"] not in COLORS or obj["shape"] not in SHAPES:
                raise UserError(f"{where}: unknown object {obj} (sizes {SIZES}, colours {tuple(COLORS)}, shapes {SHAPES})")
            out.append(obj)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{where}: expected a list of objects with 'pos', 'size', 'color', 'shape' ({e})") from None
    return out
