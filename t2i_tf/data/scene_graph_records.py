"""Scene-graph TFRecords (Visual Genome, COCO-Stuff; t2i_tf/datasets/{vg,coco_stuff}) and their tf.data reader.

Record schema (format ``sg-v1``, one example per image; ``n`` objects, ``t`` triples, no ``__image__`` node):

- ``image``: bytes, the encoded JPEG / PNG (longest side <= the converter's ``--max_side``);
- ``name``: bytes, the image's path under the dataset's image folder; ``image_id``: int64;
- ``objects``: int64 ``[n]``, object ids of the dataset's vocabulary (``vocab.json``: id = index + 1);
- ``boxes``: float ``[n * 4]``, ``x0, y0, x1, y1`` divided by the image's width / height (sg2im/data/vg.py:112-117,
  sg2im/data/coco.py:264-269);
- ``triples``: int64 ``[t * 3]``, ``(subject, predicate id, object)`` with object indices 0..n-1: VG's relationships;
  COCO's geometric relation of every ordered pair of objects, of which the reader draws one per object;
- ``masks``: bytes, uint8 ``[n, M, M]`` (COCO only; ``mask_size`` M in info.json): each object's mask inside its box.

The reader (:func:`scene_graph_dataset`) builds the graph the official loaders build per image: the ``__image__``
node first (slot 0, box [0, 0, 1, 1], mask all ones), at most ``graph_max_objects - 1`` objects (VG: objects in a
relationship first, then the others, drawn at random when training, in file order when not, as many as vg.py:85-103
keeps: ``max_objects`` related ones, else up to ``max_objects - 1`` in all; COCO: all of them, coco.py:262), the
triples between kept objects (COCO: one per object, with a random partner and direction, coco.py:321-350), and
``__in_image__`` (predicate 0) from every object to the image node. Objects are padded with 0, triples with -1 rows.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

from t2i_tf.data.records import read_info, shard_paths
from t2i_tf.data.scene_graph import IMAGE_ID, GraphVocab
from t2i_tf.errors import UserError

FORMAT = "sg-v1"
VOCAB_FILE = "vocab.json"
RELATIONSHIPS = "relationships"  # VG: the records' triples are the graph
ONE_RELATION_PER_OBJECT = "one_relation_per_object"  # COCO: the records hold every pair; one is drawn per object
GRAPH_SAMPLING = (RELATIONSHIPS, ONE_RELATION_PER_OBJECT)
AUTOTUNE = tf.data.AUTOTUNE


def is_scene_graph_dir(info: dict[str, Any]) -> bool:
    """Whether ``info`` (a data dir's info.json) describes scene-graph records."""
    return info.get("format") == FORMAT


def read_vocab(data_dir: str) -> GraphVocab:
    """The records' vocabulary from ``vocab.json`` beside them (google/sg2im's keys: ``object_idx_to_name``,
    ``pred_idx_to_name``); a one-line UserError when it is missing or malformed."""
    path = os.path.join(data_dir, VOCAB_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{path} not found: scene-graph records need the vocab.json their converter writes")
    try:
        with open(path) as f:
            vocab = json.load(f)
        objects, predicates = vocab["object_idx_to_name"], vocab["pred_idx_to_name"]
        if not all(isinstance(n, str) for n in [*objects, *predicates]):
            raise TypeError("names must be strings")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: expected {{\"object_idx_to_name\": [...], \"pred_idx_to_name\": [...]}} "
                        f"({type(e).__name__}: {e})") from None
    unused = frozenset(vocab.get("unused_object_names", []))
    return GraphVocab(str(vocab.get("dataset", os.path.basename(os.path.abspath(data_dir)))), tuple(objects),
                      tuple(predicates), unused_names=unused)


def graph_sizes(info: dict[str, Any]) -> tuple[int, int]:
    """(object slots O with the image node, triple rows T) of the reader's padded graphs."""
    slots = int(info["graph_max_objects"])
    relations = int(info["graph_max_relations"])
    return slots, relations + slots - 1


def _spec(has_masks: bool) -> dict[str, Any]:
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "image_id": tf.io.FixedLenFeature([], tf.int64),
            "objects": tf.io.VarLenFeature(tf.int64), "boxes": tf.io.VarLenFeature(tf.float32),
            "triples": tf.io.VarLenFeature(tf.int64)}
    if has_masks:
        spec["masks"] = tf.io.FixedLenFeature([], tf.string)
    return spec


def _choose_objects(objects: tf.Tensor, triples: tf.Tensor, max_objects: int, training: bool,
                    seed: tf.Tensor) -> tf.Tensor:
    """Indices of the objects a VG graph keeps (vg.py:85-103): objects in a triple first (random order when training,
    file order when not); ``max_objects`` of them when at least that many are related, else the related ones and
    then the others up to ``max_objects - 1``."""
    n = tf.shape(objects)[0]
    ends = tf.concat([triples[:, 0], triples[:, 2]], axis=0)
    related = tf.math.unsorted_segment_max(tf.ones_like(ends), ends, n) > 0
    if training:
        rank = tf.random.stateless_uniform([n], seed)
    else:
        rank = tf.cast(tf.range(n), tf.float32) / tf.cast(tf.maximum(n, 1), tf.float32)
    order = tf.argsort(tf.where(related, rank, rank + 2.0), stable=True)
    num_related = tf.reduce_sum(tf.cast(related, tf.int32))
    keep = tf.where(num_related >= max_objects, max_objects, tf.minimum(n, max_objects - 1))
    return order[:keep]


def _one_relation_per_object(pairs: tf.Tensor, k: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """[k, 3] triples: for each object i < k a uniformly drawn partner j != i and direction, with the predicate the
    records give the ordered pair; [0, 3] when k < 2 (coco.py:321-350)."""
    pred = tf.scatter_nd(pairs[:, ::2], pairs[:, 1] + 1, [k, k]) - 1  # [k, k] predicate of (s, o); -1: none
    i = tf.range(k)
    draw = tf.random.stateless_uniform([k], seed, 0, tf.maximum(k - 1, 1), dtype=tf.int32)
    j = tf.minimum(draw + tf.cast(draw >= i, tf.int32), tf.maximum(k - 1, 0))  # k = 1: no partner, dropped below
    flip = tf.random.stateless_uniform([k], seed + 1) > 0.5
    s, o = tf.where(flip, i, j), tf.where(flip, j, i)
    rows = tf.stack([s, tf.gather_nd(pred, tf.stack([s, o], axis=1)), o], axis=1)
    return tf.cond(k > 1, lambda: rows, lambda: tf.zeros([0, 3], tf.int32))


def parse_graph(ex: dict[str, tf.Tensor], sampling: str, slots: int, rows: int, training: bool, seed: tf.Tensor,
                stored_mask_size: int = 0, mask_size: int = 0) -> dict[str, tf.Tensor]:
    """The padded graph (module docstring) of one parsed record: objects [O], triples [T, 3], boxes [O, 4] and
    (with stored masks and ``mask_size`` > 0) masks [O, M, M]."""
    objects = tf.cast(tf.sparse.to_dense(ex["objects"]), tf.int32)
    boxes = tf.reshape(tf.sparse.to_dense(ex["boxes"]), [-1, 4])
    triples = tf.reshape(tf.cast(tf.sparse.to_dense(ex["triples"]), tf.int32), [-1, 3])
    if sampling == RELATIONSHIPS:
        kept = _choose_objects(objects, triples, slots - 1, training, seed)
    else:
        kept = tf.range(tf.minimum(tf.shape(objects)[0], slots - 1))
    k = tf.shape(kept)[0]
    new_slot = tf.tensor_scatter_nd_update(tf.fill(tf.shape(objects), -1), kept[:, None], tf.range(1, k + 1))
    if sampling == RELATIONSHIPS:
        s, o = tf.gather(new_slot, triples[:, 0]), tf.gather(new_slot, triples[:, 2])
        rel = tf.boolean_mask(tf.stack([s, triples[:, 1], o], axis=1), (s >= 0) & (o >= 0))
    else:
        inside = (triples[:, 0] < k) & (triples[:, 2] < k)
        rel = _one_relation_per_object(tf.boolean_mask(triples, inside), k, seed + 7) + [1, 0, 1]
    in_image = tf.stack([tf.range(1, k + 1), tf.zeros([k], tf.int32), tf.zeros([k], tf.int32)], axis=1)
    graph_triples = tf.concat([rel, in_image], axis=0)[:rows]
    pad_o = slots - 1 - k
    out = {"objects": tf.ensure_shape(tf.pad(tf.concat([[IMAGE_ID], tf.gather(objects, kept)], 0), [[0, pad_o]]),
                                      [slots]),
           "triples": tf.ensure_shape(tf.pad(graph_triples, [[0, rows - tf.shape(graph_triples)[0]], [0, 0]],
                                             constant_values=-1), [rows, 3]),
           "boxes": tf.ensure_shape(tf.pad(tf.concat([[[0.0, 0.0, 1.0, 1.0]], tf.gather(boxes, kept)], 0),
                                           [[0, pad_o], [0, 0]]), [slots, 4])}
    if stored_mask_size and mask_size:
        m0 = stored_mask_size
        masks = tf.reshape(tf.io.decode_raw(ex["masks"], tf.uint8), [-1, m0, m0])
        masks = tf.cast(tf.gather(masks, kept), tf.float32)
        if mask_size != m0:  # the share of each new pixel the stored mask covers, kept where more than half
            masks = tf.image.resize(masks[..., None], [mask_size, mask_size], method="area")[..., 0]
            masks = tf.cast(masks > 0.5, tf.float32)
        masks = tf.concat([tf.ones([1, mask_size, mask_size]), masks], axis=0)
        out["masks"] = tf.ensure_shape(tf.pad(masks, [[0, pad_o], [0, 0], [0, 0]]), [slots, mask_size, mask_size])
    return out


def _image(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """The whole image resized to S x S (sg2im/data/utils.py Resize: no crop, no flip), float32 in [-1, 1]."""
    img = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    img.set_shape([None, None, 3])
    img = tf.image.resize(img, [image_size, image_size], method="bilinear", antialias=True)
    return tf.ensure_shape(tf.clip_by_value(img / 127.5 - 1.0, -1.0, 1.0), [image_size, image_size, 3])


def scene_graph_dataset(data_dir: str, split: str, batch_size: int, image_size: int, training: bool = True,
                        seed: int = 0, input_context: tf.distribute.InputContext | None = None, mask_size: int = 0,
                        shuffle_buffer: int = 1024) -> tf.data.Dataset:
    """Batches of {image [B, S, S, 3], caption (the object names) [B], class_id (0) [B], image_id [B], objects [B, O],
    triples [B, T, 3], boxes [B, O, 4], [masks [B, O, M, M] when the records have masks and ``mask_size`` > 0]}.

    Training shuffles, repeats and drops the last partial batch; evaluation is one pass in file order with graphs
    drawn from a fixed seed. Randomness is stateless in ``seed`` and the record's position."""
    info = read_info(data_dir)
    if not is_scene_graph_dir(info):
        raise UserError(f"{data_dir} holds no scene-graph records (info.json format {info.get('format')!r}, "
                        f"expected {FORMAT!r})")
    sampling = info.get("graph_sampling")
    if sampling not in GRAPH_SAMPLING:
        raise UserError(f"{data_dir}/info.json: graph_sampling must be one of {', '.join(GRAPH_SAMPLING)}")
    slots, rows = graph_sizes(info)
    stored = int(info.get("mask_size") or 0)
    names = tf.constant(["", *read_vocab(data_dir).object_names])
    files = shard_paths(data_dir, split)
    n = input_context.num_input_pipelines if input_context is not None else 1
    pid = input_context.input_pipeline_id if input_context is not None else 0
    ds = tf.data.TFRecordDataset(files)
    if n > 1:
        ds = ds.shard(n, pid)
    seed = int(seed) + 100_003 * pid
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    spec = _spec(stored > 0)

    def load(index: tf.Tensor, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        ex = tf.io.parse_single_example(serialized, spec)
        g = parse_graph(ex, sampling, slots, rows, training, tf.stack([tf.constant(seed, tf.int64), index]),
                        stored, mask_size)
        real = g["objects"][1:]
        caption = tf.strings.reduce_join(tf.gather(names, tf.boolean_mask(real, real > 0)), separator=", ")
        return {"image": _image(ex["image"], image_size), "caption": caption, "class_id": tf.constant(0, tf.int64),
                "image_id": ex["image_id"], **g}

    ds = ds.enumerate().map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=training)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(AUTOTUNE)


def held_out_graph_batches(data_dir: str, split: str, image_size: int, num_images: int, batch_size: int,
                           mask_size: int = 0):
    """The first ``num_images`` records of ``split`` in file order as evaluation batches (the last one cut short)."""
    left = int(num_images)
    for b in scene_graph_dataset(data_dir, split, batch_size, image_size, training=False, mask_size=mask_size):
        if left <= 0:
            return
        b = {k: v[:left] for k, v in b.items()}
        left -= int(b["image"].shape[0])
        yield b
