"""CSS edit sequences for iterative draw-and-edit (GeNeVA): a canvas, then 3-5 turns of one instruction each.

A sequence starts from an empty canvas or a scene of 1-4 objects (the "background" GeNeVA's generator starts
from) and each turn adds an object to an empty cell or removes one, with the instruction worded as the CSS
modification queries (t2i_tf/datasets/css/generate.py: "add large red circle to top-left", "remove middle-center
blue object"), so a TIRG / stackgan_tirg vocabulary reads them too. The scene after every turn is known: its
9 cell codes (t2i_tf/data/css_cells.py) are the targets of the per-turn metrics.

Records (one ``tf.train.Example`` per sequence, written by t2i_tf/datasets/css/edits.py):

- ``num_turns``: int64, 3..5;
- ``images``: bytes list of ``num_turns + 1`` PNGs, the canvas then the scene after each turn;
- ``instructions``: bytes list of ``num_turns`` UTF-8 instructions;
- ``scene_cells``: int64 list ``(num_turns + 1) * 9``, the cell codes of those scenes.

:func:`edit_dataset` reads them into fixed-size batches: sequences are padded to ``MAX_TURNS`` by repeating the
last scene with empty instructions, and ``turn_mask`` says which turns are real.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from t2i_tf.data.css_cells import NUM_CELLS, scene_cells
from t2i_tf.data.css_scene import COLORS, HELD_OUT_COMBOS, SHAPES, SIZES, Edit, Scene, scene_objects
from t2i_tf.data.records import bytes_feature, int64_feature, make_example, read_info, shard_paths
from t2i_tf.errors import UserError

DATASET = "css_edits"
FORMAT = "css-edits-v1"
MIN_TURNS, MAX_TURNS = 3, 5
EMPTY_START_PROB = 0.5  # sequences that start from an empty canvas; the others from a scene of 1-4 objects
ADD_PROB = 0.65  # a turn adds an object (when a cell is free and one is there to remove)
INSTRUCTION_RULE = ("the CSS modification wording (t2i_tf/datasets/css/generate.py _edit_text): 'add <size> <colour> "
                    "<shape> to <row>-<column>' | 'remove <row>-<column> <colour object | size object | shape | size "
                    "shape>'")


@dataclasses.dataclass(frozen=True)
class EditSequence:
    """One draw-and-edit episode: ``scenes[0]`` the canvas, ``scenes[t]`` the scene after ``instructions[t-1]``."""

    scenes: tuple[Scene, ...]
    edits: tuple[Edit, ...]
    instructions: tuple[str, ...]

    @property
    def num_turns(self) -> int:
        return len(self.edits)

    def cells(self) -> np.ndarray:
        """int64 [num_turns + 1, 9]: the cell codes of every scene."""
        return np.asarray([scene_cells(scene_objects(s)) for s in self.scenes], np.int64)


def combos_of(split: str) -> list[tuple[str, str]]:
    """The (colour, shape) combinations objects of ``split`` use: train leaves CSS's held-out ones out, as the
    CSS generator does, so test sequences hold combinations the model never drew."""
    every = [(c, s) for c in COLORS for s in SHAPES]
    return [c for c in every if c not in HELD_OUT_COMBOS] if split == "train" else every


def _random_object(rng: np.random.Generator, combos: Sequence[tuple[str, str]]) -> tuple[str, str, str]:
    color, shape = combos[int(rng.integers(len(combos)))]
    return SIZES[int(rng.integers(len(SIZES)))], color, shape


def random_sequence(rng: np.random.Generator, combos: Sequence[tuple[str, str]], min_turns: int = MIN_TURNS,
                    max_turns: int = MAX_TURNS) -> EditSequence:
    """A random episode of ``min_turns..max_turns`` add / remove turns over objects of ``combos``."""
    from t2i_tf.datasets.css.generate import _apply, _edit_text

    if not 1 <= min_turns <= max_turns:
        raise ValueError(f"need 1 <= min_turns <= max_turns, got {min_turns}, {max_turns}")
    cells: list[Any] = [None] * NUM_CELLS
    if rng.random() >= EMPTY_START_PROB:
        for cell in rng.choice(NUM_CELLS, size=int(rng.integers(1, 5)), replace=False):
            cells[int(cell)] = _random_object(rng, combos)
    scenes: list[Scene] = [tuple(cells)]
    edits: list[Edit] = []
    texts: list[str] = []
    for _ in range(int(rng.integers(min_turns, max_turns + 1))):
        scene = scenes[-1]
        free = [i for i, o in enumerate(scene) if o is None]
        taken = [i for i, o in enumerate(scene) if o is not None]
        if free and (not taken or rng.random() < ADD_PROB):
            edit: Edit = ("add", int(free[int(rng.integers(len(free)))]), _random_object(rng, combos))
        else:
            edit = ("remove", int(taken[int(rng.integers(len(taken)))]), None)
        texts.append(_edit_text(scene, edit, rng))
        edits.append(edit)
        scenes.append(_apply(scene, edit))
    return EditSequence(tuple(scenes), tuple(edits), tuple(texts))


def sequence_example(sequence: EditSequence, pngs: Sequence[bytes]) -> bytes:
    """The serialized record of ``sequence`` with its rendered scenes ``pngs`` (one per scene)."""
    if len(pngs) != sequence.num_turns + 1:
        raise ValueError(f"expected {sequence.num_turns + 1} images, got {len(pngs)}")
    return make_example({"num_turns": int64_feature(sequence.num_turns), "images": bytes_feature(list(pngs)),
                         "instructions": bytes_feature(list(sequence.instructions)),
                         "scene_cells": int64_feature(sequence.cells().reshape(-1).tolist())})


_SPEC = {"num_turns": tf.io.FixedLenFeature([], tf.int64), "images": tf.io.VarLenFeature(tf.string),
         "instructions": tf.io.VarLenFeature(tf.string), "scene_cells": tf.io.VarLenFeature(tf.int64)}


def read_edit_info(data_dir: str) -> dict[str, Any]:
    """info.json of edit-sequence records; a UserError naming the directory for other records."""
    info = read_info(data_dir)
    if info.get("format") != FORMAT:
        raise UserError(f"{data_dir} holds {info.get('dataset') or info.get('format')!r} records, not CSS edit "
                        f"sequences: make them with python -m datasets.css.edits --out_dir=DIR (or give no "
                        "--data_dir for the embedded ones)")
    return info


def _decode_sequence(serialized: tf.Tensor, image_size: int) -> dict[str, tf.Tensor]:
    """One record -> images [MAX_TURNS+1, S, S, 3] in [-1, 1], instructions [MAX_TURNS], cells, mask."""
    ex = tf.io.parse_single_example(serialized, _SPEC)
    n = tf.cast(ex["num_turns"], tf.int32)
    pngs = tf.sparse.to_dense(ex["images"])
    texts = tf.sparse.to_dense(ex["instructions"])
    cells = tf.reshape(tf.sparse.to_dense(ex["scene_cells"]), [-1, NUM_CELLS])
    tf.debugging.assert_equal(tf.shape(pngs)[0], n + 1, message="edit record: images must be num_turns + 1")
    tf.debugging.assert_equal(tf.shape(cells)[0], n + 1, message="edit record: scene_cells must be num_turns + 1")

    def decode(png):
        img = tf.cast(tf.io.decode_png(png, channels=3), tf.float32)
        if img.shape[0] != image_size:  # CSS scenes are rendered at the records' size: area-average to S
            img = tf.image.resize(img, [image_size, image_size], method="area")
        return tf.ensure_shape(img / 127.5 - 1.0, [image_size, image_size, 3])

    images = tf.map_fn(decode, pngs, fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32))
    keep = tf.minimum(tf.range(MAX_TURNS + 1), n)  # pad by repeating the last scene
    return {"images": tf.gather(images, keep), "cells": tf.gather(cells, keep),
            "instructions": tf.pad(texts, [[0, MAX_TURNS - n]]), "num_turns": n,
            "turn_mask": tf.range(MAX_TURNS) < n}


def edit_dataset(data_dir: str, split: str, batch_size: int, image_size: int, training: bool, seed: int = 0,
                 input_context: tf.distribute.InputContext | None = None, shuffle_buffer: int = 2048) -> tf.data.Dataset:
    """Batches of padded sequences: ``images`` [B, 6, S, S, 3], ``instructions`` [B, 5] strings, ``cells``
    [B, 6, 9], ``num_turns`` [B], ``turn_mask`` [B, 5]. Training: sharded per input pipeline, shuffled from
    ``seed``, repeated, full batches; otherwise one pass in file order."""
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    read_edit_info(data_dir)
    ds = tf.data.TFRecordDataset(shard_paths(data_dir, split))
    if training:
        if input_context is not None and input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        ds = ds.shuffle(shuffle_buffer, seed=int(seed), reshuffle_each_iteration=True).repeat()
    ds = ds.map(lambda s: _decode_sequence(s, int(image_size)), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    ds = ds.batch(int(batch_size), drop_remainder=training)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def held_out_sequences(data_dir: str, split: str, image_size: int, num_sequences: int,
                       batch_size: int) -> Iterator[dict[str, tf.Tensor]]:
    """The first ``num_sequences`` sequences of ``split`` in file order, in batches (the last one cut short)."""
    left = int(num_sequences)
    for b in edit_dataset(data_dir, split, batch_size, image_size, training=False):
        if left <= 0:
            return
        b = {k: v[:left] for k, v in b.items()}
        left -= int(b["num_turns"].shape[0])
        yield b
