"""Generator of CSS-compatible scenes: the project's embedded default dataset.

Writes the official CSS on-disk layout (``css_toy_dataset_novel2_small.dup.npy`` +
``images/css_{split}_{idx:06d}.png``) so the converter reads it exactly like the
download. Scenes are 2..5 coloured shapes on a 3x3 grid. For each base scene the
split also holds ``edits_per_scene`` distinct one-edit variants, and queries go
base -> variant only, so an image-only retriever faces ``edits_per_scene``
equally close candidates (R@1 about 1/16 by default). A fixed set of
(colour, shape) combinations never appears in train and is frequent in test.

    python -m datasets.css.generate --out_dir=/tmp/css [--seed=0 --num_base_scenes=1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from typing import Any, Sequence

import numpy as np
from PIL import Image

from t2i_tf.data.css_scene import (CELL_NAMES, SIZES, COLORS, SHAPES, HELD_OUT_COMBOS, Obj, Scene, Edit, scene_objects, render_scene)
from t2i_tf.data.safe_pickle import save_object_npy

NPY_NAME = "css_toy_dataset_novel2_small.dup.npy"
IMAGES_DIR = "images"
GENERATION_FILE = "generation.json"
SPLITS = ("train", "test")


def _apply(scene: Scene, edit: Edit) -> Scene:
    """The scene after one edit."""
    kind, cell, new = edit
    cells = list(scene)
    cells[cell] = None if kind == "remove" else new
    return tuple(cells)


def _edit_text(scene: Scene, edit: Edit, rng: np.random.Generator) -> str:
    """The modification text of an edit, worded like the released CSS queries."""
    kind, cell, new = edit
    where = CELL_NAMES[cell]
    old = scene[cell]
    if kind == "add":
        assert new is not None
        return f"add {new[0]} {new[1]} {new[2]} to {where}"
    assert old is not None
    size, color, shape = old
    if kind == "remove":
        form = int(rng.integers(4))
        desc = (f"{color} object", f"{size} object", shape, f"{size} {shape}")[form]
        return f"remove {where} {desc}"
    assert new is not None
    if kind == "color":
        return f"make {where} {size} {shape} {new[1]}"
    if kind == "size":
        return f"make {where} {color} {shape} {new[0]}"
    article = "an" if new[2][0] in "aeiou" else "a"
    return f"make {where} {size} {color} {shape} {article} {new[2]}"


def _candidate_edits(scene: Scene, combos: Sequence[tuple[str, str]]) -> dict[str, list[Edit]]:
    """Every one-edit change of a scene whose objects stay within the allowed (colour, shape) combos."""
    allowed = set(combos)
    cands: dict[str, list[Edit]] = {k: [] for k in ("add", "remove", "color", "size", "shape")}
    for cell, obj in enumerate(scene):
        if obj is None:
            for size in SIZES:
                for color, shape in combos:
                    cands["add"].append(("add", cell, (size, color, shape)))
            continue
        size, color, shape = obj
        cands["remove"].append(("remove", cell, None))
        cands["size"].append(("size", cell, (SIZES[1 - SIZES.index(size)], color, shape)))
        for c in COLORS:
            if c != color and (c, shape) in allowed:
                cands["color"].append(("color", cell, (size, c, shape)))
        for s in SHAPES:
            if s != shape and (color, s) in allowed:
                cands["shape"].append(("shape", cell, (size, color, s)))
    return cands


def _allocate(total: int, caps: dict[str, int], order: Sequence[str]) -> dict[str, int]:
    """Split ``total`` over kinds round-robin in ``order`` without exceeding each kind's cap."""
    counts = {k: 0 for k in order}
    assigned = 0
    while assigned < total:
        progressed = False
        for k in order:
            if assigned < total and counts[k] < caps[k]:
                counts[k] += 1
                assigned += 1
                progressed = True
        if not progressed:
            raise ValueError(f"a scene has only {sum(caps.values())} possible edits, fewer than {total} asked")
    return counts


def _choose_edits(rng: np.random.Generator, scene: Scene, combos: Sequence[tuple[str, str]], k: int) -> list[Edit]:
    """``k`` distinct edits of a scene, balanced over add / remove / change (colour, size, shape)."""
    cands = _candidate_edits(scene, combos)
    changes = ("color", "size", "shape")
    caps = {"add": len(cands["add"]), "remove": len(cands["remove"]), "change": sum(len(cands[c]) for c in changes)}
    top = _allocate(k, caps, ("remove", "change", "add"))
    sub_order = [changes[i] for i in rng.permutation(3)]
    counts = dict(top, **_allocate(top["change"], {c: len(cands[c]) for c in changes}, sub_order))
    chosen: list[Edit] = []
    for kind in ("add", "remove", "color", "size", "shape"):
        if counts[kind]:
            picks = rng.choice(len(cands[kind]), size=counts[kind], replace=False)
            chosen.extend(cands[kind][int(i)] for i in picks)
    return [chosen[int(i)] for i in rng.permutation(len(chosen))]


def _random_scene(rng: np.random.Generator, combos: Sequence[tuple[str, str]], force: tuple[str, str] | None) -> Scene:
    """A base scene of 2..5 objects in distinct cells; ``force`` sets the first object's (colour, shape)."""
    n = int(rng.integers(2, 6))
    cells = rng.choice(9, size=n, replace=False)
    scene: list[Obj | None] = [None] * 9
    for i, cell in enumerate(cells):
        color, shape = force if (i == 0 and force is not None) else combos[int(rng.integers(len(combos)))]
        scene[int(cell)] = (SIZES[int(rng.integers(2))], color, shape)
    return tuple(scene)


def _generate_split(
    split: str, out_images: str, rng: np.random.Generator, num_base: int, k: int, image_size: int
) -> dict[str, Any]:
    """Generate one split (objects, mods, labels) and write its PNGs as it goes."""
    all_combos = [(c, s) for c in COLORS for s in SHAPES]
    combos = [c for c in all_combos if c not in HELD_OUT_COMBOS] if split == "train" else all_combos
    objects_img: list[list[dict[str, Any]]] = []
    labels: list[int] = []
    label_of: dict[Scene, int] = {}
    mods: dict[str, dict[str, Any]] = {}
    seen_base: set[Scene] = set()

    def add_image(scene: Scene) -> int:
        idx = len(objects_img)
        objs = scene_objects(scene)
        objects_img.append(objs)
        labels.append(label_of.setdefault(scene, len(label_of)))
        path = os.path.join(out_images, f"css_{split}_{idx:06d}.png")
        Image.fromarray(render_scene(objs, image_size)).save(path, format="PNG")
        return idx

    for b in range(num_base):
        # In test, every other base scene carries a held-out combo, so >= 1/2 of its queries are "novel".
        force = None
        if split != "train" and b % 2 == 0:
            force = HELD_OUT_COMBOS[int(rng.integers(len(HELD_OUT_COMBOS)))]
        base = _random_scene(rng, combos, force)
        while base in seen_base:
            base = _random_scene(rng, combos, force)
        seen_base.add(base)
        src = add_image(base)
        for edit in _choose_edits(rng, base, combos, k):
            text = _edit_text(base, edit, rng)
            dst = add_image(_apply(base, edit))
            mod = mods.setdefault(text, {"from": [], "to": [], "to_str": text})
            mod["from"].append(src)
            mod["to"].append(dst)
    return {"objects_img": objects_img, "mods": list(mods.values()), "labels": labels}


def generate_css(
    out_dir: str,
    seed: int = 0,
    num_base_scenes: int = 1000,
    edits_per_scene: int = 16,
    image_size: int = 64,
    num_test_base_scenes: int | None = None,
) -> dict[str, Any]:
    """Write a CSS-layout dataset into ``out_dir``; returns the generation record (also in generation.json)."""
    num_test = num_base_scenes if num_test_base_scenes is None else num_test_base_scenes
    bases = {"train": int(num_base_scenes), "test": int(num_test)}
    if min(bases.values()) < 1 or edits_per_scene < 1 or image_size < 8:
        raise ValueError(f"need >= 1 base scene and edit per split and image_size >= 8, got {bases}, "
                         f"edits_per_scene={edits_per_scene}, image_size={image_size}")
    images = os.path.join(out_dir, IMAGES_DIR)
    os.makedirs(images, exist_ok=True)
    data = {}
    for i, split in enumerate(SPLITS):
        rng = np.random.default_rng([int(seed), i])
        data[split] = _generate_split(split, images, rng, bases[split], int(edits_per_scene), int(image_size))
    save_object_npy(os.path.join(out_dir, NPY_NAME), data)
    record = {
        "generator": "datasets.css.generate",
        "seed": int(seed),
        "num_base_scenes": bases,
        "edits_per_scene": int(edits_per_scene),
        "image_size": int(image_size),
        "held_out_combos": [list(c) for c in HELD_OUT_COMBOS],
        "num_images": {s: len(data[s]["objects_img"]) for s in SPLITS},
        "num_queries": {s: sum(len(m["from"]) for m in data[s]["mods"]) for s in SPLITS},
    }
    with open(os.path.join(out_dir, GENERATION_FILE), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
    return record


def default_data_root() -> str:
    """Where embedded datasets live: ``$T2I_DATA_DIR`` or ``~/.cache/t2i_tf``."""
    return os.environ.get("T2I_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "t2i_tf")


def generated_dir_name(seed: int = 0, num_base_scenes: int = 1000, edits_per_scene: int = 16,
                       image_size: int = 64, num_test_base_scenes: int | None = None) -> str:
    """The directory name that identifies one generated configuration."""
    num_test = num_base_scenes if num_test_base_scenes is None else num_test_base_scenes
    return f"css_generated_seed{seed}_b{num_base_scenes}-{num_test}_e{edits_per_scene}_px{image_size}"


def atomic_build(final_dir: str, build: Any) -> str:
    """Run ``build(tmp_dir)`` in a sibling temp dir and rename it to ``final_dir``; reuse it if present."""
    if os.path.isdir(final_dir):
        return final_dir
    parent = os.path.dirname(os.path.abspath(final_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(final_dir) + ".tmp", dir=parent)
    try:
        build(tmp)
        os.rename(tmp, final_dir)
    except OSError:
        if not os.path.isdir(final_dir):  # not a lost race with another process: a real failure
            raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return final_dir


def ensure_css_data(root: str | None = None, seed: int = 0, **sizes: Any) -> str:
    """The embedded default: generate CSS-layout data under ``root`` on first use and return its raw dir."""
    root = root or default_data_root()
    final = os.path.join(root, generated_dir_name(seed, **sizes))
    return atomic_build(final, lambda tmp: generate_css(tmp, seed=seed, **sizes))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m datasets.css.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--out_dir", required=True, help="directory to write the CSS layout into")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num_base_scenes", type=int, default=1000, help="base scenes per split")
    p.add_argument("--num_test_base_scenes", type=int, default=None, help="base scenes in test (default: same)")
    p.add_argument("--edits_per_scene", type=int, default=16)
    p.add_argument("--image_size", type=int, default=64)
    args = p.parse_args(argv)
    try:
        rec = generate_css(args.out_dir, args.seed, args.num_base_scenes, args.edits_per_scene,
                           args.image_size, args.num_test_base_scenes)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"css generated in {args.out_dir}: images {rec['num_images']}, queries {rec['num_queries']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
