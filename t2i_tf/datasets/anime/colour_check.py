"""Colour accuracy of generated anime faces: does the image drawn for "blue hair red eyes" have blue hair and red eyes?

For faces of the generated fixture (t2i_tf/datasets/anime/faces.py), whose hair and iris always cover known boxes,
an exported AttnGAN (``--mode=export``: ``generate(text, seed)``) draws ``--per_tags`` images for every hair x eye
combination; the median colour of each image's hair box and eye boxes is named by the nearest palette colour among
the fixture's hair (eye) colours, and compared with the tags. ``--records`` scores the real images of a converted
split the same way (the reference: 1.0 when the boxes are right), and chance is 1 / number of colours.

    python -m datasets.anime.colour_check --export=runs/attngan_anime/export --fixture=/data/anime_gen
        [--records=/data/anime_gen_tfrecords] [--per_tags=8] [--output=colour.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from t2i_tf.datasets.anime.faces import EYES, HAIR, caption, nearest, region_colours
from t2i_tf.datasets.anime.generate import MANIFEST
from t2i_tf.datasets.t2i_common import run_cli
from t2i_tf.errors import UserError


def score(images: np.ndarray, hairs: Sequence[str], eyes: Sequence[str], hair_names: Sequence[str],
          eye_names: Sequence[str]) -> dict[str, float]:
    """Fractions of ``images`` [N, S, S, 3] uint8 whose hair / eyes / both are named ``hairs[i]`` / ``eyes[i]``."""
    hit_h, hit_e = [], []
    for img, h, e in zip(images, hairs, eyes):
        rgb_h, rgb_e = region_colours(np.asarray(img))
        hit_h.append(nearest(rgb_h, tuple(hair_names)) == h)
        hit_e.append(nearest(rgb_e, tuple(eye_names)) == e)
    hit_h, hit_e = np.asarray(hit_h), np.asarray(hit_e)
    return {"hair": float(hit_h.mean()), "eyes": float(hit_e.mean()), "both": float((hit_h & hit_e).mean()),
            "images": len(hit_h)}


def generated_accuracy(export_dir: str, hair_names: Sequence[str], eye_names: Sequence[str], per_tags: int = 8,
                       seed: int = 0) -> dict[str, float]:
    """:func:`score` of ``per_tags`` images per hair x eye combination drawn by the exported generator."""
    import tensorflow as tf

    if not os.path.isdir(export_dir):
        raise UserError(f"--export {export_dir} is not a folder (write it with --model=attngan --mode=export)")
    model = tf.saved_model.load(export_dir)
    if "generate" not in model.signatures:
        raise UserError(f"{export_dir} has no 'generate' signature: not an exported text-to-image generator")
    generate = model.signatures["generate"]
    images, hairs, eyes = [], [], []
    for i, (h, e) in enumerate(itertools.product(hair_names, eye_names)):
        out = generate(text=tf.constant([caption(h, e)] * per_tags), seed=tf.constant(seed + i, tf.int64))
        images.append(out["images"].numpy())
        hairs += [h] * per_tags
        eyes += [e] * per_tags
    return score(np.concatenate(images), hairs, eyes, hair_names, eye_names)


def records_accuracy(records_dir: str, split: str, hair_names: Sequence[str], eye_names: Sequence[str]) -> dict:
    """:func:`score` of the real images of a converted split (their captions give the colours)."""
    import tensorflow as tf

    from t2i_tf.data.records import shard_paths

    spec = {"image": tf.io.FixedLenFeature([], tf.string), "captions": tf.io.VarLenFeature(tf.string)}
    images, hairs, eyes = [], [], []
    for serialized in tf.data.TFRecordDataset(shard_paths(records_dir, split)).as_numpy_iterator():
        ex = tf.io.parse_single_example(serialized, spec)
        words = tf.sparse.to_dense(ex["captions"])[0].numpy().decode("utf-8").split()
        if len(words) != 4 or words[1] != "hair" or words[3] != "eyes":
            raise UserError(f"{records_dir}: caption {' '.join(words)!r} is not '<colour> hair <colour> eyes' (not "
                            "records of the generated anime fixture)")
        images.append(tf.io.decode_image(ex["image"], channels=3).numpy())
        hairs.append(words[0])
        eyes.append(words[2])
    return score(np.stack(images), hairs, eyes, hair_names, eye_names)


def colour_check(export_dir: str, fixture_dir: str, records_dir: str | None = None, per_tags: int = 8,
                 seed: int = 0, split: str = "test") -> dict[str, Any]:
    """The colour accuracies of the generator (and of the real ``records_dir`` images), with chance levels."""
    manifest_path = os.path.join(fixture_dir, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise UserError(f"{manifest_path} not found: --fixture must be a folder written by python -m "
                        "datasets.anime.generate (its colours are known)")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    hair_names, eye_names = manifest.get("hair_colours", HAIR), manifest.get("eye_colours", EYES)
    out: dict[str, Any] = {"generated": generated_accuracy(export_dir, hair_names, eye_names, per_tags, seed),
                           "chance": {"hair": 1 / len(hair_names), "eyes": 1 / len(eye_names),
                                      "both": 1 / (len(hair_names) * len(eye_names))},
                           "protocol": {"per_tags": per_tags, "combinations": len(hair_names) * len(eye_names),
                                        "hair_colours": list(hair_names), "eye_colours": list(eye_names),
                                        "rule": "median RGB of the hair box / both eye boxes, nearest palette colour"}}
    if records_dir:
        out["real"] = records_accuracy(records_dir, split, hair_names, eye_names)
        out["protocol"]["real_split"] = split
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints the accuracies as JSON."""
    p = argparse.ArgumentParser(prog="python -m datasets.anime.colour_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--export", required=True, help="an exported AttnGAN (SavedModel with a generate signature)")
    p.add_argument("--fixture", required=True, help="the folder python -m datasets.anime.generate wrote")
    p.add_argument("--records", default=None, help="converted records of the fixture: score their real images too")
    p.add_argument("--split", default="test")
    p.add_argument("--per_tags", type=int, default=8, help="images per hair x eye combination")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="also write the JSON here")
    a = p.parse_args(argv)

    def run() -> None:
        if a.per_tags < 1:
            raise UserError(f"--per_tags must be >= 1; got {a.per_tags}")
        result = colour_check(a.export, a.fixture, a.records, a.per_tags, a.seed, a.split)
        text = json.dumps(result, indent=1)
        print(text)
        if a.output:
            with open(a.output, "w", encoding="utf-8") as f:
                f.write(text + "\n")

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
