"""TFRecord shard writing/reading helpers and the per-dataset ``info.json``.

Converters stream examples into :class:`ShardedRecordWriter` (memory does not
grow with the dataset) and finish with :func:`write_info`; readers find shards
with :func:`shard_paths` and the counts/vocabulary with :func:`read_info`.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any, Iterable

import tensorflow as tf

from t2i_tf.errors import UserError
from t2i_tf.files import write_text_atomic

INFO_FILE = "info.json"


def bytes_feature(values: bytes | str | Iterable[bytes | str]) -> tf.train.Feature:
    """A BytesList feature from one value or a list; ``str`` is UTF-8 encoded."""
    if isinstance(values, (bytes, str)):
        values = [values]
    return tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[v.encode("utf-8") if isinstance(v, str) else v for v in values])
    )


def int64_feature(values: int | Iterable[int]) -> tf.train.Feature:
    """An Int64List feature from one int or a list."""
    if isinstance(values, (int,)) or hasattr(values, "__index__"):
        values = [values]
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def float_feature(values: float | Iterable[float]) -> tf.train.Feature:
    """A FloatList feature from one float or a list / flat array."""
    if isinstance(values, (float, int)):
        values = [values]
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def make_example(features: dict[str, tf.train.Feature]) -> bytes:
    """Serialise a feature dict to ``tf.train.Example`` bytes."""
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


class ShardedRecordWriter:
    """Writes serialized examples to ``{out_dir}/{name}-{shard:05d}.tfrecord``, rolling shards.

    Use as a context manager; :attr:`count` is the number of examples written.
    """

    def __init__(self, out_dir: str, name: str, examples_per_shard: int = 4096):
        if examples_per_shard < 1:
            raise ValueError("examples_per_shard must be >= 1")
        self.out_dir = out_dir
        self.name = name
        self.examples_per_shard = examples_per_shard
        self.count = 0
        self.paths: list[str] = []
        self._writer: tf.io.TFRecordWriter | None = None
        os.makedirs(out_dir, exist_ok=True)
        for stale in glob.glob(os.path.join(out_dir, f"{name}-*.tfrecord")):
            os.remove(stale)

    def write(self, serialized: bytes) -> None:
        if self.count % self.examples_per_shard == 0:
            self._roll()
        assert self._writer is not None
        self._writer.write(serialized)
        self.count += 1

    def _roll(self) -> None:
        if self._writer is not None:
            self._writer.close()
        path = os.path.join(self.out_dir, f"{self.name}-{len(self.paths):05d}.tfrecord")
        self.paths.append(path)
        self._writer = tf.io.TFRecordWriter(path)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "ShardedRecordWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def shard_paths(data_dir: str, name: str) -> list[str]:
    """Sorted shard files of record set ``name`` in ``data_dir``; a clear error when none exist."""
    paths = sorted(glob.glob(os.path.join(data_dir, f"{name}-*.tfrecord"))) or _tfds_shard_paths(data_dir, name)
    if not paths:
        raise UserError(
            f"no TFRecords '{name}-*.tfrecord' in {data_dir}: convert the dataset first "
            "(see README, 'Dataset preparation (CUB, Flowers, hd5)')"
        )
    return paths


def _tfds_shard_paths(data_dir: str, name: str) -> list[str]:
    """Shards of record set ``name`` in a folder prepared by a t2i_tf TFDS builder (t2i_tf/tfds/): its info.json
    ``tfds`` entry maps record sets to TFDS splits, stored as ``{builder}-{split}.tfrecord-NNNNN-of-NNNNN``."""
    if not os.path.isfile(os.path.join(data_dir, INFO_FILE)):
        return []
    tfds_info = read_info(data_dir).get("tfds")
    if not isinstance(tfds_info, dict) or not isinstance(tfds_info.get("record_sets"), dict):
        return []
    split = tfds_info["record_sets"].get(name)
    if not isinstance(split, str) or not isinstance(tfds_info.get("name"), str):
        return []
    pattern = f"{glob.escape(tfds_info['name'])}-{glob.escape(split)}.tfrecord-*-of-*"
    return sorted(glob.glob(os.path.join(glob.escape(data_dir), pattern)))


def corrupt_shards(data_dir: str) -> list[str]:
    """The TFRecord files of ``data_dir`` that cannot be read to the end (truncated, bad CRC), each with TF's reason."""
    bad = []
    tfds_shards = glob.glob(os.path.join(data_dir, "*.tfrecord-*"))  # a folder prepared by a t2i_tf TFDS builder
    for path in sorted(glob.glob(os.path.join(data_dir, "*.tfrecord")) + tfds_shards):
        try:
            for _ in tf.data.TFRecordDataset(path):
                pass
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            bad.append(f"{path} ({e.message.splitlines()[0][:120]})")
    return bad


def corrupt_data_error(data_dir: str | None, error: Exception) -> UserError:
    """The error to show for a DataLossError met while reading ``data_dir``: the corrupt files, named."""
    bad = corrupt_shards(data_dir) if data_dir and os.path.isdir(data_dir) else []
    where = "; ".join(bad) if bad else str(error).strip().splitlines()[0][:200]
    return UserError(f"a record file of --data_dir is corrupt: {where}. Convert the dataset again")


def write_info(data_dir: str, info: dict[str, Any]) -> str:
    """Write ``info.json`` (splits, counts, vocabulary, provenance) atomically."""
    return write_text_atomic(os.path.join(data_dir, INFO_FILE), json.dumps(info, indent=1, sort_keys=True))


def read_info(data_dir: str) -> dict[str, Any]:
    """Read ``info.json`` written by a converter; a clear error if it is missing, corrupt or has wrong-typed fields."""
    path = os.path.join(data_dir, INFO_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{path} not found: '{data_dir}' is not a converted dataset directory")
    try:
        with open(path, "rb") as f:
            info = json.loads(f.read().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise UserError(f"{path} is not valid JSON ({str(e)[:200]})") from None
    except OSError as e:
        raise UserError(f"{path} cannot be read ({e.strerror or e})") from None
    check_info(info, path)
    return info


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _positive(value: Any) -> bool:
    return _count(value) and value > 0


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check(ok: bool, path: str, field: str, expected: str, value: Any) -> None:
    if not ok:
        shown = "an object" if isinstance(value, dict) else "a list" if isinstance(value, list) else json.dumps(value)[:60]
        raise UserError(f"{path}: '{field}' must be {expected}, got {shown}; the file was not written by a converter "
                        "of this version (convert the dataset again)")


def check_info(info: Any, path: str = INFO_FILE) -> None:
    """A UserError naming the field when ``info`` (a parsed info.json) has a field of the wrong type.

    Checks the fields readers use: ``dataset``/``format`` strings, ``splits`` an object of objects whose
    ``num_*`` counts are integers >= 0 and ``class_ids`` integer lists, ``embedding_dim`` / ``image_size``
    positive integers (or null), ``extra_int64`` an object of lengths, the feature lists lists of strings.
    """
    if not isinstance(info, dict):
        raise UserError(f"{path}: expected a JSON object (the converter's info), got "
                        f"{type(info).__name__.replace('dict', 'object')}; convert the dataset again")
    for key in ("dataset", "format", "raw_dir", "split_source"):
        if key in info:
            _check(isinstance(info[key], str), path, key, "a string", info[key])
    if "splits" in info:
        splits = info["splits"]
        _check(isinstance(splits, dict), path, "splits", "an object of split name -> counts", splits)
        for name, split in splits.items():
            _check(isinstance(split, dict), path, f"splits.{name}", "an object of counts", split)
            for key, value in split.items():
                if key.startswith("num_"):
                    _check(_count(value), path, f"splits.{name}.{key}", "an integer >= 0", value)
            if "class_ids" in split:
                ids = split["class_ids"]
                _check(isinstance(ids, list) and all(_count(v) for v in ids), path, f"splits.{name}.class_ids",
                       "a list of integer class ids", ids)
    for key in ("embedding_dim", "image_size", "num_classes"):
        if key in info and info[key] is not None:
            _check(_positive(info[key]) if key != "num_classes" else _count(info[key]), path, key,
                   "a positive integer or null" if key != "num_classes" else "an integer >= 0", info[key])
    if info.get("extra_int64") is not None:
        extra = info["extra_int64"]
        _check(isinstance(extra, dict), path, "extra_int64", "an object of feature name -> length", extra)
        for key, value in extra.items():
            _check(value is None or _positive(value), path, f"extra_int64.{key}", "a positive integer or null", value)
    for key in ("features", "image_features"):
        if key in info:
            _check(_str_list(info[key]), path, key, "a list of strings", info[key])
    for key in ("vocabulary", "skipped", "class_names"):
        if key in info and info[key] is not None:
            _check(isinstance(info[key], dict), path, key, "an object", info[key])
