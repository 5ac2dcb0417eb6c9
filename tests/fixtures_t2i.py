"""Tiny text-to-image datasets in their real published layouts, written by the tests.

- CUB-200-2011 (``CUB_200_2011/images.txt``, ``bounding_boxes.txt``, ``images/``) with captions in
  StackGAN's ``birds/text`` or Reed's ``text_c10`` layout, optional Reed class lists and StackGAN
  ``{train,test}/{filenames,class_info,char-CNN-RNN-embeddings}.pickle``;
- Oxford-102 Flowers (``jpg/``, ``text_c10/class_XXXXX/``) with the same optional split files;
- an aelnouby/Text-to-Image-Synthesis hd5 file.

The pickles are written as Python 2 wrote them (protocol 2, ``str`` as BINSTRING, numpy arrays
through ``_reconstruct`` with their raw bytes as a py2 byte string), so they can only be read with
``encoding='latin1'``.

Images are gradients: red = 6 * x, green = 8 * y (so a crop's position shows in its pixels) and a
constant blue per class (``class_blue``), so a class can be read back from any crop or flip.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
from typing import Any, Sequence

import numpy as np
from PIL import Image

CUB_CLASSES = ((1, "001.Black_footed_Albatross"), (2, "002.Laysan_Albatross"),
               (3, "003.Sooty_Albatross"), (4, "004.Groove_billed_Ani"))
DEFAULT_SPLIT_CLASSES = ((1, "001.Black_footed_Albatross"), (2, "002.Laysan_Albatross"),
                         (151, "151.Black_capped_Vireo"), (152, "152.Blue_headed_Vireo"))
CUB_SIZE = (40, 30)
CUB_BOX = (14.0, 11.0, 12.0, 8.0)  # -> StackGAN crop x [11, 29), y [6, 24)
CUB_EDGE_BOX = (30.0, 2.0, 10.0, 10.0)  # -> clipped crop x [28, 40), y [0, 14)
FLOWERS_SIZE = (50, 40)
EMBEDDING_DIM = 1024
NUM_CAPTIONS = 10


def class_blue(index: int) -> int:
    """The blue value of the ``index``-th class's images."""
    return 40 + 40 * index


def gradient_image(width: int, height: int, blue: int) -> np.ndarray:
    x = np.arange(width)[None, :].repeat(height, 0)
    y = np.arange(height)[:, None].repeat(width, 1)
    img = np.stack([np.minimum(6 * x, 255), np.minimum(8 * y, 255), np.full_like(x, blue)], axis=-1)
    return img.astype(np.uint8)


def encode(img: np.ndarray, fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    kwargs = {"quality": 100} if fmt == "JPEG" else {}
    Image.fromarray(img).save(out, format=fmt, **kwargs)
    return out.getvalue()


def captions_for(name: str, class_id: int, n: int = NUM_CAPTIONS) -> list[str]:
    """Caption j names its image and has the class's own word ``shade<class id>``."""
    return [f"caption {j} of {name}: a bird, shade{class_id} with small wings" for j in range(n)]


def embedding_value(class_id: int, index_in_class: int, caption: int) -> float:
    """The constant value of caption ``caption``'s fixture embedding (encodes the image)."""
    return 1000.0 * class_id + 10.0 * index_in_class + caption


def embeddings_for(class_id: int, index_in_class: int) -> np.ndarray:
    values = np.array([embedding_value(class_id, index_in_class, c) for c in range(NUM_CAPTIONS)], np.float32)
    return np.repeat(values[:, None], EMBEDDING_DIM, axis=1)


# ----------------------------------------------------------------------------------- Python 2 pickles


def _py2(obj: Any, out: bytearray) -> None:
    if obj is None:
        out += b"N"
    elif isinstance(obj, bool):
        out += b"\x88" if obj else b"\x89"
    elif isinstance(obj, (int, np.integer)):
        obj = int(obj)
        out += b"K" + bytes([obj]) if 0 <= obj < 256 else b"J" + struct.pack("<i", obj)
    elif isinstance(obj, str):  # a py2 str: bytes (here latin-1)
        _py2(obj.encode("latin1"), out)
    elif isinstance(obj, bytes):
        out += (b"U" + bytes([len(obj)]) if len(obj) < 256 else b"T" + struct.pack("<i", len(obj))) + obj
    elif isinstance(obj, tuple):
        out += b"("
        for v in obj:
            _py2(v, out)
        out += b"t"
    elif isinstance(obj, list):
        out += b"]"
        if obj:
            out += b"("
            for v in obj:
                _py2(v, out)
            out += b"e"
    elif isinstance(obj, np.ndarray):
        _py2_array(obj, out)
    else:
        raise TypeError(f"fixture pickler does not handle {type(obj).__name__}")


def _py2_array(array: np.ndarray, out: bytearray) -> None:
    """A numpy array as numpy under Python 2 pickled it (protocol 2)."""
    array = np.ascontiguousarray(array)
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    out += b"cnumpy.core.multiarray\n_reconstruct\n"
    out += b"cnumpy\nndarray\n"
    _py2((0,), out)
    _py2(b"b", out)
    out += b"\x87R"  # TUPLE3 (class, shape, typecode), REDUCE
    out += b"("  # state tuple
    _py2(1, out)
    _py2(tuple(array.shape), out)
    out += b"cnumpy\ndtype\n"
    _py2((dtype.str[1:].encode("ascii"), 0, 1), out)
    out += b"R"
    _py2((3, b"<" if dtype.itemsize > 1 else b"|", None, None, None, -1, -1, 0), out)
    out += b"b"  # BUILD the dtype
    _py2(False, out)
    _py2(array.astype(dtype, copy=False).tobytes(), out)
    out += b"t"
    out += b"b"  # BUILD the array


def py2_pickle(obj: Any) -> bytes:
    """``obj`` (lists/tuples of str, ints, numpy arrays) pickled as Python 2 would, protocol 2."""
    out = bytearray(b"\x80\x02")
    _py2(obj, out)
    out += b"."
    return bytes(out)


def write_py2_pickle(path: str, obj: Any) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(py2_pickle(obj))
    return path


def write_stackgan_split(split_dir: str, names: Sequence[str], class_ids: Sequence[int],
                         embeddings: Sequence[np.ndarray] | None, as_list: bool = False) -> None:
    """StackGAN's ``filenames.pickle``, ``class_info.pickle`` (+ ``char-CNN-RNN-embeddings.pickle``)."""
    write_py2_pickle(os.path.join(split_dir, "filenames.pickle"), list(names))
    write_py2_pickle(os.path.join(split_dir, "class_info.pickle"), [int(c) for c in class_ids])
    if embeddings is not None:
        data = [np.asarray(e, np.float32) for e in embeddings] if as_list else np.stack(embeddings).astype(np.float32)
        write_py2_pickle(os.path.join(split_dir, "char-CNN-RNN-embeddings.pickle"), data)


# ------------------------------------------------------------------------------------------------ CUB


@dataclasses.dataclass
class CubFixture:
    birds_dir: str  # StackGAN's "birds" folder: CUB_200_2011/, text/, train/, test/
    cub_dir: str
    text_dir: str
    names: dict[str, int]  # image name -> class id (every image listed in images.txt)
    index_in_class: dict[str, int]
    blue: dict[int, int]  # class id -> blue value of its images
    boxes: dict[str, tuple[float, float, float, float]]
    test_classes: tuple[int, ...]


def make_cub(root: str, classes: Sequence[tuple[int, str]] = CUB_CLASSES, per_class: int = 2,
             text_layout: str = "text", stackgan: bool = False, embeddings: bool = False, reed: bool = False,
             test_classes: Sequence[int] = (4,), corrupt: Sequence[str] = (), no_captions: Sequence[str] = (),
             empty_captions: Sequence[str] = (), no_image: Sequence[str] = (), embeddings_as_list: bool = False,
             drop_embedding: Sequence[str] = (), edge_box: Sequence[str] = ()) -> CubFixture:
    """Write a tiny CUB-200-2011 + captions (+ split files) under ``root/birds``.

    Image names are ``<class folder>/<Species>_<k>``; ``corrupt``/``no_captions``/... take such names.
    """
    birds = os.path.join(root, "birds")
    cub = os.path.join(birds, "CUB_200_2011")
    text = os.path.join(birds, text_layout)
    names: dict[str, int] = {}
    index: dict[str, int] = {}
    boxes: dict[str, tuple] = {}
    blue = {cid: class_blue(k) for k, (cid, _) in enumerate(classes)}
    images_lines, box_lines = [], []
    image_id = 0
    for cid, folder in classes:
        species = folder.split(".", 1)[1]
        for k in range(per_class):
            image_id += 1
            name = f"{folder}/{species}_{k:04d}_{100 + image_id}"
            names[name] = cid
            index[name] = k
            box = CUB_EDGE_BOX if name in edge_box else CUB_BOX
            boxes[name] = box
            images_lines.append(f"{image_id} {name}.jpg")
            box_lines.append(f"{image_id} " + " ".join(f"{v:.1f}" for v in box))
            path = os.path.join(cub, "images", name + ".jpg")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if name not in no_image:
                with open(path, "wb") as f:
                    data = encode(gradient_image(*CUB_SIZE, blue[cid]))
                    f.write(data[: len(data) // 3] if name in corrupt else data)
            cap = os.path.join(text, name + ".txt")
            os.makedirs(os.path.dirname(cap), exist_ok=True)
            if name not in no_captions:
                with open(cap, "w") as f:
                    f.write("\n\n" if name in empty_captions else "\n".join(captions_for(name, cid)) + "\n")
    with open(os.path.join(cub, "images.txt"), "w") as f:
        f.write("\n".join(images_lines) + "\n")
    with open(os.path.join(cub, "bounding_boxes.txt"), "w") as f:
        f.write("\n".join(box_lines) + "\n")
    if reed:
        with open(os.path.join(birds, "trainvalclasses.txt"), "w") as f:
            f.write("\n".join(folder for cid, folder in classes if cid not in test_classes) + "\n")
        with open(os.path.join(birds, "testclasses.txt"), "w") as f:
            f.write("\n".join(folder for cid, folder in classes if cid in test_classes) + "\n")
    if stackgan:
        for split in ("train", "test"):
            split_names = [n for n, c in names.items() if (c in test_classes) == (split == "test")]
            split_names.reverse()  # not images.txt order: embeddings must be matched by name
            kept = [n for n in split_names if n not in drop_embedding]
            embs = [embeddings_for(names[n], index[n]) for n in kept] if embeddings else None
            # images without embeddings are absent from the pickles' lists, as in an outdated download
            write_stackgan_split(os.path.join(birds, split), kept if embeddings else split_names,
                                 [names[n] for n in (kept if embeddings else split_names)], embs, embeddings_as_list)
    return CubFixture(birds, cub, text, names, index, blue, boxes, tuple(test_classes))


# -------------------------------------------------------------------------------------------- Flowers


@dataclasses.dataclass
class FlowersFixture:
    flowers_dir: str
    text_dir: str
    stackgan_dir: str | None
    names: dict[str, int]  # image_XXXXX -> class id
    index_in_class: dict[str, int]
    blue: dict[int, int]


def make_flowers(root: str, classes: Sequence[int] = (1, 2, 3, 4), per_class: int = 2,
                 test_classes: Sequence[int] = (4,), reed: bool = True, stackgan: bool = False,
                 embeddings: bool = False, no_captions: Sequence[str] = (), no_image: Sequence[str] = (),
                 corrupt: Sequence[str] = ()) -> FlowersFixture:
    """Write a tiny Oxford-102 (``jpg/``) with Reed's ``text_c10`` under ``root/flowers``."""
    flowers = os.path.join(root, "flowers")
    jpg = os.path.join(flowers, "jpg")
    text = os.path.join(flowers, "text_c10")
    os.makedirs(jpg, exist_ok=True)
    names: dict[str, int] = {}
    index: dict[str, int] = {}
    blue = {cid: class_blue(k) for k, cid in enumerate(classes)}
    n = 0
    for cid in classes:
        for k in range(per_class):
            n += 1
            name = f"image_{n:05d}"
            names[name] = cid
            index[name] = k
            if name not in no_image:
                data = encode(gradient_image(*FLOWERS_SIZE, blue[cid]))
                with open(os.path.join(jpg, name + ".jpg"), "wb") as f:
                    f.write(data[: len(data) // 3] if name in corrupt else data)
            cap_dir = os.path.join(text, f"class_{cid:05d}")
            os.makedirs(cap_dir, exist_ok=True)
            if name not in no_captions:
                with open(os.path.join(cap_dir, name + ".txt"), "w") as f:
                    f.write("\n".join(c.replace("bird", "flower") for c in captions_for(name, cid)) + "\n")
    if reed:
        with open(os.path.join(flowers, "trainvalclasses.txt"), "w") as f:
            f.write("\n".join(f"class_{c:05d}" for c in classes if c not in test_classes) + "\n")
        with open(os.path.join(flowers, "testclasses.txt"), "w") as f:
            f.write("\n".join(f"class_{c:05d}" for c in classes if c in test_classes) + "\n")
    stackgan_dir = None
    if stackgan:
        stackgan_dir = os.path.join(root, "stackgan_flowers")
        for split in ("train", "test"):
            split_names = sorted((nm for nm, c in names.items() if (c in test_classes) == (split == "test")),
                                 reverse=True)
            embs = [embeddings_for(names[nm], index[nm]) for nm in split_names] if embeddings else None
            write_stackgan_split(os.path.join(stackgan_dir, split), [f"jpg/{nm}" for nm in split_names],
                                 [names[nm] for nm in split_names], embs)
    return FlowersFixture(flowers, text, stackgan_dir, names, index, blue)


# ------------------------------------------------------------------------------------------------ hd5


@dataclasses.dataclass
class Hd5Fixture:
    path: str
    groups: dict[str, list[str]]  # split -> group names written
    class_of: dict[str, int]  # image name -> class id


def make_hd5(root: str, classes: Sequence[int] = (1, 2, 3), per_class: int = 2, captions_per_image: int = 2,
             splits: dict[str, Sequence[int]] | None = None, corrupt: Sequence[str] = (),
             no_txt: Sequence[str] = ()) -> Hd5Fixture:
    """An hd5 file in the aelnouby/Text-to-Image-Synthesis layout (groups ``<image>_<k>``)."""
    import h5py  # noqa: PLC0415

    splits = splits or {"train": (1, 2), "valid": (), "test": (3,)}
    path = os.path.join(root, "flowers.hdf5")
    os.makedirs(root, exist_ok=True)
    groups: dict[str, list[str]] = {s: [] for s in splits}
    class_of: dict[str, int] = {}
    blue = {cid: class_blue(k) for k, cid in enumerate(classes)}
    dt = h5py.special_dtype(vlen=str)
    n = 0
    with h5py.File(path, "w") as f:
        handles = {s: f.create_group(s) for s in splits}
        for cid in classes:
            split = next(s for s, cs in splits.items() if cid in cs)
            for k in range(per_class):
                n += 1
                name = f"image_{n:05d}"
                class_of[name] = cid
                img = encode(gradient_image(*FLOWERS_SIZE, blue[cid]))
                if name in corrupt:
                    img = img[: len(img) // 3]
                for c in range(captions_per_image):
                    key = f"{name}_{c}"
                    ex = handles[split].create_group(key)
                    ex.create_dataset("name", data=name)
                    ex.create_dataset("img", data=np.void(img))
                    value = embedding_value(cid, k, c)
                    ex.create_dataset("embeddings", data=np.full([EMBEDDING_DIM], value, np.float32))
                    ex.create_dataset("class", data=f"class_{cid:05d}")
                    if key not in no_txt:
                        ex.create_dataset("txt", data=f"hd5 caption {c} of {name}\n", dtype=dt)
                    groups[split].append(key)
    return Hd5Fixture(path, groups, class_of)


# ------------------------------------------------------------------------------------------ reading back


def read_records(out_dir: str, split: str) -> list[dict[str, Any]]:
    """Every example of ``{split}-*.tfrecord`` as a dict of python values."""
    import glob  # noqa: PLC0415

    import tensorflow as tf  # noqa: PLC0415

    rows = []
    for path in sorted(glob.glob(os.path.join(out_dir, f"{split}-*.tfrecord"))):
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            ex = tf.train.Example.FromString(raw).features.feature
            row = {"image": ex["image"].bytes_list.value[0], "name": ex["name"].bytes_list.value[0].decode(),
                   "class_id": ex["class_id"].int64_list.value[0],
                   "captions": [c.decode() for c in ex["captions"].bytes_list.value]}
            if "embeddings" in ex:
                row["embeddings"] = np.array(ex["embeddings"].float_list.value, np.float32)
            rows.append(row)
    return rows


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.float32)
