"""Writing pickles the way Python 2 did, for fixtures in the official (py2) layouts."""

from __future__ import annotations

import pickle
import struct


class Py2Pickler(pickle._Pickler):
    """Protocol-2 pickles as Python 2 wrote them: ``str`` and ``bytes`` become py2 byte strings."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes | str) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str
