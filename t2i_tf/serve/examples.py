"""Held-out example texts for the demo pages, read from the data the user points at.

Exports carry no data: the examples come from the converted records the model was trained on (``--data_dir`` of
the server, else the ``data_dir`` of the run the export sits in: ``<workdir>/export`` next to
``<workdir>/config.json``). Text-to-image records give their test split's captions, CSS retrieval records their
test queries' modification texts. On a CSS gallery the per-image test queries come from the gallery instead
(:mod:`t2i_tf.serve.gallery`).
"""

from __future__ import annotations

import glob
import json
import os

import tensorflow as tf

MAX_EXAMPLES = 8
SCANNED_RECORDS = 400  # examples are spread over the first records of the split (neighbours are often one edit apart)
RECORD_SETS = (("test", "captions"), ("queries_test", "text"), ("val", "captions"))


def run_data_dir(export_dir: str) -> str | None:
    """The ``data_dir`` of the run whose ``export`` folder ``export_dir`` is (None when unknown)."""
    path = os.path.join(os.path.dirname(os.path.abspath(export_dir)), "config.json")
    try:
        with open(path) as f:
            data_dir = (json.load(f).get("config") or {}).get("data_dir")
    except (OSError, ValueError, AttributeError):
        return None
    return data_dir if isinstance(data_dir, str) and os.path.isdir(data_dir) else None


def held_out_texts(data_dir: str | None, limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to ``limit`` distinct held-out texts (first caption of each test record, or test query texts), evenly
    spread over the first SCANNED_RECORDS records of the split, in record order."""
    if not data_dir or not os.path.isdir(data_dir):
        return []
    for name, feature in RECORD_SETS:
        files = sorted(glob.glob(os.path.join(data_dir, f"{name}-*.tfrecord")))
        if not files:
            continue
        spec = {feature: tf.io.VarLenFeature(tf.string)}
        out: list[str] = []
        try:
            for serialized in tf.data.TFRecordDataset(files).take(SCANNED_RECORDS):
                values = tf.sparse.to_dense(tf.io.parse_single_example(serialized, spec)[feature]).numpy()
                if len(values):
                    text = values[0].decode("utf-8", "replace").strip()
                    if text and text not in out:
                        out.append(text)
        except (tf.errors.OpError, ValueError):  # unreadable or another schema: no examples, not a failure
            continue
        if out:
            step = max(1, len(out) // limit)
            return out[::step][:limit]
    return []


MAX_EPISODES = 3  # held-out episodes offered on a draw-and-edit page


def held_out_episodes(data_dir: str | None, limit: int = MAX_EPISODES) -> list[list[str]]:
    """The instructions, in turn order, of the first ``limit`` held-out edit episodes (``test-*.tfrecord`` of
    ``python -m datasets.css.edits`` records) that start from a blank (all-white) canvas, so that a page starting
    from a blank canvas can replay them turn by turn. [] for other records or without records."""
    if not data_dir or not os.path.isdir(data_dir):
        return []
    files = sorted(glob.glob(os.path.join(data_dir, "test-*.tfrecord")))
    if not files:
        return []
    spec = {"instructions": tf.io.VarLenFeature(tf.string), "images": tf.io.VarLenFeature(tf.string)}
    out: list[list[str]] = []
    try:
        for serialized in tf.data.TFRecordDataset(files).take(SCANNED_RECORDS):
            ex = tf.io.parse_single_example(serialized, spec)
            texts = [t.decode("utf-8", "replace").strip() for t in tf.sparse.to_dense(ex["instructions"]).numpy()]
            images = tf.sparse.to_dense(ex["images"])
            if not texts or not all(texts) or not int(tf.size(images)):
                continue
            if bool(tf.reduce_all(tf.io.decode_png(images[0], channels=3) == 255)):
                out.append(texts)
                if len(out) >= limit:
                    break
    except (tf.errors.OpError, ValueError):  # unreadable or another schema: no examples, not a failure
        return []
    return out
