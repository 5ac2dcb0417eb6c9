"""The hd5 files of aelnouby/Text-to-Image-Synthesis (birds.hdf5, flowers.hdf5) -> text-to-image TFRecords.

Layout (from its ``convert_{cub,flowers}_to_hd5_script.py``): top groups ``train``, ``valid``, ``test``;
one group per (image, caption) pair named ``<image name>_<k>`` holding the scalar datasets ``name``
(image name), ``img`` (the raw JPEG file as ``np.void``), ``embeddings`` (1024 float32 char-CNN-RNN
embedding of that caption), ``class`` (e.g. ``class_00001`` or ``001.Black_footed_Albatross``) and
``txt`` (the caption). Each group becomes one record with one caption and one embedding; splits keep
their names (``train``, ``valid``, ``test``). Class ids are the number in the class name. Images are
stored as in the file (no crop), shrunk to ``--max_side`` when larger. Requires h5py.

    python -m datasets.hd5 --hd5=FILE --out_dir=DIR [--max_side=304]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Iterator, Sequence

import numpy as np

from t2i_tf.datasets.t2i_common import (DEFAULT_EXAMPLES_PER_SHARD, DEFAULT_MAX_SIDE, EMPTY_CAPTIONS, MISSING_CAPTIONS,
                                 MISSING_EMBEDDINGS, MISSING_IMAGE, UNREADABLE_FILE, Item, T2IWriter, as_str,
                                 decode_caption_bytes, item_embeddings, leading_int, run_cli)
from t2i_tf.errors import UserError

HD5_SPLITS = ("train", "valid", "test")
MISSING_CLASS = "missing_class"
NOT_AN_EXAMPLE = "not_an_example"
_UNNUMBERED_CLASS_BASE = 1_000_000  # ids for class names without a number, by first appearance


def _h5py():
    try:
        import h5py  # noqa: PLC0415 -- optional dependency, only this converter needs it
    except ImportError:
        raise UserError("the hd5 converter needs h5py: pip install h5py") from None
    return h5py


def _scalar(dataset: Any) -> Any:
    return dataset[()]


def _image_bytes(value: Any) -> bytes:
    """Raw file bytes from an ``np.void`` scalar, a uint8 array or bytes."""
    if isinstance(value, np.void):
        return value.tobytes()
    if isinstance(value, np.ndarray):
        return value.tobytes()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError(f"img is a {type(value).__name__}")


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else b""
    return as_str(value)


class _ClassIds:
    """Class name -> id: the number in the name, else an id by first appearance."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self._unnumbered: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        cid = leading_int(name)
        if cid is None:
            cid = self._unnumbered.setdefault(name, _UNNUMBERED_CLASS_BASE + len(self._unnumbered))
        self.names.setdefault(cid, name)
        return cid


def _items(group: Any, split: str, has_embeddings: bool, class_ids: _ClassIds, h5py: Any) -> Iterator[Item]:
    for key in group:
        try:
            ex = group[key]
        except (KeyError, OSError, RuntimeError):
            yield Item(name=key, class_id=0, skip_reason=UNREADABLE_FILE)
            continue
        if not isinstance(ex, h5py.Group):
            yield Item(name=key, class_id=0, skip_reason=NOT_AN_EXAMPLE)
            continue
        try:
            name = _text(_scalar(ex["name"])) if "name" in ex else key
            if "class" not in ex:
                yield Item(name=name, class_id=0, skip_reason=MISSING_CLASS)
                continue
            class_id = class_ids(_text(_scalar(ex["class"])))
            if "img" not in ex:
                yield Item(name=name, class_id=class_id, skip_reason=MISSING_IMAGE)
                continue
            if "txt" not in ex:
                yield Item(name=name, class_id=class_id, skip_reason=MISSING_CAPTIONS)
                continue
            txt = _scalar(ex["txt"])
            if isinstance(txt, np.ndarray):
                txt = txt.reshape(-1)[0] if txt.size else b""
            captions = decode_caption_bytes(txt if isinstance(txt, bytes) else str(txt).encode("utf-8"))
            if not captions:
                yield Item(name=name, class_id=class_id, skip_reason=EMPTY_CAPTIONS)
                continue
            # One caption per record: several lines of one txt are one caption.
            caption = " ".join(captions)
            emb = None
            if has_embeddings:
                if "embeddings" not in ex:
                    yield Item(name=name, class_id=class_id, skip_reason=MISSING_EMBEDDINGS)
                    continue
                emb = np.asarray(ex["embeddings"][()], dtype=np.float32).reshape(1, -1)
            image = _image_bytes(_scalar(ex["img"]))
        except (KeyError, OSError, RuntimeError, TypeError, ValueError):
            yield Item(name=key, class_id=0, skip_reason=UNREADABLE_FILE)
            continue
        yield Item(name=name, class_id=class_id, image_bytes=image, captions=[caption], embeddings=emb)


def convert_hd5(hd5: str, out_dir: str, max_side: int = DEFAULT_MAX_SIDE,
                examples_per_shard: int = DEFAULT_EXAMPLES_PER_SHARD, vocab_min_count: int = 1) -> dict[str, Any]:
    """Convert an aelnouby Text-to-Image-Synthesis hd5 file to TFRecords in ``out_dir``; returns info."""
    h5py = _h5py()
    if not os.path.isfile(hd5):
        raise UserError(f"{hd5} not found: expected an hd5 file with train/valid/test groups "
                        "(aelnouby/Text-to-Image-Synthesis birds.hdf5 or flowers.hdf5)")
    try:
        f = h5py.File(hd5, "r")
    except OSError as e:
        raise UserError(f"{hd5}: not a readable HDF5 file ({e})") from None
    with f:
        splits = [s for s in HD5_SPLITS if s in f and isinstance(f[s], h5py.Group)]
        if not splits:
            raise UserError(f"{hd5}: no 'train', 'valid' or 'test' group (found {sorted(f.keys())[:10]}); expected "
                            "the aelnouby/Text-to-Image-Synthesis layout")
        has_embeddings = any(isinstance(g, h5py.Group) and "embeddings" in g
                             for s in splits for g in (f[s][k] for k in f[s]))
        writer = T2IWriter(out_dir, "hd5:" + os.path.splitext(os.path.basename(hd5))[0], max_side,
                           examples_per_shard, vocab_min_count)
        class_ids = _ClassIds()
        for s in splits:
            writer.write_split(s, _items(f[s], s, has_embeddings, class_ids, h5py),
                               item_embeddings if has_embeddings else None)
    writer.class_names.update(class_ids.names)
    return writer.finish("hd5 groups: " + ", ".join(splits), {"hd5": os.path.abspath(hd5)},
                         {"image_crop": None, "captions_note": "one caption (and embedding) per record, several "
                                                                "records per image (same name)"})


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints a UserError on one line and exits non-zero."""
    p = argparse.ArgumentParser(prog="python -m datasets.hd5", description=__doc__.split("\n\n")[0])
    p.add_argument("--hd5", required=True, help="birds.hdf5 / flowers.hdf5 of aelnouby/Text-to-Image-Synthesis")
    p.add_argument("--out_dir", required=True, help="where to write TFRecord shards and info.json")
    p.add_argument("--max_side", type=int, default=DEFAULT_MAX_SIDE, help="longest stored side (0: keep)")
    p.add_argument("--examples_per_shard", type=int, default=DEFAULT_EXAMPLES_PER_SHARD)
    p.add_argument("--vocab_min_count", type=int, default=1)
    a = p.parse_args(argv)
    return run_cli(lambda: convert_hd5(a.hd5, a.out_dir, a.max_side, a.examples_per_shard, a.vocab_min_count))


if __name__ == "__main__":
    sys.exit(main())
