"""The elements of a top-level JSON array, one at a time (Visual Genome's objects.json / relationships.json are
gigabytes: read whole they would take many times that in memory)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from t2i_tf.errors import UserError

CHUNK = 1 << 20
_SPACE = " \t\n\r"


class _Buffer:
    """Text of a file read in chunks, with a read position; consumed text is dropped when more is read."""

    def __init__(self, f, path: str, chunk: int):
        self.f, self.path, self.chunk = f, path, chunk
        self.text, self.pos, self.dropped, self.eof = "", 0, 0, False

    def fill(self) -> bool:
        """Read one more chunk; False at the end of the file."""
        if self.eof:
            return False
        try:
            data = self.f.read(self.chunk)
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{self.path} cannot be read as UTF-8 JSON ({type(e).__name__})") from None
        self.dropped += self.pos
        self.text, self.pos = self.text[self.pos:] + data, 0
        self.eof = not data
        return bool(data)

    def peek(self) -> str:
        """The next non-space character ('' at the end), not consumed."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
                self.pos += 1
            if self.pos < len(self.text) or not self.fill():
                return self.text[self.pos:self.pos + 1]

    def error(self, what: str) -> UserError:
        return UserError(f"{self.path}: not a JSON array of entries ({what} at character {self.dropped + self.pos})")


def iter_json_array(path: str, chunk: int = CHUNK) -> Iterator[Any]:
    """Each element of the JSON array in ``path``, in order; a one-line UserError naming the file and the character
    offset when it is not a JSON array."""
    try:
        with open(path, encoding="utf-8") as f:
            yield from _elements(_Buffer(f, path, chunk))
    except OSError as e:
        raise UserError(f"{path} cannot be read ({e.strerror})") from None


def _elements(buf: _Buffer) -> Iterator[Any]:
    decoder = json.JSONDecoder()
    if buf.peek() != "[":
        raise buf.error("no '['")
    buf.pos += 1
    if buf.peek() == "]":
        return
    while True:
        buf.peek()
        while True:
            try:
                value, end = decoder.raw_decode(buf.text, buf.pos)
            except json.JSONDecodeError as e:
                if buf.fill():  # most likely an entry cut by the chunk: read on and try again
                    continue
                raise buf.error(f"malformed entry ({e.msg})") from None
            if buf.text[end:].lstrip(_SPACE)[:1] not in (",", "]") and buf.fill():  # e.g. "2." of "2.5": read on
                continue
            break
        yield value
        buf.pos = end
        nxt = buf.peek()
        if nxt == ",":
            buf.pos += 1
        elif nxt == "]":
            return
        else:
            raise buf.error("expected ',' or ']'" if nxt else "unexpected end")
