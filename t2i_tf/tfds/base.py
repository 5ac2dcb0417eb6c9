"""What the t2i_tf TFDS builders share: the converter feeds the builder, and the prepared directory is readable by
t2i_tf's readers as it is.

A builder runs the project's converter (t2i_tf/datasets/...) on ``manual_dir`` into a scratch folder inside
TFDS's incomplete directory, so the raw layouts are parsed by one code (the converters' item iterators, their
validation, skip counting and restricted unpickler), then yields the converter's records unchanged: the TFDS
features are declared so that TFDS serialises every example to the *same* ``tf.train.Example`` keys and types as
the converter (``image`` encoded bytes, ``captions`` a bytes list, ``embeddings`` a flat float list, ...), in the
converter's order (``disable_shuffling``). The converter's ``info.json`` (splits, skips, vocabulary) is written
next to TFDS's files with a ``tfds`` entry naming the record files, and is also in ``builder.info.metadata``; so
the prepared ``DATA_DIR/NAME/CONFIG/VERSION`` folder is a ``--data_dir`` for the trainers
(t2i_tf.data.records.shard_paths finds the TFDS shards).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from t2i_tf.data.records import write_info
from t2i_tf.errors import UserError

SCRATCH = "_t2i_converter_records"  # converter output inside TFDS's incomplete dir, removed before it is published
TFDS_KEY = "tfds"  # info.json entry: {"name", "config", "version", "record_sets": {record set: tfds split}}


def example_values(serialized: bytes) -> dict[str, list]:
    """A serialized ``tf.train.Example`` as ``{key: list of values}`` (bytes, ints or floats)."""
    features = tf.train.Example.FromString(serialized).features.feature
    out: dict[str, list] = {}
    for key, feature in features.items():
        kind = feature.WhichOneof("kind")
        out[key] = list(getattr(feature, kind).value) if kind else []
    return out


def record_files(records_dir: str, record_set: str) -> list[str]:
    """The converter's shards of ``record_set`` in file order."""
    return sorted(glob.glob(os.path.join(glob.escape(records_dir), f"{record_set}-*.tfrecord")))


def iter_records(records_dir: str, record_set: str) -> Iterator[dict[str, list]]:
    """Every example of a converter record set, in the converter's order."""
    for path in record_files(records_dir, record_set):
        for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
            yield example_values(serialized)


def locate(root: str, relative: str) -> str | None:
    """``root`` or the first of its sub-folders (sorted) holding ``relative``; None if none does."""
    candidates = [root] + sorted(os.path.join(root, d) for d in os.listdir(root)
                                 if os.path.isdir(os.path.join(root, d)))
    for c in candidates:
        if os.path.exists(os.path.join(c, relative)):
            return c
    return None


def find_dir_with(root: str, relative: str, what: str, why: str) -> str:
    """:func:`locate`, or a UserError naming ``what`` is missing and ``why`` it is needed."""
    found = locate(root, relative)
    if found is None:
        raise UserError(f"manual_dir {root}: no {relative} in it or in a folder directly under it ({what}, {why})")
    return found


class ConvertedBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A GeneratorBasedBuilder whose examples are the records of a t2i_tf converter run on ``manual_dir``.

    Subclasses give ``_features()``, ``_convert(manual_dir, out_dir) -> info`` and ``_record_sets(info) ->
    {record set: tfds split}`` (and ``_example(values)`` when the records need more than the t2i schema).
    """

    VERSION = tfds.core.Version("1.0.0")
    PREPARE_ALL_CONFIGS: ClassVar[bool] = False  # t2i-tf-tfds-build NAME (no config) prepares every config
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "First release: the records of the t2i_tf converter (same tf.train.Example schema)."}
    HOMEPAGE = ""
    CITATION = ""
    DESCRIPTION = ""

    # ------------------------------------------------------------------ subclass hooks
    def _features(self) -> tfds.features.FeaturesDict:
        raise NotImplementedError

    def _convert(self, manual_dir: str, out_dir: str) -> dict[str, Any]:
        raise NotImplementedError

    def _record_sets(self, info: dict[str, Any]) -> dict[str, str]:
        """``{converter record set: tfds split}``; default: the converter's splits that hold examples."""
        return {s: s for s, v in info.get("splits", {}).items() if v.get("num_examples", 0) > 0}

    def _example(self, values: dict[str, list]) -> dict[str, Any]:
        raise NotImplementedError

    # ------------------------------------------------------------------ tfds
    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(builder=self, description=self.DESCRIPTION, features=self._features(),
                                     homepage=self.HOMEPAGE, citation=self.CITATION,
                                     metadata=tfds.core.MetadataDict(), disable_shuffling=True)

    def _download_and_prepare(self, dl_manager, download_config=None) -> None:  # tfds' signature
        scratch = os.path.join(os.fspath(self.data_path), SCRATCH)
        self._t2i_info: dict[str, Any] | None = None
        try:
            super()._download_and_prepare(dl_manager, download_config)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        info = dict(self._t2i_info or {})
        record_sets = info.pop("_record_sets", {})
        for record_set, split in record_sets.items():
            split_info = info.get("splits", {}).get(record_set)
            if isinstance(split_info, dict) and "num_shards" in split_info:
                split_info["num_shards"] = int(self.info.splits[split].num_shards)
        info[TFDS_KEY] = {"name": self.name, "config": self.builder_config.name if self.builder_config else None,
                          "version": str(self.version), "file_format": self.info.file_format.value,
                          "record_sets": record_sets}
        self.info.metadata["t2i_info"] = info
        write_info(os.fspath(self.data_path), info)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        manual_dir = os.fspath(dl_manager.manual_dir)
        scratch = os.path.join(os.fspath(self.data_path), SCRATCH)
        info = self._convert(manual_dir, scratch)
        record_sets = self._record_sets(info)
        if not record_sets:
            raise UserError(f"manual_dir {manual_dir}: the converter wrote no examples (skipped: "
                            f"{json.dumps(info.get('skipped', {}))[:300]})")
        self._t2i_info = dict(info, _record_sets=record_sets)
        return {split: self._generate_examples(scratch, record_set) for record_set, split in record_sets.items()}

    def _generate_examples(self, records_dir: str, record_set: str) -> Iterator[tuple[int, dict[str, Any]]]:
        for index, values in enumerate(iter_records(records_dir, record_set)):
            yield index, self._example(values)


@dataclasses.dataclass(eq=False)
class T2IBuilderConfig(tfds.core.BuilderConfig):
    """Options of a text-to-image builder: whether the records carry precomputed embeddings (their dimension fixes
    the features) and the converter's flags (stored longest side, class-disjoint split override)."""

    embeddings: bool = False
    embedding_dim: int = 1024
    max_side: int = 304
    test_classes: str | None = None
    test_fraction: float | None = None


class T2IBuilder(ConvertedBuilder, skip_registration=True):
    """Text-to-image records (t2i_tf/datasets/t2i_common.py schema): image, name, class_id, captions,
    [embeddings], [extra int64 lists]."""

    EXTRA_INT64: ClassVar[dict[str, int]] = {}  # extra int64 features of the dataset: name -> length

    def _embedding_dim(self) -> int | None:
        config = self.builder_config
        return config.embedding_dim if getattr(config, "embeddings", False) else None

    def _features(self) -> tfds.features.FeaturesDict:
        features: dict[str, Any] = {
            "image": tfds.features.Image(shape=(None, None, 3), doc="encoded JPEG/PNG, cropped as the converter does"),
            "name": tfds.features.Text(doc="the image's name in the source layout, e.g. 001.Black_footed_Albatross/..."),
            "class_id": tfds.features.Scalar(np.int64, doc="the dataset's own (1-based) class number"),
            "captions": tfds.features.Sequence(tfds.features.Text(), doc="every caption of the image"),
        }
        dim = self._embedding_dim()
        if dim:
            features["embeddings"] = tfds.features.Tensor(shape=(None, dim), dtype=np.float32,
                                                          doc="one precomputed text embedding per caption")
        for name, length in self.EXTRA_INT64.items():
            features[name] = tfds.features.Tensor(shape=(length,), dtype=np.int64)
        return tfds.features.FeaturesDict(features)

    def _check_converted(self, info: dict[str, Any]) -> dict[str, Any]:
        """The converter's info, checked against the features this config declared."""
        dim = self._embedding_dim()
        if dim and info.get("embedding_dim") != dim:
            raise UserError(f"config '{self.builder_config.name}' declares {dim}-d embeddings but the converter "
                            f"found {info.get('embedding_dim')}-d ones: use a config with embedding_dim="
                            f"{info.get('embedding_dim')}")
        extra = info.get("extra_int64") or {}
        if any(extra.get(k) != v for k, v in self.EXTRA_INT64.items()):
            raise UserError(f"the converter's extra features {extra} are not the builder's {self.EXTRA_INT64}")
        return info

    def _example(self, values: dict[str, list]) -> dict[str, Any]:
        example = {"image": values["image"][0], "name": values["name"][0].decode("utf-8"),
                   "class_id": int(values["class_id"][0]),
                   "captions": [c.decode("utf-8") for c in values["captions"]]}
        dim = self._embedding_dim()
        if dim:
            example["embeddings"] = np.asarray(values["embeddings"], np.float32).reshape(-1, dim)
        for name in self.EXTRA_INT64:
            example[name] = np.asarray(values[name], np.int64)
        return example
