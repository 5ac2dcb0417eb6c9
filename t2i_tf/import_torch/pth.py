"""Read ``.pth`` files written by ``torch.save`` without PyTorch and without running code from the file.

Both layouts torch writes are read: the zip archive (torch >= 1.6: ``<any>/data.pkl`` + ``<any>/data/<key>``)
and the legacy stream (``_use_new_zipfile_serialization=False`` and torch 0.x, Python 2 or 3 pickles: magic
number, protocol, system info, the object pickle, the storage keys, then each storage). The pickle is read by
a restricted unpickler: only tensor rebuilders, storage types, dtypes, ``collections.OrderedDict`` and
``argparse.Namespace`` (rebuilt as a plain dict) may be named; anything else (a whole pickled model,
``os.system``, numpy, ...) raises :class:`~t2i_tf.errors.UserError` naming the global. Tensors come back as
C-contiguous numpy arrays of the stored dtype, except bfloat16, which is widened (exactly) to float32.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
import struct
import sys
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from t2i_tf.errors import UserError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_MAX_DEPTH = 100  # nesting of containers in a checkpoint; real ones are < 10 deep
_OUTPUT_FACTOR = 4  # all tensors together may hold at most this many times the file's bytes (shared storages)

# torch dtype name -> little-endian numpy dtype of its stored elements (bfloat16 / bool converted afterwards)
_DTYPES = {
    "float32": "<f4", "float64": "<f8", "float16": "<f2", "bfloat16": "<u2",
    "int64": "<i8", "int32": "<i4", "int16": "<i2", "int8": "i1", "uint8": "u1", "bool": "u1",
    "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "complex64": "<c8", "complex128": "<c16",
}
_DTYPE_ALIASES = {
    "float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
    "short": "int16", "cfloat": "complex64", "cdouble": "complex128",
}
_STORAGE_TYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "UntypedStorage": "uint8",
}
_STORAGE_MODULES = ("torch", "torch.cuda", "torch.storage")
_STATE_DICT_KEYS = ("model_state_dict", "state_dict")


class _Refused(pickle.UnpicklingError):
    """The pickle names something that is not allowed in a plain state dict / checkpoint."""


class _Corrupt(Exception):
    """The file does not have the structure torch.save writes."""


@dataclass(eq=False)
class _StorageType:
    """A storage class named by the pickle (``torch.FloatStorage``, ``torch.cuda.HalfStorage``, ...)."""

    name: str
    dtype: str


@dataclass(eq=False)
class _DType:
    """A ``torch.<dtype>`` named by the pickle (``_rebuild_tensor_v3``, or a plain value)."""

    name: str


@dataclass(eq=False)
class _Storage:
    """A storage the pickle refers to: ``nbytes`` bytes at ``byte_offset`` of the record ``key``."""

    key: str
    dtype: str
    nbytes: int
    byte_offset: int = 0


@dataclass(eq=False)
class _Tensor:
    """A tensor to be materialised once its storage's bytes are read (sizes and strides in elements)."""

    storage: _Storage
    dtype: str
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class _Namespace(dict):
    """``argparse.Namespace`` (e.g. TIRG's ``opt``) rebuilt as a dict of its attributes."""


def _short(obj: Any) -> str:
    """A short, one-line description of a pickled value for messages (never a deep or huge repr)."""
    if isinstance(obj, (int, float, bool, type(None))):
        text = repr(obj)
    elif isinstance(obj, (str, bytes)):
        text = repr(obj[:40])
    else:
        text = type(obj).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _dims(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(_is_int(d) and d >= 0 for d in value):
        raise _Corrupt(f"a tensor {what} must be a tuple of ints >= 0, not {_short(value)}")
    if len(value) > 64:
        raise _Corrupt(f"a tensor with {len(value)} dimensions")
    return tuple(value)


class _Unpickler(pickle._Unpickler):
    """The pure-Python unpickler (so BUILD can be checked) with an allow-list of globals, each a checking
    builder; storages become placeholders whose bytes are read after the pickle."""

    def __init__(self, file: Any, size_limit: int, allow_globals: bool = True):
        super().__init__(file, encoding="utf-8")  # what torch.load uses for Python 2 pickles
        self.size_limit = size_limit
        self.allow_globals = allow_globals
        self.storages: dict[str, _Storage] = {}
        self.tensors: list[_Tensor] = []
        self.tensor_bytes = 0
        rebuilders = {
            "_rebuild_tensor": self._rebuild_tensor,
            "_rebuild_tensor_v2": self._rebuild_tensor_v2,
            "_rebuild_tensor_v3": self._rebuild_tensor_v3,
            "_rebuild_parameter": self._rebuild_parameter,
            "_rebuild_parameter_with_state": self._rebuild_parameter,
        }
        self.allowed: dict[tuple[str, str], Any] = {("torch._utils", k): v for k, v in rebuilders.items()}
        self.allowed.update({
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("argparse", "Namespace"): _Namespace,
            ("copyreg", "_reconstructor"): self._reconstructor,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("builtins", "complex"): complex,
            ("_codecs", "encode"): self._codecs_encode,
            ("torch", "Size"): self._size,
            ("torch", "device"): self._device,
            ("torch.nn.parameter", "Parameter"): self._parameter,
        })

    # --- globals -------------------------------------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names (copy_reg, __builtin__)
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if self.allow_globals:
            if (module, name) in self.allowed:
                return self.allowed[(module, name)]
            if module in _STORAGE_MODULES and name.endswith("Storage"):
                if name not in _STORAGE_TYPES:
                    raise _Corrupt(f"unsupported tensor type {module}.{name} (supported: "
                                   f"{', '.join(sorted(_DTYPES))})")
                return _StorageType(f"{module}.{name}", _STORAGE_TYPES[name])
            if module == "torch" and (name in _DTYPES or name in _DTYPE_ALIASES):
                return _DType(_DTYPE_ALIASES.get(name, name))
            if module == "torch" and name.startswith(("float8", "float4", "qint", "quint", "complex32",
                                                      "chalf", "bits", "uint", "int")):
                raise _Corrupt(f"unsupported tensor dtype torch.{name} (supported: {', '.join(sorted(_DTYPES))})")
        raise _Refused(_forbidden(module, name))

    # --- persistent ids: ('storage', storage_type, key, location, numel[, view_metadata]) ------------------
    def persistent_load(self, pid: Any) -> _Storage:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            kind = pid[0] if isinstance(pid, tuple) and pid else pid
            if kind == "module":
                raise _Refused("it holds the source of a pickled nn.Module class" + _MODEL_HINT)
            raise _Corrupt(f"unknown persistent id {_short(kind)}")
        if len(pid) not in (5, 6):  # the legacy layout adds view metadata
            raise _Corrupt(f"a storage reference has {len(pid)} fields")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not _is_int(numel) or numel < 0:
            raise _Corrupt("malformed storage reference")
        nbytes = numel * np.dtype(_DTYPES[storage_type.dtype]).itemsize
        if nbytes > self.size_limit:
            raise _Corrupt(f"storage {key!r} of {nbytes} bytes is larger than the whole file")
        root = self.storages.setdefault(key, _Storage(key, storage_type.dtype, nbytes))
        if root.dtype != storage_type.dtype or root.nbytes != nbytes:
            raise _Corrupt(f"storage {key!r} is referenced with two different types or sizes")
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return root
        if (not isinstance(view, tuple) or len(view) != 3 or not all(_is_int(v) and v >= 0 for v in view[1:])):
            raise _Corrupt("malformed storage view")
        itemsize = np.dtype(_DTYPES[root.dtype]).itemsize
        _, offset, view_numel = view
        if (offset + view_numel) * itemsize > root.nbytes:
            raise _Corrupt(f"a view of storage {key!r} goes past its end")
        return _Storage(key, root.dtype, view_numel * itemsize, offset * itemsize)

    # --- builders ------------------------------------------------------------------------------------------
    def _rebuild(self, storage: Any, offset: Any, size: Any, stride: Any, dtype: str | None = None) -> _Tensor:
        if not isinstance(storage, _Storage):
            raise _Corrupt(f"a tensor needs a storage, not {_short(storage)}")
        dtype = dtype or storage.dtype
        size, stride = _dims(size, "size"), _dims(stride, "stride")
        if len(size) != len(stride) or not _is_int(offset) or offset < 0:
            raise _Corrupt(f"a tensor of size {size} has stride {stride} and offset {_short(offset)}")
        itemsize = np.dtype(_DTYPES[dtype]).itemsize
        numel = 1
        for d in size:
            numel *= d
        if numel:
            extent = offset + sum((d - 1) * s for d, s in zip(size, stride)) + 1
            if extent * itemsize > storage.nbytes:
                raise _Corrupt(f"a tensor of size {list(size)} needs {extent * itemsize} bytes of storage "
                               f"{storage.key!r}, which has only {storage.nbytes}")
        nbytes = numel * itemsize
        self.tensor_bytes += nbytes
        if nbytes > self.size_limit or self.tensor_bytes > _OUTPUT_FACTOR * self.size_limit + (1 << 20):
            raise _Corrupt(f"tensors of {self.tensor_bytes} bytes in all, too large for a "
                           f"{self.size_limit}-byte file")
        tensor = _Tensor(storage, dtype, offset, size, stride)
        self.tensors.append(tensor)
        return tensor

    def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any) -> _Tensor:
        return self._rebuild(storage, offset, size, stride)

    def _rebuild_tensor_v2(self, storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                           backward_hooks: Any = None, metadata: Any = None) -> _Tensor:
        return self._rebuild(storage, offset, size, stride)

    def _rebuild_tensor_v3(self, storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any,
                           backward_hooks: Any, dtype: Any, metadata: Any = None) -> _Tensor:
        if not isinstance(dtype, _DType):
            raise _Corrupt(f"_rebuild_tensor_v3 needs a torch dtype, not {_short(dtype)}")
        return self._rebuild(storage, offset, size, stride, dtype.name)

    @staticmethod
    def _rebuild_parameter(data: Any, requires_grad: Any = True, backward_hooks: Any = None,
                           state: Any = None) -> _Tensor:
        if not isinstance(data, _Tensor):
            raise _Corrupt(f"a parameter needs a tensor, not {_short(data)}")
        return data

    def _parameter(self, data: Any = None, requires_grad: Any = True) -> _Tensor:
        return self._rebuild_parameter(data)

    @staticmethod
    def _size(dims: Any = ()) -> tuple[int, ...]:
        return _dims(dims, "size")

    @staticmethod
    def _device(kind: Any, index: Any = None) -> str:
        if not isinstance(kind, str) or not (index is None or _is_int(index)):
            raise _Corrupt("malformed torch.device")
        return kind if index is None else f"{kind}:{index}"

    @staticmethod
    def _reconstructor(cls: Any, base: Any, state: Any) -> _Namespace:
        """``copyreg._reconstructor`` (protocol 0/1 pickles of objects), allowed for Namespace only."""
        if cls is _Namespace and base is object and state is None:
            return _Namespace()
        raise _Refused("copyreg._reconstructor is allowed for argparse.Namespace only")

    def _codecs_encode(self, text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
        """How protocol-2 pickles written by Python 3 store ``bytes``."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
            raise _Refused(f"_codecs.encode is read for str and text encodings only, not {_short(encoding)}")
        return text.encode(encoding)

    # --- BUILD: only an OrderedDict's attributes (a state dict's _metadata, dropped) and a Namespace's --------
    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is collections.OrderedDict:
            if not isinstance(state, (dict, tuple, type(None))):
                raise _Corrupt("malformed OrderedDict state")
            return
        if type(inst) is _Namespace:
            if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
                state = state[0]
            if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
                raise _Corrupt("malformed argparse.Namespace state")
            inst.update(state)
            return
        raise _Refused(f"setting the state of a {type(inst).__name__} is not allowed")

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build


_MODEL_HINT = ("; if it is a whole model saved with torch.save(model), load it in PyTorch and save "
               "model.state_dict() instead")


def _forbidden(module: str, name: str) -> str:
    message = f"it names the global '{module}.{name}', which is not allowed (only tensors and plain containers)"
    top = module.split(".")[0]
    if top not in sys.stdlib_module_names and top != "numpy":  # a class of torch or of the user's code
        message += _MODEL_HINT
    return message


class _Bounded:
    """A file reader that never asks for more than the bytes left before ``end`` (a pickle can claim a
    length of 2**63; buffered readers would allocate it before reading)."""

    def __init__(self, f: BinaryIO, end: int):
        self.f, self.end, self.pos = f, end, f.tell()

    def read(self, n: int = -1) -> bytes:
        left = self.end - self.pos
        data = self.f.read(left if n is None or n < 0 else min(n, left))
        self.pos += len(data)
        return data

    def readline(self) -> bytes:
        data = self.f.readline(self.end - self.pos)
        self.pos += len(data)
        return data

    def read_exactly(self, n: int, what: str) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise _Corrupt(f"truncated: {what} needs {n} bytes, only {len(data)} left")
        return data


# --- materialising tensors -----------------------------------------------------------------------------------
def _materialise(t: _Tensor, data: bytes, big_endian: bool) -> np.ndarray:
    dt = np.dtype(_DTYPES[t.dtype])
    if big_endian:
        dt = dt.newbyteorder(">")
    if 0 in t.size:
        out = np.zeros(t.size, dtype=dt.newbyteorder("="))
    else:
        base = np.frombuffer(data, dtype=dt, count=t.storage.nbytes // dt.itemsize, offset=t.storage.byte_offset)
        view = np.lib.stride_tricks.as_strided(base[t.offset:], shape=t.size,
                                               strides=[s * dt.itemsize for s in t.stride], writeable=False)
        out = np.array(view, dtype=dt.newbyteorder("="), order="C")
    if t.dtype == "bfloat16":  # the high half of a float32: widening is exact
        out = (out.astype(np.uint32) << 16).view(np.float32)
    elif t.dtype == "bool":
        out = out != 0
    return out


def _materialise_storage(up: _Unpickler, key: str, data: bytes, big_endian: bool,
                         by_storage: dict[str, list[_Tensor]], arrays: dict[int, np.ndarray]) -> None:
    root = up.storages[key]
    if len(data) < root.nbytes:
        raise _Corrupt(f"storage {key!r} holds {len(data)} bytes, the pickle says {root.nbytes}")
    for t in by_storage.pop(key, []):
        arrays[id(t)] = _materialise(t, data, big_endian)


def _group(tensors: list[_Tensor]) -> dict[str, list[_Tensor]]:
    groups: dict[str, list[_Tensor]] = {}
    for t in tensors:
        groups.setdefault(t.storage.key, []).append(t)
    return groups


# --- the two layouts -----------------------------------------------------------------------------------------
def _load_zip(path: str, size: int) -> tuple[Any, dict[int, np.ndarray]]:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkls = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if not pkls:
            if any(n.endswith(("/constants.pkl", "/code/")) or "/code/" in n for n in names):
                raise _Refused("it is a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
            raise _Corrupt("a zip archive without <folder>/data.pkl, not a torch.save checkpoint")
        if len(pkls) > 1:
            raise _Corrupt(f"a zip archive with {len(pkls)} data.pkl records")
        prefix = pkls[0][: -len("data.pkl")]

        def read(name: str) -> bytes:
            try:
                info = zf.getinfo(name)
            except KeyError:
                raise _Corrupt(f"the zip archive has no record {name!r}") from None
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > size:
                raise _Corrupt(f"record {name!r} is compressed or larger than the file (torch.save stores "
                               "records uncompressed)")
            return zf.read(info)

        big_endian = False
        if prefix + "byteorder" in names:
            order = read(prefix + "byteorder")
            if order not in (b"little", b"big"):
                raise _Corrupt(f"unknown byte order {_short(order)}")
            big_endian = order == b"big"
        up = _Unpickler(io.BytesIO(read(prefix + "data.pkl")), size_limit=size)
        obj = up.load()
        by_storage, arrays = _group(up.tensors), {}
        for key in list(by_storage):
            _materialise_storage(up, key, read(f"{prefix}data/{key}"), big_endian, by_storage, arrays)
        return obj, arrays


def _small_pickle(reader: _Bounded, size: int, what: str) -> Any:
    try:
        return _Unpickler(reader, size_limit=size, allow_globals=False).load()
    except _Refused as e:
        raise _Corrupt(f"{what}: {e}") from None


def _load_legacy(path: str, size: int) -> tuple[Any, dict[int, np.ndarray]]:
    with open(path, "rb") as f:
        head = f.read(512)
        if len(head) > 262 and head[257:262] == b"ustar":
            raise _Corrupt("a tar checkpoint from torch < 0.1.10, which is not supported; re-save it with a "
                           "newer torch")
        if not head.startswith(b"\x80"):
            raise _Corrupt("neither a zip archive nor a legacy torch.save pickle")
        f.seek(0)
        r = _Bounded(f, size)
        try:
            magic = _small_pickle(r, size, "magic number")
        except (_Corrupt, pickle.UnpicklingError, EOFError, ValueError, KeyError, struct.error):
            raise _Corrupt("neither a zip archive nor a legacy torch.save pickle") from None
        if magic != _LEGACY_MAGIC:
            raise _Corrupt("a pickle, but not one written by torch.save (no PyTorch magic number)")
        protocol = _small_pickle(r, size, "protocol version")
        if protocol != _LEGACY_PROTOCOL:
            raise _Corrupt(f"unsupported torch.save protocol version {_short(protocol)}")
        sys_info = _small_pickle(r, size, "system info")
        if not isinstance(sys_info, dict):
            raise _Corrupt("malformed system info")
        big_endian = sys_info.get("little_endian", True) is False
        up = _Unpickler(r, size_limit=size)
        obj = up.load()
        keys = _small_pickle(r, size, "storage keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
            raise _Corrupt("malformed list of storage keys")
        by_storage, arrays = _group(up.tensors), {}
        for key in keys:
            if key not in up.storages:
                raise _Corrupt(f"storage {key!r} is listed but never referenced")
            itemsize = np.dtype(_DTYPES[up.storages[key].dtype]).itemsize
            (numel,) = struct.unpack(">q" if big_endian else "<q", r.read_exactly(8, f"storage {key!r}"))
            if numel < 0 or numel * itemsize != up.storages[key].nbytes:
                raise _Corrupt(f"storage {key!r} has {numel} elements, the pickle says "
                               f"{up.storages[key].nbytes // itemsize}")
            data = r.read_exactly(numel * itemsize, f"storage {key!r}")
            _materialise_storage(up, key, data, big_endian, by_storage, arrays)
        if by_storage:
            raise _Corrupt(f"storage {next(iter(by_storage))!r} is referenced but not in the file")
        return obj, arrays


# --- plain output --------------------------------------------------------------------------------------------
def _plain(obj: Any, arrays: dict[int, np.ndarray]) -> Any:
    """Tensors -> arrays, OrderedDict / Namespace -> dict, dtypes -> names; shared parts converted once."""
    done: dict[int, Any] = {}
    busy: set[int] = set()

    def convert(x: Any, depth: int) -> Any:
        if isinstance(x, (str, bytes, int, float, complex, type(None))):
            return x
        if id(x) in done:
            return done[id(x)]
        if isinstance(x, _Tensor):
            return arrays[id(x)]
        if isinstance(x, _DType):
            return f"torch.{x.name}"
        if depth > _MAX_DEPTH or id(x) in busy:
            raise _Corrupt(f"containers nested more than {_MAX_DEPTH} deep, or a cycle")
        busy.add(id(x))
        if isinstance(x, dict):
            out: Any = {convert(k, depth + 1): convert(v, depth + 1) for k, v in x.items()}
        elif isinstance(x, (list, tuple, set, frozenset)):
            out = type(x)(convert(v, depth + 1) for v in x)
        elif isinstance(x, bytearray):
            out = bytes(x)
        else:  # a storage placeholder or a storage type used as a value
            raise _Corrupt(f"a bare {type(x).__name__.lstrip('_')} outside a tensor")
        busy.discard(id(x))
        done[id(x)] = out
        return out

    return convert(obj, 0)


def load_checkpoint(path: str | os.PathLike) -> Any:
    """The object ``torch.save`` wrote to ``path``, with tensors as numpy arrays and OrderedDicts and
    ``argparse.Namespace`` as dicts; e.g. TIRG's ``{'it': int, 'opt': dict, 'model_state_dict': {...}}``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"PyTorch checkpoint not found: {path}")
    size = os.path.getsize(path)
    if size == 0:
        raise UserError(f"{path}: empty file, not a PyTorch checkpoint")
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
        obj, arrays = (_load_zip if is_zip else _load_legacy)(path, size)
        return _plain(obj, arrays)
    except _Refused as e:
        raise UserError(_one_line(f"{path}: not a plain PyTorch state dict or checkpoint: {e}")) from None
    except _Corrupt as e:
        raise UserError(_one_line(f"{path}: not a readable PyTorch checkpoint: {e}")) from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, LookupError, OverflowError, MemoryError, RecursionError, struct.error, OSError) as e:
        raise UserError(_one_line(f"{path}: corrupt or truncated PyTorch checkpoint ({type(e).__name__}: {e})")) \
            from None


def _one_line(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= 500 else message[:497] + "..."


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items())


def load_state_dict(path: str | os.PathLike, key: str | None = None) -> dict[str, np.ndarray]:
    """The parameter / buffer arrays by name from a ``.pth``: the file's top-level dict when it is a state
    dict, else its ``key`` entry (by default ``model_state_dict`` or ``state_dict``, whichever it has)."""
    obj = load_checkpoint(path)
    path = os.fspath(path)
    keys = ", ".join(repr(k) for k in list(obj)[:20]) if isinstance(obj, dict) else ""
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise UserError(f"{path}: has no entry {key!r} (top-level entries: {keys or 'none, not a dict'})")
        obj = obj[key]
    elif isinstance(obj, dict) and not _is_state_dict(obj):
        found = [k for k in _STATE_DICT_KEYS if k in obj]
        if not found:
            raise UserError(f"{path}: a checkpoint without 'model_state_dict' or 'state_dict' (top-level entries: "
                            f"{keys}); pass the key of the state dict")
        key, obj = found[0], obj[found[0]]
    if not _is_state_dict(obj):
        where = f"entry {key!r}" if key is not None else "the file"
        raise UserError(f"{path}: {where} is a {type(obj).__name__}, not a state dict of tensors by name")
    return dict(obj)
