"""StackGAN's per-split pickles: file lists, class ids and char-CNN-RNN text embeddings.

StackGAN (hanzhanggit/StackGAN, StackGAN-Pytorch) ships, for birds and flowers, one folder per split
(``train/``, ``test/``) holding Python 2 pickles:

- ``filenames.pickle``: list of image keys, e.g. ``'002.Laysan_Albatross/Laysan_Albatross_0002_1027'``
  (birds) or ``'jpg/image_06734'`` (flowers);
- ``class_info.pickle``: list of the 1-based class number of each key;
- ``char-CNN-RNN-embeddings.pickle``: ``[N, 10, 1024]`` float32 (an array or a list of ``[10, 1024]``
  arrays), row ``i`` belonging to ``filenames[i]``.

They are read with ``encoding='latin1'`` through the restricted unpickler (never ``pickle.load``).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from t2i_tf.data.safe_pickle import load_pickle
from t2i_tf.errors import UserError

FILENAMES_FILE = "filenames.pickle"
CLASS_INFO_FILE = "class_info.pickle"
EMBEDDINGS_FILE = "char-CNN-RNN-embeddings.pickle"
SPLITS = ("train", "test")


def as_str(value: Any) -> str:
    """A str from a py3 str, py2 byte string or numpy scalar."""
    if isinstance(value, (bytes, bytearray, np.bytes_)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value).decode("latin1")
    return str(value)


def load_filenames(path: str) -> list[str]:
    """The image keys of a ``filenames.pickle`` as str."""
    data = load_pickle(path)
    if isinstance(data, np.ndarray):
        data = data.tolist()
    if not isinstance(data, (list, tuple)):
        raise UserError(f"{path}: expected a list of image names, got {type(data).__name__}")
    return [as_str(v) for v in data]


def load_class_info(path: str, expected: int | None = None) -> list[int]:
    """The class numbers of a ``class_info.pickle`` (one per filename) as ints."""
    data = load_pickle(path)
    try:
        ids = [int(v) for v in np.asarray(data).reshape(-1)]
    except (TypeError, ValueError):
        raise UserError(f"{path}: expected a list of integer class ids, got {type(data).__name__}") from None
    if expected is not None and len(ids) != expected:
        raise UserError(f"{path}: has {len(ids)} class ids but {FILENAMES_FILE} next to it has {expected} names")
    return ids


def load_embeddings(path: str) -> np.ndarray:
    """A ``char-CNN-RNN-embeddings.pickle`` as float32 ``[N, num_captions, dim]``."""
    data = load_pickle(path)
    try:
        if isinstance(data, np.ndarray) and data.dtype != object:
            array = data.astype(np.float32, copy=False)
        else:
            array = np.stack([np.asarray(e, dtype=np.float32) for e in data])
    except (TypeError, ValueError) as e:
        raise UserError(f"{path}: expected an [N, 10, 1024] float array or a list of [10, 1024] arrays ({e})") from None
    if array.ndim == 2:
        array = array[:, None, :]
    if array.ndim != 3:
        raise UserError(f"{path}: expected embeddings of shape [N, num_captions, dim], got {list(array.shape)}")
    return array


def split_dirs(root: str) -> dict[str, str]:
    """``{split: folder}`` for the StackGAN split folders under ``root`` (``root/train``, ``root/test``).

    ``root`` itself counts when it holds a ``filenames.pickle`` (its folder name is the split).
    """
    found: dict[str, str] = {}
    if not root or not os.path.isdir(root):
        return found
    if os.path.isfile(os.path.join(root, FILENAMES_FILE)):
        found[os.path.basename(os.path.normpath(root))] = root
    for split in SPLITS:
        d = os.path.join(root, split)
        if os.path.isfile(os.path.join(d, FILENAMES_FILE)):
            found[split] = d
    return found


def read_split_lists(root: str, key: Callable[[str], str] = lambda n: n) -> tuple[dict[str, str], dict[str, int]]:
    """StackGAN split assignment under ``root``: ``({key(name): split}, {key(name): class_id})``.

    Class ids come from ``class_info.pickle`` when present next to ``filenames.pickle``.
    """
    split_of: dict[str, str] = {}
    class_of: dict[str, int] = {}
    for split, d in split_dirs(root).items():
        names = load_filenames(os.path.join(d, FILENAMES_FILE))
        info_path = os.path.join(d, CLASS_INFO_FILE)
        ids = load_class_info(info_path, len(names)) if os.path.isfile(info_path) else None
        for i, name in enumerate(names):
            k = key(name)
            split_of[k] = split
            if ids is not None:
                class_of[k] = ids[i]
    return split_of, class_of


class EmbeddingLookup:
    """Finds each image's char-CNN-RNN embeddings by name in StackGAN's split pickles.

    Only the (small) file lists are indexed up front; an embeddings file is loaded the first time
    one of its names is asked for, and :meth:`release` frees the loaded arrays (the converters call
    it after each split, so memory holds one split's embeddings when the splits agree).
    """

    def __init__(self, root: str, key: Callable[[str], str] = lambda n: n, filename: str = EMBEDDINGS_FILE):
        self.root = root
        self.key = key
        self._index: dict[str, tuple[str, int]] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._sizes: dict[str, int] = {}
        self.files: list[str] = []
        dirs = split_dirs(root)
        if not dirs and os.path.isfile(os.path.join(root, filename)):
            raise UserError(f"{root} has {filename} but no {FILENAMES_FILE} to say which image each row belongs to")
        for _, d in sorted(dirs.items()):
            path = os.path.join(d, filename)
            if not os.path.isfile(path):
                continue
            names = load_filenames(os.path.join(d, FILENAMES_FILE))
            self.files.append(path)
            self._sizes[path] = len(names)
            for i, name in enumerate(names):
                self._index[key(name)] = (path, i)
        if not self.files:
            raise UserError(f"no StackGAN embeddings found under {root}: expected "
                            f"{{train,test}}/{filename} next to {{train,test}}/{FILENAMES_FILE}")

    def _array(self, path: str) -> np.ndarray:
        if path not in self._arrays:
            array = load_embeddings(path)
            if array.shape[0] != self._sizes[path]:
                raise UserError(f"{path}: has {array.shape[0]} rows but {FILENAMES_FILE} next to it lists "
                                f"{self._sizes[path]} names")
            self._arrays[path] = array
        return self._arrays[path]

    def get(self, name: str) -> np.ndarray | None:
        """The ``[num_captions, dim]`` embeddings of image ``name``, or None if it has none."""
        hit = self._index.get(self.key(name))
        if hit is None:
            return None
        path, row = hit
        return np.array(self._array(path)[row])

    def __call__(self, item: Any, split: str) -> np.ndarray | None:
        """The converters' embedding hook: looks ``item.name`` up (the split does not matter)."""
        return self.get(item.name)

    def release(self) -> None:
        """Free the loaded embedding arrays."""
        self._arrays.clear()

    def describe(self) -> dict[str, Any]:
        return {"root": os.path.abspath(self.root), "files": [os.path.abspath(f) for f in self.files]}
