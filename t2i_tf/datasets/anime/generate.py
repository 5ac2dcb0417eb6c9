"""Writes a generated anime-faces dataset in a published layout (t2i_tf/datasets/anime/faces.py draws the faces).

Layouts: ``deep_t2i`` (``imgs/<i>.jpg`` + ``tags.csv`` rows ``<i>,<hair> hair <eyes> eyes``), ``extra_data`` (the
MLDS 2018 zip: ``extra_data/images/`` + ``extra_data/tags.csv``) and ``mlds2017`` (``faces/`` + ``tags_clean.csv``
rows ``<i>,<tag>:<count><TAB>...``, with a hair-length tag besides the colours). ``--names=file`` writes
``0.jpg,...`` instead of ``0,...``. Hair and eye colours are drawn uniformly from the first ``--num_hair`` /
``--num_eyes`` of deep_t2i's lists; images are JPEG (quality 95) like the published ones.

``--defects`` adds one of each thing the converter must count and skip: a truncated JPEG (``corrupt_image``), a
row whose image is not there (``missing_image``), a row with no tags (``empty_tags``), a GIF named in a row
(``unsupported_format``) and an image no row names (``untagged_image``).

    python -m datasets.anime.generate --out_dir=DIR [--num_images=2000] [--image_size=64] [--seed=0]
        [--layout=deep_t2i|extra_data|mlds2017] [--num_hair=12] [--num_eyes=10] [--names=stem|file] [--defects]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from t2i_tf.datasets.anime.faces import EYES, HAIR, caption, draw_face
from t2i_tf.datasets.t2i_common import run_cli
from t2i_tf.errors import UserError
from t2i_tf.files import publish_staging, start_staging

LAYOUTS = {"deep_t2i": ("", "imgs", "tags.csv"), "extra_data": ("extra_data", "images", "tags.csv"),
           "mlds2017": ("", "faces", "tags_clean.csv")}
DEFECTS = {"corrupt_image": 1, "missing_image": 1, "empty_tags": 1, "unsupported_format": 1, "untagged_image": 1}
MANIFEST = "generated.json"


def _jpeg(img: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(img).save(out, format="JPEG", quality=95)
    return out.getvalue()


def _row(name: str, tags: str, layout: str, rng: np.random.Generator) -> str:
    if layout != "mlds2017":
        return f"{name},{tags}"
    hair, eyes = tags.split(" hair ")
    extra = ["long hair", "short hair"][int(rng.integers(2))]
    items = [(extra, int(rng.integers(100, 20000))), (f"{hair} hair", int(rng.integers(100, 20000))),
             (eyes, int(rng.integers(100, 20000)))]
    return f"{name}," + "\t".join(f"{t}:{c}" for t, c in items)


def generate_anime(out_dir: str, num_images: int = 2000, image_size: int = 64, seed: int = 0,
                   layout: str = "deep_t2i", num_hair: int = len(HAIR), num_eyes: int = len(EYES),
                   names: str = "stem", defects: bool = False) -> dict[str, Any]:
    """Write ``num_images`` faces (+ the defects) in ``layout`` under ``out_dir``; returns the manifest
    (also written as ``generated.json``: every image's hair and eye colour)."""
    if layout not in LAYOUTS:
        raise UserError(f"--layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
    if names not in ("stem", "file"):
        raise UserError(f"--names must be stem or file; got {names!r}")
    if num_images < 1 or image_size < 8:
        raise UserError(f"--num_images must be >= 1 and --image_size >= 8; got {num_images}, {image_size}")
    if not (1 <= num_hair <= len(HAIR) and 1 <= num_eyes <= len(EYES)):
        raise UserError(f"--num_hair must be in 1..{len(HAIR)} and --num_eyes in 1..{len(EYES)}; got {num_hair}, "
                        f"{num_eyes}")
    staging = start_staging(out_dir)
    nested, images_name, tags_name = LAYOUTS[layout]
    root = os.path.join(staging, nested) if nested else staging
    images_dir = os.path.join(root, images_name)
    os.makedirs(images_dir)
    rng = np.random.default_rng(seed)
    row_rng = np.random.default_rng([seed, 1])  # the tags_clean.csv extras: the faces are the same in every layout
    rows: list[str] = []
    faces: dict[str, dict[str, str]] = {}
    for i in range(num_images):
        hair, eyes = HAIR[int(rng.integers(num_hair))], EYES[int(rng.integers(num_eyes))]
        file = f"{i}.jpg"
        with open(os.path.join(images_dir, file), "wb") as f:
            f.write(_jpeg(draw_face(hair, eyes, rng, image_size)))
        rows.append(_row(file if names == "file" else str(i), caption(hair, eyes), layout, row_rng))
        faces[file] = {"hair": hair, "eyes": eyes}
    defect_names: dict[str, str] = {}
    if defects:
        defect_names = _write_defects(images_dir, rows, num_images, image_size, layout, names, rng)
    with open(os.path.join(root, tags_name), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    manifest = {"layout": layout, "image_size": image_size, "seed": seed, "num_images": num_images,
                "hair_colours": list(HAIR[:num_hair]), "eye_colours": list(EYES[:num_eyes]),
                "defects": defect_names, "faces": faces}
    with open(os.path.join(staging, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    publish_staging(staging, out_dir)
    return manifest


def _write_defects(images_dir: str, rows: list[str], n: int, size: int, layout: str, names: str,
                   rng: np.random.Generator) -> dict[str, str]:
    """One of each :data:`DEFECTS`, numbered after the good images; returns {reason: image file}."""
    def name(i: int, ext: str = ".jpg") -> str:
        return f"{i}{ext}" if names == "file" or ext != ".jpg" else str(i)

    good = _jpeg(draw_face(HAIR[0], EYES[0], rng, size))
    with open(os.path.join(images_dir, f"{n}.jpg"), "wb") as f:
        f.write(good[: len(good) // 3])  # truncated: a JPEG header, then nothing
    rows.append(_row(name(n), caption(HAIR[1], EYES[1]), layout, rng))
    rows.append(_row(name(n + 1), caption(HAIR[2], EYES[2]), layout, rng))  # no such file
    rows.append(f"{name(n + 2)},")  # empty tags
    with open(os.path.join(images_dir, f"{n + 2}.jpg"), "wb") as f:
        f.write(good)
    gif = io.BytesIO()
    Image.new("RGB", (size, size), (200, 10, 10)).save(gif, format="GIF")
    with open(os.path.join(images_dir, f"{n + 3}.gif"), "wb") as f:
        f.write(gif.getvalue())
    rows.append(_row(f"{n + 3}.gif", caption(HAIR[0], EYES[0]), layout, rng))
    with open(os.path.join(images_dir, f"{n + 4}.jpg"), "wb") as f:
        f.write(good)  # in no row
    return {"corrupt_image": f"{n}.jpg", "missing_image": name(n + 1), "empty_tags": f"{n + 2}.jpg",
            "unsupported_format": f"{n + 3}.gif", "untagged_image": f"{n + 4}.jpg"}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m datasets.anime.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--out_dir", required=True)
    p.add_argument("--num_images", type=int, default=2000)
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layout", default="deep_t2i", choices=tuple(LAYOUTS))
    p.add_argument("--num_hair", type=int, default=len(HAIR), help=f"hair colours used (first N of {', '.join(HAIR)})")
    p.add_argument("--num_eyes", type=int, default=len(EYES), help=f"eye colours used (first N of {', '.join(EYES)})")
    p.add_argument("--names", default="stem", choices=("stem", "file"), help="rows name '0' (stem) or '0.jpg' (file)")
    p.add_argument("--defects", action="store_true", help="add one image or row of each kind the converter skips")
    a = p.parse_args(argv)

    def run() -> None:
        m = generate_anime(a.out_dir, a.num_images, a.image_size, a.seed, a.layout, a.num_hair, a.num_eyes, a.names,
                           a.defects)
        print(f"wrote {m['num_images']} faces ({len(m['hair_colours'])} hair x {len(m['eye_colours'])} eye colours, "
              f"{a.layout} layout) to {a.out_dir}" + (f"; defects: {m['defects']}" if m["defects"] else ""))

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
