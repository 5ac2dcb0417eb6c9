"""CSS edit sequences for ``--model=geneva``: random draw-and-edit episodes rendered and written as TFRecords.

Each split holds ``num_sequences`` episodes of 3-5 add / remove turns (t2i_tf/data/edit_sequences.py has the
builder and the record schema), rendered with the CSS recipe at ``image_size`` (64 by default: the size TIRG and
stackgan_tirg read, so the turn-by-turn baseline sees the same pictures). Train episodes use the CSS train
(colour, shape) combinations, test episodes every combination. Writes ``{split}-NNNNN.tfrecord`` shards and
``info.json`` (counts, turns, the instruction vocabulary); streams, so memory does not grow with the count.

    python -m datasets.css.edits --out_dir=DIR [--seed=0 --num_train=4000 --num_test=500 --image_size=64]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from t2i_tf.data import edit_sequences as es
from t2i_tf.data.css_cells import CODE_RULE
from t2i_tf.data.css_scene import HELD_OUT_COMBOS, render_scene, scene_objects
from t2i_tf.data.records import ShardedRecordWriter, write_info
from t2i_tf.data.text import build_vocabulary
from t2i_tf.datasets.css.generate import atomic_build, default_data_root
from t2i_tf.datasets.t2i_common import run_cli
from t2i_tf.errors import UserError

SPLITS = ("train", "test")
DEFAULT_SIZES = {"train": 4000, "test": 500}
RECORDS_VERSION = 1


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def write_edit_sequences(out_dir: str, seed: int = 0, num_train: int = DEFAULT_SIZES["train"],
                         num_test: int = DEFAULT_SIZES["test"], image_size: int = 64,
                         examples_per_shard: int = 1024) -> dict[str, Any]:
    """Generate, render and write both splits into ``out_dir``; returns the info written to info.json."""
    counts = {"train": int(num_train), "test": int(num_test)}
    if min(counts.values()) < 1:
        raise UserError(f"--num_train and --num_test must be >= 1; got {counts['train']}, {counts['test']}")
    if image_size < 16:
        raise UserError(f"--image_size must be >= 16 (CSS shapes vanish below); got {image_size}")
    splits: dict[str, dict[str, int]] = {}
    train_texts: list[str] = []
    for i, split in enumerate(SPLITS):
        rng = np.random.default_rng([int(seed), 7, i])
        combos = es.combos_of(split)
        turns = adds = 0
        with ShardedRecordWriter(out_dir, split, examples_per_shard) as writer:
            for _ in range(counts[split]):
                seq = es.random_sequence(rng, combos)
                pngs = [_png(render_scene(scene_objects(s), image_size)) for s in seq.scenes]
                writer.write(es.sequence_example(seq, pngs))
                turns += seq.num_turns
                adds += sum(e[0] == "add" for e in seq.edits)
                if split == "train":
                    train_texts.extend(seq.instructions)
        splits[split] = {"num_sequences": writer.count, "num_turns": turns, "num_adds": adds,
                         "num_removes": turns - adds}
    info = {"dataset": es.DATASET, "format": es.FORMAT, "image_size": int(image_size), "seed": int(seed),
            "splits": splits, "min_turns": es.MIN_TURNS, "max_turns": es.MAX_TURNS,
            "instruction_words": build_vocabulary(train_texts), "instructions": es.INSTRUCTION_RULE,
            "scene_cells": CODE_RULE, "held_out_combos": [list(c) for c in HELD_OUT_COMBOS],
            "start": f"an empty canvas with probability {es.EMPTY_START_PROB}, else a scene of 1-4 objects",
            "generator": "t2i_tf.datasets.css.edits", "records_version": RECORDS_VERSION}
    write_info(out_dir, info)
    return info


def prepare_default_css_edits(data_root: str | None = None, seed: int = 0, image_size: int = 64,
                              num_train: int = DEFAULT_SIZES["train"], num_test: int = DEFAULT_SIZES["test"]) -> str:
    """The embedded edit sequences, generated on first use under the data root (safe under concurrent first uses)."""
    root = data_root or default_data_root()
    final = os.path.join(root, f"css_edits_seed{seed}_n{num_train}-{num_test}_px{image_size}_v{RECORDS_VERSION}")
    return atomic_build(final, lambda tmp: write_edit_sequences(tmp, seed, num_train, num_test, image_size))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m datasets.css.edits", description=__doc__.split("\n\n")[0])
    p.add_argument("--out_dir", required=True, help="where to write the TFRecords and info.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num_train", type=int, default=DEFAULT_SIZES["train"], help="train sequences")
    p.add_argument("--num_test", type=int, default=DEFAULT_SIZES["test"], help="test sequences")
    p.add_argument("--image_size", type=int, default=64)
    args = p.parse_args(argv)

    def run() -> None:
        info = write_edit_sequences(args.out_dir, args.seed, args.num_train, args.num_test, args.image_size)
        print(f"css edit sequences in {args.out_dir}: " + ", ".join(
            f"{s} {v['num_sequences']} sequences / {v['num_turns']} turns" for s, v in info["splits"].items()))

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
