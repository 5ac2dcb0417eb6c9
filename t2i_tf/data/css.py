"""tf.data readers for CSS TFRecords written by ``datasets.css.convert``, or by the ``css`` TFDS builder.

A CSS ``data_dir`` is the converter's output folder (gallery images and queries side by side), or a folder the
``css`` TFDS builder (t2i_tf/tfds/css.py) prepared: ``TFDS_DATA_DIR/css/images/VERSION`` or ``.../queries/VERSION``,
whose records are the converter's; the reader takes each record kind from its config's folder (:func:`record_dirs`).

The gallery is small (17k x 64x64x3 uint8 = 210 MB), so training decodes it once
into memory and gathers source/target images per batch by id; the queries are
sampled in pairs that share a source image, as TIRG trains on CSS.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from t2i_tf.data.pixels import from_uint8
from t2i_tf.data.records import read_info, shard_paths
from t2i_tf.errors import UserError

AUTOTUNE = tf.data.AUTOTUNE

_IMAGE_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "image_id": tf.io.FixedLenFeature([], tf.int64),
    "label": tf.io.FixedLenFeature([], tf.int64),
}
_QUERY_FEATURES = {
    "source_id": tf.io.FixedLenFeature([], tf.int64),
    "target_id": tf.io.FixedLenFeature([], tf.int64),
    "text": tf.io.FixedLenFeature([], tf.string),
    "source_label": tf.io.FixedLenFeature([], tf.int64),
    "target_label": tf.io.FixedLenFeature([], tf.int64),
    "mod_id": tf.io.FixedLenFeature([], tf.int64),
}


RECORD_KINDS = ("images", "queries")  # the converter's record sets images_SPLIT, queries_SPLIT; the TFDS configs
TFDS_BUILDER = "css"


def record_dirs(data_dir: str) -> dict[str, str]:
    """``{"images": folder, "queries": folder}`` holding the gallery and the query records of a CSS ``data_dir``.

    The converter's output holds both. A folder the ``css`` TFDS builder prepared holds one config (info.json's
    ``tfds`` entry says which); the other is read from its sibling ``TFDS_DATA_DIR/css/OTHER/VERSION``, which must be
    prepared from the same conversion (the same info.json but for ``tfds``): a UserError naming the command otherwise.
    """
    info = read_info(data_dir)
    tfds_info = info.get("tfds")
    if not isinstance(tfds_info, dict) or tfds_info.get("name") != TFDS_BUILDER \
            or tfds_info.get("config") not in RECORD_KINDS:
        return {kind: data_dir for kind in RECORD_KINDS}
    own = str(tfds_info["config"])
    other = RECORD_KINDS[1 - RECORD_KINDS.index(own)]
    folder = os.path.normpath(os.path.abspath(data_dir))
    builder_dir = os.path.dirname(os.path.dirname(folder))  # TFDS_DATA_DIR/css
    sibling = os.path.join(builder_dir, other, os.path.basename(folder))
    build = f"t2i-tf-tfds-build {TFDS_BUILDER} --manual_dir=DIR --data_dir={os.path.dirname(builder_dir)}"
    if not os.path.isfile(os.path.join(sibling, "info.json")):
        raise UserError(f"{data_dir} holds the {TFDS_BUILDER} TFDS builder's '{own}' config, but its '{other}' config "
                        f"is not prepared next to it ({sibling}); prepare both: {build}")
    theirs = read_info(sibling)

    def conversion(i: dict) -> dict:
        return {k: v for k, v in i.items() if k != "tfds"}

    if (theirs.get("tfds") or {}).get("config") != other or conversion(theirs) != conversion(info):
        raise UserError(f"{folder} and {sibling} were prepared from different CSS files (their info.json differ); "
                        f"prepare both again: {build} --overwrite")
    return {own: data_dir, other: sibling}


def to_float_image(images: tf.Tensor) -> tf.Tensor:
    """uint8 images -> float32 in [-1, 1] (x / 127.5 - 1)."""
    return from_uint8(images)


def _split_info(data_dir: str, split: str) -> dict:
    """The info.json entry of one split; a UserError listing the available splits otherwise."""
    info = read_info(data_dir)
    splits = info.get("splits", {})
    if split not in splits:
        raise UserError(f"split '{split}' not in {data_dir} (available: {sorted(splits)})")
    return {"image_size": int(info["image_size"]), **splits[split]}


def read_gallery(data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """All images of a split as uint8 [N, H, W, 3] and labels int64 [N], indexed by image_id.

    N is the number of image ids in the raw data; ids whose PNG was skipped at
    conversion are left black with label -1 (no query refers to them).
    """
    meta = _split_info(data_dir, split)
    size, n = meta["image_size"], int(meta.get("num_image_ids", meta["num_images"]))
    images = np.zeros((n, size, size, 3), np.uint8)
    labels = np.full((n,), -1, np.int64)

    def parse(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        ex = tf.io.parse_single_example(serialized, _IMAGE_FEATURES)
        image = tf.io.decode_png(ex["image"], channels=3)
        return tf.ensure_shape(image, [size, size, 3]), ex["image_id"], ex["label"]

    paths = shard_paths(record_dirs(data_dir)["images"], f"images_{split}")
    ds = tf.data.TFRecordDataset(paths, num_parallel_reads=AUTOTUNE)
    ds = ds.map(parse, num_parallel_calls=AUTOTUNE, deterministic=False).batch(1024).prefetch(AUTOTUNE)
    for image, image_id, label in ds.as_numpy_iterator():
        images[image_id] = image
        labels[image_id] = label
    return images, labels


def read_scene_cells(data_dir: str, split: str) -> np.ndarray:
    """Every gallery image's 9 scene cell codes (t2i_tf/data/css_cells.py), int64 [N, 9] indexed by image_id;
    -1 rows for images whose cells are unknown (not codable, or skipped at conversion).

    A UserError when the records predate scene cells (convert them again with datasets.css.convert).
    """
    meta = _split_info(data_dir, split)
    if "scene_cells" not in read_info(data_dir).get("image_features", []):
        raise UserError(f"{data_dir} has no scene cells per image (converted before they were added): convert the "
                        "raw CSS again with python -m datasets.css.convert")
    cells = np.full((int(meta.get("num_image_ids", meta["num_images"])), 9), -1, np.int64)
    spec = {"image_id": tf.io.FixedLenFeature([], tf.int64), "scene_cells": tf.io.FixedLenFeature([9], tf.int64)}
    ds = tf.data.TFRecordDataset(shard_paths(record_dirs(data_dir)["images"], f"images_{split}")).batch(4096)
    for batch in ds.map(lambda s: tf.io.parse_example(s, spec)).as_numpy_iterator():
        cells[batch["image_id"]] = batch["scene_cells"]
    return cells


def read_queries(data_dir: str, split: str) -> dict[str, np.ndarray]:
    """All queries of a split in file order: int64 arrays and ``text`` as an object array of str."""
    ds = tf.data.TFRecordDataset(shard_paths(record_dirs(data_dir)["queries"], f"queries_{split}"))
    ds = ds.batch(4096).map(lambda s: tf.io.parse_example(s, _QUERY_FEATURES), num_parallel_calls=AUTOTUNE)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in _QUERY_FEATURES}
    for batch in ds.as_numpy_iterator():
        for k, v in batch.items():
            parts[k].append(v)
    out = {}
    for k, spec in _QUERY_FEATURES.items():
        if not parts[k]:
            out[k] = np.zeros((0,), object if spec.dtype == tf.string else np.int64)
        elif spec.dtype == tf.string:
            out[k] = np.array([t.decode("utf-8") for t in np.concatenate(parts[k])], dtype=object)
        else:
            out[k] = np.concatenate(parts[k]).astype(np.int64)
    return out


def _pair_index(source_id: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Queries sorted by source and, per sorted position, its group start and size; plus the positions
    whose source has >= 2 queries (the ones a pair can start from)."""
    order = np.argsort(source_id, kind="stable")
    sorted_src = source_id[order]
    _, start, count = np.unique(sorted_src, return_index=True, return_counts=True)
    group_start = np.repeat(start, count).astype(np.int64)
    group_size = np.repeat(count, count).astype(np.int64)
    eligible = np.nonzero(group_size >= 2)[0].astype(np.int64)
    return order.astype(np.int64), group_start, group_size, eligible


def train_dataset(data_dir: str, batch_size: int, seed: int, split: str = "train",
                  input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """Infinite batches of CSS training queries, made of pairs (rows 2i, 2i+1) sharing a source image.

    Yields ``{"source_image", "target_image": float32 [B,H,W,3] in [-1, 1], "text": string [B],
    "target_label": int64 [B], "source_id": int64 [B]}``. ``batch_size`` is the batch of this
    pipeline: with an ``input_context`` (``distribute_datasets_from_function``) pass the
    PER-REPLICA batch size (``input_context.get_per_replica_batch_size(global_batch)``); each
    input pipeline then draws from its own random stream. Deterministic for a given seed.
    The gallery is a captured in-memory tensor: distribute with ``distribute_datasets_from_function``
    (``experimental_distribute_dataset`` would serialise it into the rewritten graph).
    """
    if batch_size < 2 or batch_size % 2:
        raise UserError(f"CSS training batches are pairs of queries sharing a source: batch_size must be "
                        f"even and >= 2, got {batch_size}")
    images_np, _ = read_gallery(data_dir, split)
    q = read_queries(data_dir, split)
    order, group_start, group_size, eligible = _pair_index(q["source_id"])
    if eligible.size == 0:
        raise UserError(f"{data_dir} split '{split}': no source image has two queries, cannot build pairs")
    pipeline_id, num_pipelines = 0, 1
    if input_context is not None:
        pipeline_id, num_pipelines = input_context.input_pipeline_id, input_context.num_input_pipelines

    images = tf.convert_to_tensor(images_np)  # captured once by the map function, not copied per element
    src, tgt = tf.constant(q["source_id"]), tf.constant(q["target_id"])
    texts, tlabels = tf.constant(q["text"].astype(str)), tf.constant(q["target_label"])
    order_t, start_t, size_t = tf.constant(order), tf.constant(group_start), tf.constant(group_size)
    eligible_t = tf.constant(eligible)
    half = batch_size // 2

    def make_batch(step: tf.Tensor) -> dict[str, tf.Tensor]:
        key = tf.stack([tf.constant(seed, tf.int64), step * num_pipelines + pipeline_id])
        k1, k2 = tf.unstack(tf.random.experimental.stateless_split(key, 2))
        first = tf.gather(eligible_t, tf.random.stateless_uniform(
            [half], k1, maxval=tf.size(eligible_t, out_type=tf.int64), dtype=tf.int64))
        start, size = tf.gather(start_t, first), tf.gather(size_t, first)
        offset = tf.random.stateless_uniform([half], k2, maxval=tf.int64.max, dtype=tf.int64) % (size - 1)
        second = start + (first - start + 1 + offset) % size  # another query of the same source
        query = tf.gather(order_t, tf.reshape(tf.stack([first, second], axis=1), [-1]))
        return {
            "source_image": to_float_image(tf.gather(images, tf.gather(src, query))),
            "target_image": to_float_image(tf.gather(images, tf.gather(tgt, query))),
            "text": tf.gather(texts, query),
            "target_label": tf.gather(tlabels, query),
            "source_id": tf.gather(src, query),
        }

    options = tf.data.Options()
    options.deterministic = True
    ds = tf.data.Dataset.counter(dtype=tf.int64).map(make_batch, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE).with_options(options)
