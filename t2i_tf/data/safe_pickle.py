"""Restricted unpickling of files users download (pickles and object ``.npy``).

Public datasets ship Python-2 pickles (StackGAN's ``*.pickle``, CSS's ``.npy``).
``pickle.load`` on such a file can run arbitrary code, so this module only
rebuilds plain containers, strings, numbers and numpy arrays; anything else
raises :class:`~t2i_tf.errors.UserError` naming the forbidden global.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
import struct
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from t2i_tf.errors import UserError


def _numpy_core_attr(submodule: str, name: str) -> Any:
    core = getattr(np, "_core", None) or np.core
    return getattr(getattr(core, submodule), name)


def _refuse(message: str) -> None:
    raise pickle.UnpicklingError(message)


def _count(shape: Any) -> int:
    """The number of elements of a pickled shape, checked to be a tuple of ints >= 0."""
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        _refuse(f"an array shape must be a tuple of ints >= 0, not {shape!r}")
    return int(np.prod(shape, dtype=object)) if shape else 1


def _plain(dtype: Any, what: str) -> np.dtype:
    """``dtype`` when it is a plain dtype (no fields, no sub-array, no objects)."""
    if not isinstance(dtype, np.dtype) or dtype.fields is not None or dtype.subdtype is not None or dtype.hasobject:
        _refuse(f"{what} needs a plain dtype (no fields, no sub-arrays, no objects), not {dtype!r}")
    return dtype


class _Builders:
    """The callables a pickle may name, each checking its arguments; sizes are bounded by the file's size."""

    ENCODINGS = ("latin1", "latin-1", "iso-8859-1", "utf-8", "utf8", "ascii")

    def __init__(self, size_limit: int):
        self.size_limit = size_limit
        self._reconstruct_np = _numpy_core_attr("multiarray", "_reconstruct")
        self._scalar_np = _numpy_core_attr("multiarray", "scalar")

    def _bounded(self, nbytes: int, what: str) -> None:
        if nbytes > self.size_limit:
            _refuse(f"{what} of {nbytes} bytes is larger than the whole file ({self.size_limit} bytes)")

    def dtype(self, obj: Any, align: Any = False, copy: Any = False) -> np.dtype:
        if not isinstance(obj, str) or align not in (0, 1) or copy not in (0, 1):  # (Python 2 pickles: 0 / 1)
            _refuse(f"a dtype must be given by a type code such as 'f8', not {obj!r}")
        return np.dtype(obj, align=bool(align), copy=bool(copy))  # copy=True (as numpy pickles it): BUILD then sets its state

    def reconstruct(self, subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
        if subtype is not np.ndarray:
            _refuse(f"only numpy.ndarray may be reconstructed, not {subtype!r}")
        self._bounded(_count(shape), "an array")
        return self._reconstruct_np(subtype, shape, typecode)

    def frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        dtype = _plain(dtype, "an array from a buffer")
        if not isinstance(buffer, (bytes, bytearray)) or order not in ("C", "F"):
            _refuse("an array from a buffer needs bytes and order 'C' or 'F'")
        if len(buffer) != _count(shape) * dtype.itemsize:
            _refuse(f"{len(buffer)} bytes do not fill an array of shape {shape} and dtype {dtype}")
        return np.frombuffer(bytes(buffer), dtype=dtype).reshape(shape, order=order).copy()

    def scalar(self, dtype: Any, obj: Any = None) -> Any:
        if isinstance(dtype, np.dtype) and dtype == np.dtype(object) and dtype.fields is None:
            return obj  # an object scalar is the object itself
        dtype = _plain(dtype, "a numpy scalar")
        if isinstance(obj, str):
            obj = obj.encode("latin1")  # Python 2 pickles store the scalar's bytes as str
        if not isinstance(obj, bytes) or len(obj) != dtype.itemsize:
            _refuse(f"a numpy scalar of dtype {dtype} needs {dtype.itemsize} bytes")
        return self._scalar_np(dtype, obj)

    def bytearray(self, source: Any = b"", *args: Any) -> bytearray:
        if isinstance(source, int) and not isinstance(source, bool):
            self._bounded(source, "a bytearray")
        elif not isinstance(source, (bytes, bytearray, str)):
            _refuse(f"a bytearray is made from bytes, not {type(source).__name__}")
        return bytearray(source, *args)

    def codecs_encode(self, text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
        """``_codecs.encode`` (how protocol-2 pickles store bytes), for the text encodings pickles use."""
        if not isinstance(text, str) or encoding not in self.ENCODINGS:
            _refuse(f"_codecs.encode is read for str and {', '.join(self.ENCODINGS)} only, not {encoding!r}")
        return text.encode(encoding)

    def copyreg_reconstructor(self, cls: Any, base: Any, state: Any) -> Any:
        """Python 2 ``copy_reg._reconstructor``, allowed only for numpy arrays."""
        if cls is np.ndarray and base is object:
            return self.reconstruct(np.ndarray, tuple(state[0]) if state else (0,), b"b")
        _refuse(f"copy_reg._reconstructor of {cls!r} is not allowed")


class RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that resolves an allow-list of harmless callables, each checking its arguments, and lets
    BUILD set the state of numpy arrays and dtypes only when that state is plain (a dtype's state can claim
    fields holding objects without the flag that says so, and an array's raw bytes would then be read as
    object pointers). The pure-Python unpickler, so BUILD can be checked."""

    def __init__(self, file: BinaryIO, encoding: str, size_limit: int):
        super().__init__(file, encoding=encoding, fix_imports=True)
        b = _Builders(size_limit)
        self.size_limit = size_limit
        self.allowed: dict[tuple[str, str], Any] = {
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("builtins", "complex"): complex,
            ("builtins", "bytearray"): b.bytearray,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("_codecs", "encode"): b.codecs_encode,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): b.dtype,
            ("copy_reg", "_reconstructor"): b.copyreg_reconstructor,
            ("copyreg", "_reconstructor"): b.copyreg_reconstructor,
        }
        for core in ("numpy.core", "numpy._core"):
            self.allowed[(f"{core}.multiarray", "_reconstruct")] = b.reconstruct
            self.allowed[(f"{core}.multiarray", "scalar")] = b.scalar
            self.allowed[(f"{core}.numeric", "_frombuffer")] = b.frombuffer

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (__builtin__.set, copy_reg, ...) -> Python 3 names; these
        # module names do not exist in Python 3, so mapping them is always safe.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        raise pickle.UnpicklingError(
            f"global '{module}.{name}' is not allowed (only plain containers, strings, "
            "numbers and numpy arrays are read from downloaded files)"
        )

    def load_build(self) -> None:
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.dtype):
            self._check_dtype_state(inst, state)
        elif isinstance(inst, np.ndarray):
            self._check_array_state(state)
        else:
            _refuse(f"setting the state of a {type(inst).__name__} is not allowed")
        super().load_build()

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build

    @staticmethod
    def _check_dtype_state(dtype: np.dtype, state: Any) -> None:
        """A dtype's pickled state must describe the plain dtype it was made as: no sub-array, names, fields or
        metadata, the same flags and item size."""
        if not isinstance(state, tuple) or len(state) not in (8, 9):
            _refuse("not a dtype state")
        _, _, subarray, names, fields, elsize, _, flags = state[:8]
        metadata = state[8] if len(state) == 9 else None
        if subarray is not None or names is not None or fields is not None or metadata is not None:
            _refuse("a dtype with fields, sub-arrays or metadata is not read from downloaded files")
        if flags != dtype.flags or elsize not in (-1, dtype.itemsize):
            _refuse(f"the dtype state does not match dtype {dtype} (flags {flags!r}, item size {elsize!r})")

    def _check_array_state(self, state: Any) -> None:
        """An array's state: a plain dtype with exactly its bytes, or an object dtype with a list of its items."""
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            _refuse("not an array state")
        shape, dtype, _, raw = state[-4:]
        n = _count(shape)
        if isinstance(dtype, np.dtype) and dtype == np.dtype(object) and dtype.fields is None:
            if not isinstance(raw, list) or len(raw) != n:
                _refuse(f"an object array of shape {shape} needs a list of {n} items")
            return
        dtype = _plain(dtype, "an array")
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != n * dtype.itemsize:
            _refuse(f"an array of shape {shape} and dtype {dtype} needs {n * dtype.itemsize} bytes")
        if len(raw) > self.size_limit:
            _refuse("an array larger than the file")


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


def _remaining_size(stream: BinaryIO) -> int:
    """Bytes left in ``stream`` (what bounds every array and buffer a pickle may ask for)."""
    here = stream.tell()
    end = stream.seek(0, os.SEEK_END)
    stream.seek(here)
    return max(end - here, 0)


def _load_stream(stream: BinaryIO, encoding: str, name: str) -> Any:
    if not (hasattr(stream, "seek") and hasattr(stream, "tell")):
        stream = io.BytesIO(stream.read())
    try:
        return RestrictedUnpickler(stream, encoding=encoding, size_limit=_remaining_size(stream)).load()
    except pickle.UnpicklingError as e:
        raise UserError(f"{name}: not a valid pickle: refused to unpickle: {e}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, LookupError, MemoryError,
            OverflowError, RecursionError, struct.error) as e:
        raise UserError(f"{name}: not a valid pickle ({type(e).__name__}: {e})") from None


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
