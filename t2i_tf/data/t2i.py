"""tf.data reader of the text-to-image TFRecords written by datasets/{cub,flowers,hd5} converters.

``data_dir`` is a converter's output folder or a folder prepared by a t2i_tf TFDS builder
(``TFDS_DATA_DIR/NAME/CONFIG/VERSION``, t2i_tf/tfds/): the same records and info.json, found by
t2i_tf.data.records (``shard_paths``, ``read_info``), so both give the same batches.

Each batch is a dict:

- ``image``: float32 ``[B, S, S, 3]`` in [-1, 1];
- ``caption``: string ``[B]``, one caption drawn per image and step when training, the first when not;
- ``class_id``: int64 ``[B]``;
- ``embedding``: float32 ``[B, D]`` (only when the records carry char-CNN-RNN embeddings): the mean
  of ``embeddings_sampled`` (default 4, GAN-CLS; StackGAN-Pytorch: 1) randomly chosen captions'
  embeddings when training, of all when not;
- ``wrong_image``: float32 ``[B, S, S, 3]``, an image of a *different class* for the matching-aware
  (GAN-CLS) loss;
- ``scene_cells``: int64 ``[B, 9]`` (only when info.json lists it: captioned CSS), the scene's cell codes
  (t2i_tf/data/css_cells.py), passed through unchanged — a random flip would not move them, so readers of
  cell labels pass ``random_flip=False`` (random crops keep every CSS object in its cell).

Wrong images come from a second, independently shuffled stream of the same records: the records of
both streams are grouped ``wrong_candidates`` at a time and each real example takes the first
candidate (scanning from its own position, so examples do not share one candidate) whose class
differs (the wrong stream is not sharded: each input pipeline draws negatives from the whole
split). An example for which none of the candidates differs is dropped — with C balanced classes
this happens with probability (1/C)^wrong_candidates, i.e. never in practice, but it is what makes
"different class" a guarantee rather than a likelihood.

Training: resize to 76/64*S (76 for 64, 304 for 256), random S crop, random horizontal flip (the
wrong image gets its own crop and flip; ``random_crop=False`` resizes to S instead); evaluation:
resize to S. All randomness is stateless and derived from ``seed`` and the element's position, so a
pipeline is deterministic given its seed.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from t2i_tf.data.records import read_info, shard_paths
from t2i_tf.errors import UserError

AUTOTUNE = tf.data.AUTOTUNE
SCENE_CELLS = "scene_cells"
EMBEDDINGS_SAMPLED = 4  # captions averaged per training embedding (Reed et al. / StackGAN's NUM_EMBEDDING)


def load_size(image_size: int) -> int:
    """The pre-crop training size: 76/64 of the output (76 for 64, 152 for 128, 304 for 256)."""
    return int(round(image_size * 76 / 64))


def _records(files: list[str], input_context: Any, shuffle: bool, repeat: bool, seed: int,
             shuffle_buffer: int) -> tf.data.Dataset:
    """Serialized examples of this input pipeline's shard, optionally shuffled and repeated."""
    n = input_context.num_input_pipelines if input_context is not None else 1
    pid = input_context.input_pipeline_id if input_context is not None else 0
    ds = tf.data.Dataset.from_tensor_slices(files)
    by_file = n > 1 and len(files) >= n
    if by_file:
        ds = ds.shard(n, pid)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8), block_length=1,
                           num_parallel_calls=AUTOTUNE, deterministic=True)
    else:  # evaluation reads the shards one after the other, in order
        ds = tf.data.TFRecordDataset(ds)
    if n > 1 and not by_file:
        ds = ds.shard(n, pid)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds


def _class_ids(serialized: tf.Tensor) -> tf.Tensor:
    return tf.io.parse_example(serialized, {"class_id": tf.io.FixedLenFeature([], tf.int64)})["class_id"]


def _pick_wrong(main: tf.Tensor, wrong: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """For each of ``main`` [n], the first of ``wrong`` [K] (scanning from its own index) of another class."""
    main_cls, wrong_cls = _class_ids(main), _class_ids(wrong)
    n, k = tf.shape(main)[0], tf.shape(wrong)[0]
    order = (tf.range(n)[:, None] + tf.range(k)[None, :]) % k  # [n, K]
    differs = tf.gather(wrong_cls, order) != main_cls[:, None]
    first = tf.argmax(tf.cast(differs, tf.int32), axis=1, output_type=tf.int32)
    chosen = tf.gather(order, first, batch_dims=1)
    return main, tf.gather(wrong, chosen), tf.reduce_any(differs, axis=1)


def _found(main: tf.Tensor, wrong: tf.Tensor, found: tf.Tensor) -> tf.Tensor:
    return found


def _drop_found(main: tf.Tensor, wrong: tf.Tensor, found: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return main, wrong


def _seed(seed: int, index: tf.Tensor, k: int) -> tf.Tensor:
    """A stateless seed per (pipeline seed, element index, use k)."""
    return tf.stack([tf.constant(seed * 16 + k, tf.int64), index])


def _image(encoded: tf.Tensor, image_size: int, training: bool, seed: int, index: tf.Tensor, k: int,
           random_flip: bool = True, random_crop: bool = True) -> tf.Tensor:
    """Decode, resize (and when training random-crop and flip, as enabled) to float32 [S, S, 3] in [-1, 1]."""
    img = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    img.set_shape([None, None, 3])
    if training and not random_crop:
        img = tf.image.resize(img, [image_size, image_size], method="bilinear", antialias=True)
        if random_flip:
            img = tf.image.stateless_random_flip_left_right(img, seed=_seed(seed, index, k + 1))
    elif training:
        size = load_size(image_size)
        img = tf.image.resize(img, [size, size], method="bilinear", antialias=True)
        img = tf.image.stateless_random_crop(img, [image_size, image_size, 3], seed=_seed(seed, index, k))
        if random_flip:
            img = tf.image.stateless_random_flip_left_right(img, seed=_seed(seed, index, k + 1))
    else:
        img = tf.image.resize(img, [image_size, image_size], method="bilinear", antialias=True)
    img = tf.clip_by_value(img / 127.5 - 1.0, -1.0, 1.0)
    img.set_shape([image_size, image_size, 3])
    return img


def t2i_dataset(data_dir: str, split: str, batch_size: int, image_size: int = 64, training: bool = True,
                seed: int = 0, input_context: tf.distribute.InputContext | None = None,
                shuffle_buffer: int = 1024, wrong_candidates: int = 32, random_flip: bool = True,
                random_crop: bool = True, embeddings_sampled: int = EMBEDDINGS_SAMPLED) -> tf.data.Dataset:
    """Batches of {image, caption, class_id, [embedding], wrong_image, [scene_cells]} from text-to-image records.

    ``batch_size`` is per input pipeline (pass the per-replica size under a strategy); with
    ``input_context`` the records are sharded by its pipeline id (by file when there are enough
    shards, else by record). Training repeats forever and drops the last partial batch; evaluation
    is one pass in file order. ``random_flip=False`` for captions that say left/right (CSS scenes);
    ``random_crop=False`` trains on the whole image resized to S. ``embeddings_sampled``: how many randomly
    chosen captions' embeddings a training embedding averages (1 = one random caption, StackGAN-Pytorch).
    """
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    if image_size < 1:
        raise UserError(f"image_size must be >= 1, got {image_size}")
    if wrong_candidates < 1:
        raise UserError(f"wrong_candidates must be >= 1, got {wrong_candidates}")
    if embeddings_sampled < 1:
        raise UserError(f"embeddings_sampled must be >= 1, got {embeddings_sampled}")
    info = read_info(data_dir)
    files = shard_paths(data_dir, split)
    split_info = info.get("splits", {}).get(split)
    if isinstance(split_info, dict) and split_info.get("num_classes", 2) < 2:
        raise UserError(f"{data_dir} split '{split}' has {split_info.get('num_classes')} class(es): wrong images "
                        "(of a different class) need at least 2")
    emb_dim = info.get("embedding_dim")
    spec = {"image": tf.io.FixedLenFeature([], tf.string),
            "class_id": tf.io.FixedLenFeature([], tf.int64),
            "captions": tf.io.VarLenFeature(tf.string)}
    if emb_dim:
        spec["embeddings"] = tf.io.VarLenFeature(tf.float32)
    cells_len = (info.get("extra_int64") or {}).get(SCENE_CELLS)
    if cells_len:
        spec[SCENE_CELLS] = tf.io.FixedLenFeature([int(cells_len)], tf.int64)

    pid = input_context.input_pipeline_id if input_context is not None else 0
    seed = int(seed) + 100_003 * pid  # each input pipeline draws its own crops, flips and wrong images
    main = _records(files, input_context, training, training, seed, shuffle_buffer)
    # Wrong images are only negatives: every pipeline draws them from the whole split, so a shard
    # holding a single class still gets images of other classes.
    wrong = _records(files, None, True, True, seed + 7919, shuffle_buffer)
    pairs = tf.data.Dataset.zip(main.batch(wrong_candidates), wrong.batch(wrong_candidates, drop_remainder=True))
    pairs = pairs.map(_pick_wrong, num_parallel_calls=AUTOTUNE, deterministic=True).unbatch()
    pairs = pairs.filter(_found).map(_drop_found).enumerate()

    def load(index: tf.Tensor, serialized: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        main_ser, wrong_ser = serialized
        ex = tf.io.parse_single_example(main_ser, spec)
        wrong_ex = tf.io.parse_single_example(wrong_ser, {"image": spec["image"]})
        captions = tf.sparse.to_dense(ex["captions"])
        if training:
            pick = tf.random.stateless_uniform([], _seed(seed, index, 0), 0, tf.shape(captions)[0], dtype=tf.int32)
        else:
            pick = 0
        out = {"image": _image(ex["image"], image_size, training, seed, index, 2, random_flip, random_crop),
               "caption": captions[pick],
               "class_id": ex["class_id"]}
        if emb_dim:
            emb = tf.reshape(tf.sparse.to_dense(ex["embeddings"]), [-1, emb_dim])
            if training:
                noise = tf.random.stateless_uniform([tf.shape(emb)[0]], _seed(seed, index, 1))
                chosen = tf.argsort(noise)[:embeddings_sampled]
                emb = tf.gather(emb, chosen)
            out["embedding"] = tf.ensure_shape(tf.reduce_mean(emb, axis=0), [emb_dim])
        out["wrong_image"] = _image(wrong_ex["image"], image_size, training, seed, index, 4, random_flip, random_crop)
        if cells_len:
            out[SCENE_CELLS] = ex[SCENE_CELLS]
        return out

    ds = pairs.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=training)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(AUTOTUNE)


def held_out_batches(data_dir: str, split: str, image_size: int, num_images: int, batch_size: int):
    """The first ``num_images`` records of ``split`` in file order (first caption each), as evaluation batches
    of :func:`t2i_dataset` (the last one cut short)."""
    left = int(num_images)
    for b in t2i_dataset(data_dir, split, batch_size, image_size, training=False, seed=0):
        if left <= 0:
            return
        b = {k: v[:left] for k, v in b.items()}
        left -= int(b["image"].shape[0])
        yield b
