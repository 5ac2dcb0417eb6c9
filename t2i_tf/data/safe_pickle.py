"""Restricted unpickling of files users download (pickles and object ``.npy``).

Public datasets ship Python-2 pickles (StackGAN's ``*.pickle``, CSS's ``.npy``).
``pickle.load`` on such a file can run arbitrary code, so this module only
rebuilds plain containers, strings, numbers and numpy arrays; anything else
raises :class:`~t2i_tf.errors.UserError` naming the forbidden global.
"""

from __future__ import annotations

import _compat_pickle
import collections
import os
import pickle
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from t2i_tf.errors import UserError


def _numpy_core_attr(submodule: str, name: str) -> Any:
    core = getattr(np, "_core", None) or np.core
    return getattr(getattr(core, submodule), name)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("builtins", "bytearray"): bytearray,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _codecs_encode,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = _numpy_core_attr("multiarray", "_reconstruct")
        allowed[(f"{core}.multiarray", "scalar")] = _numpy_core_attr("multiarray", "scalar")
        allowed[(f"{core}.numeric", "_frombuffer")] = _numpy_core_attr("numeric", "_frombuffer")
    return allowed


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    """Stand-in for ``_codecs.encode`` (how protocol-2 pickles store bytes): encoding only."""
    return text.encode(encoding)


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """Python 2 ``copy_reg._reconstructor``, allowed only for numpy arrays and dtypes."""
    if cls is np.ndarray and base is object:
        return np.ndarray.__new__(cls, *state) if state else np.ndarray.__new__(cls, (0,))
    raise pickle.UnpicklingError(f"copy_reg._reconstructor of {cls!r} is not allowed")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only resolves an allow-list of harmless globals."""

    _ALLOWED = None

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (__builtin__.set, copy_reg, ...) -> Python 3 names; these
        # module names do not exist in Python 3, so mapping them is always safe.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if RestrictedUnpickler._ALLOWED is None:
            RestrictedUnpickler._ALLOWED = _allowed_globals()
        key = (module, name)
        if key in RestrictedUnpickler._ALLOWED:
            return RestrictedUnpickler._ALLOWED[key]
        if key in (("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")):
            return _copyreg_reconstructor
        raise pickle.UnpicklingError(
            f"global '{module}.{name}' is not allowed (only plain containers, strings, "
            "numbers and numpy arrays are read from downloaded files)"
        )


def load_pickle(source: str | os.PathLike | BinaryIO, encoding: str = "latin1") -> Any:
    """Read a (possibly Python 2) pickle through :class:`RestrictedUnpickler`.

    ``encoding='latin1'`` is what numpy recommends for Python 2 pickles: it maps
    py2 ``str`` to ``str`` and keeps numpy's raw array bytes intact.
    """
    if hasattr(source, "read"):
        return _load_stream(source, encoding, name=getattr(source, "name", "<stream>"))
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise UserError(f"pickle file not found: {path}")
    with open(path, "rb") as f:
        return _load_stream(f, encoding, name=path)


def _load_stream(stream: BinaryIO, encoding: str, name: str) -> Any:
    try:
        return RestrictedUnpickler(stream, encoding=encoding, fix_imports=True).load()
    except pickle.UnpicklingError as e:
        raise UserError(f"{name}: refused to unpickle: {e}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise UserError(f"{name}: not a readable pickle ({type(e).__name__}: {e})") from None


def load_npy(path: str | os.PathLike, encoding: str = "latin1") -> Any:
    """Read a ``.npy`` file; object arrays go through the restricted unpickler.

    A 0-d object array (how the CSS ``.npy`` stores its dict) is returned as
    the dict itself.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"npy file not found: {path}")
    with open(path, "rb") as f:
        try:
            version = npy_format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = npy_format.read_array_header_2_0(f)
        except ValueError as e:
            raise UserError(f"{path}: not a .npy file ({e})") from None
        if not dtype.hasobject:
            data = np.fromfile(f, dtype=dtype)
            order = "F" if fortran else "C"
            try:
                return data.reshape(shape, order=order)
            except ValueError:
                raise UserError(f"{path}: truncated .npy (expected shape {shape})") from None
        array = _load_stream(f, encoding, name=path)
    if isinstance(array, np.ndarray) and array.dtype == object and array.shape == ():
        return array.item()
    return array


def write_object_npy(path: str | os.PathLike, payload: bytes) -> None:
    """Write a 0-d object ``.npy`` whose body is ``payload``, a pickle of the object array."""
    with open(os.fspath(path), "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        f.write(payload)


def save_object_npy(path: str | os.PathLike, obj: Any) -> None:
    """Save ``obj`` (e.g. the CSS dict) as a 0-d object ``.npy``, the layout :func:`load_npy` reads back."""
    write_object_npy(path, pickle.dumps(np.array(obj, dtype=object), protocol=3))
