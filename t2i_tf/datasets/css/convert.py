"""CSS raw layout (official download or generated) -> TFRecord shards + info.json.

Reads ``css_toy_dataset_novel2_small.dup.npy`` with the restricted unpickler (the
official file is a Python 2 pickle) and ``images/css_{split}_{idx:06d}.png``
(resized to ``image_size``, converted to RGB), streaming one image at a time.

    python -m datasets.css.convert --raw_dir=DIR --out_dir=DIR [--image_size=64]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections import Counter
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image

from t2i_tf.datasets.css.generate import GENERATION_FILE, IMAGES_DIR, NPY_NAME, atomic_build, ensure_css_data
from t2i_tf.datasets.css.objects import parse_objects, text_value
from t2i_tf.data.images import open_image, to_rgb
from t2i_tf.data.css_cells import CODE_RULE, NUM_CELLS, scene_cells
from t2i_tf.data.records import ShardedRecordWriter, bytes_feature, int64_feature, make_example, write_info
from t2i_tf.data.safe_pickle import load_npy
from t2i_tf.errors import UserError
from t2i_tf.files import publish_staging, start_staging

SPLIT_ORDER = ("train", "val", "test")


def _field(container: Any, key: str, where: str) -> Any:
    """``container[key]`` (str or bytes key); a UserError naming the missing key otherwise."""
    if isinstance(container, dict):
        for k in (key, key.encode("ascii")):
            if k in container:
                return container[k]
    raise UserError(f"{where}: missing key '{key}' (not the CSS schema: expected a dict with "
                    f"'objects_img', 'mods' [{{'from', 'to', 'to_str'}}] and optionally 'labels' per split)")


def _splits(data: Any, npy: str) -> dict[str, dict]:
    """The split dicts of the CSS npy, train first."""
    if not isinstance(data, dict):
        raise UserError(f"{npy}: expected a dict of splits ('train', 'test'), got {type(data).__name__}")
    splits = {text_value(k): v for k, v in data.items() if isinstance(v, dict)}
    if "train" not in splits and "test" not in splits:
        raise UserError(f"{npy}: missing key 'train' (expected a dict of splits 'train'/'test', each with "
                        "'objects_img', 'mods' and optionally 'labels')")
    order = [s for s in SPLIT_ORDER if s in splits] + sorted(s for s in splits if s not in SPLIT_ORDER)
    return {s: splits[s] for s in order}


def _encode_image(path: str, image_size: int) -> bytes:
    """PNG bytes of the image at ``path`` as RGB ``image_size`` squared (UnreadableImage / OSError if unreadable)."""
    with open(path, "rb") as f:
        raw = f.read()
    im = open_image(raw, path)
    if im.format == "PNG" and im.mode == "RGB" and im.size == (image_size, image_size):
        return raw
    rgb = to_rgb(im)
    if rgb.size != (image_size, image_size):
        rgb = rgb.resize((image_size, image_size), Image.BILINEAR)
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return out.getvalue()


def _queries(mods: Sequence[Any], where: str) -> Iterator[tuple[int, Any, Any, str]]:
    """(mod_id, source, target, text) for every from/to pair; unpaired entries yield None targets."""
    for mod_id, mod in enumerate(mods):
        w = f"{where} mods[{mod_id}]"
        sources, targets = _id_list(_field(mod, "from", w), f"{w} 'from'"), _id_list(_field(mod, "to", w), f"{w} 'to'")
        raw_text = _field(mod, "to_str", w)
        text = text_value(raw_text) if isinstance(raw_text, (str, bytes)) else None  # None: counted, not "None"
        for j in range(max(len(sources), len(targets))):
            yield mod_id, sources[j] if j < len(sources) else None, targets[j] if j < len(targets) else None, text


def _id_list(value: Any, where: str) -> list:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        raise UserError(f"{where}: expected a list of image indices, got {type(value).__name__}")
    return list(value)


def _as_id(value: Any, n: int) -> int | None:
    """An image index in [0, n), or None when it is not one."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)  # 3.0 is index 3
    if not isinstance(value, (int, np.integer)):
        return None  # 1.7, "3", None: not an index (it used to be truncated to one)
    i = int(value)
    return i if 0 <= i < n else None


def _labels(values: Any, where: str) -> list[int]:
    """The 'labels' list as int64-range ints; a UserError naming the first that is not one."""
    if not isinstance(values, (list, tuple, np.ndarray)):
        raise UserError(f"{where}: 'labels' must be a list of ints, got {type(values).__name__}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or not -2**63 <= int(v) < 2**63:
            raise UserError(f"{where}: labels[{i}] must be an int64, got {v!r}")
        out.append(int(v))
    return out


def _convert_split(split: str, sd: dict, raw_dir: str, out_dir: str, image_size: int,
                   per_shard: int, npy: str) -> tuple[dict[str, int], Counter]:
    """Write one split's image and query shards; returns its counts and skip reasons."""
    where = f"{npy} split '{split}'"
    objects_img = _field(sd, "objects_img", where)
    if not isinstance(objects_img, (list, tuple, np.ndarray)):
        raise UserError(f"{where}: 'objects_img' must be a list of object lists, got {type(objects_img).__name__}")
    num_ids = len(objects_img)
    mods = _field(sd, "mods", where)
    if not isinstance(mods, (list, tuple, np.ndarray)):
        raise UserError(f"{where}: 'mods' must be a list of {{'from', 'to', 'to_str'}} dicts, got {type(mods).__name__}")
    labels_key = "labels" if "labels" in sd or b"labels" in sd else None
    labels = _labels(_field(sd, "labels", where), where) if labels_key else list(range(num_ids))
    if len(labels) != num_ids:
        raise UserError(f"{where}: 'labels' has {len(labels)} entries but 'objects_img' has {num_ids}")
    skipped: Counter = Counter()
    bad: set[int] = set()
    images_dir = os.path.join(raw_dir, IMAGES_DIR)

    def cells_of(i: int) -> list[int]:
        """The image's scene cell codes, or 9 x -1 (counted) when its objects do not fit the 3x3 cell code."""
        try:
            return scene_cells(parse_objects(objects_img[i], f"{where} image {i}"))
        except (UserError, ValueError):
            skipped["images_without_scene_cells"] += 1
            return [-1] * NUM_CELLS

    with ShardedRecordWriter(out_dir, f"images_{split}", per_shard) as w:
        for i in range(num_ids):
            path = os.path.join(images_dir, f"css_{split}_{i:06d}.png")
            if not os.path.isfile(path):
                skipped["missing_png"] += 1
                bad.add(i)
                continue
            try:
                png = _encode_image(path, image_size)
            except Exception:  # noqa: BLE001 -- any decode failure (PIL raises OSError, SyntaxError, ...) skips it
                skipped["corrupt_png"] += 1
                bad.add(i)
                continue
            w.write(make_example({"image": bytes_feature(png), "image_id": int64_feature(i),
                                  "label": int64_feature(labels[i]), "scene_cells": int64_feature(cells_of(i))}))
        num_images = w.count
    with ShardedRecordWriter(out_dir, f"queries_{split}", per_shard) as w:
        for mod_id, src, dst, text in _queries(mods, where):
            if src is None or dst is None:
                skipped["query_unpaired"] += 1
                continue
            s, t = _as_id(src, num_ids), _as_id(dst, num_ids)
            if s is None or t is None:
                skipped["query_id_out_of_range"] += 1
                continue
            if text is None:
                skipped["query_text_not_a_string"] += 1
                continue
            if s in bad or t in bad:
                skipped["query_image_skipped"] += 1
                continue
            w.write(make_example({
                "source_id": int64_feature(s), "target_id": int64_feature(t), "text": bytes_feature(text),
                "source_label": int64_feature(labels[s]), "target_label": int64_feature(labels[t]),
                "mod_id": int64_feature(mod_id),
            }))
        num_queries = w.count
    kept_labels = {labels[i] for i in range(num_ids) if i not in bad}
    counts = {"num_images": num_images, "num_image_ids": num_ids, "num_queries": num_queries,
              "num_labels": len(kept_labels), "num_mods": len(mods)}
    return counts, skipped


def convert_css(raw_dir: str, out_dir: str, image_size: int = 64, examples_per_shard: int = 4096) -> dict:
    """Convert a CSS raw directory to TFRecords in ``out_dir``; returns the info dict written to info.json."""
    npy = os.path.join(raw_dir, NPY_NAME)
    if not os.path.isfile(npy):
        raise UserError(f"{npy} not found: expected the CSS annotation file '{NPY_NAME}' in {raw_dir} "
                        "(the official CSS download, or run python -m datasets.css.generate)")
    images_dir = os.path.join(raw_dir, IMAGES_DIR)
    if not os.path.isdir(images_dir):
        raise UserError(f"{images_dir} not found: expected a directory of 'css_{{split}}_{{idx:06d}}.png' "
                        f"images next to {NPY_NAME}")
    if image_size < 1:
        raise UserError(f"--image_size must be positive, got {image_size}")
    data = load_npy(npy)
    info: dict[str, Any] = {"dataset": "css", "image_size": int(image_size), "splits": {}, "skipped": {},
                            "raw_dir": os.path.abspath(raw_dir), "texts_vocabulary_source": "train",
                            "image_features": ["image", "image_id", "label", "scene_cells"],
                            "scene_cells_rule": CODE_RULE + "; -1 x 9 = not codable (counted in skipped)",
                            "query_features": ["source_id", "target_id", "text", "source_label",
                                               "target_label", "mod_id"]}
    staging = start_staging(out_dir)  # out_dir keeps its previous records until this conversion has finished
    for split, sd in _splits(data, npy).items():
        counts, skipped = _convert_split(split, sd, raw_dir, staging, image_size, examples_per_shard, npy)
        info["splits"][split] = counts
        info["skipped"][split] = dict(sorted(skipped.items()))
    gen = os.path.join(raw_dir, GENERATION_FILE)
    if os.path.isfile(gen):
        with open(gen) as f:
            info["generation"] = json.load(f)
    write_info(staging, info)
    publish_staging(staging, out_dir)
    print(_summary(info))
    return info


def _summary(info: dict) -> str:
    """One line: counts per split and what was skipped."""
    parts = []
    for split, c in info["splits"].items():
        skipped = ", ".join(f"{n} {r}" for r, n in info["skipped"][split].items()) or "nothing skipped"
        parts.append(f"{split}: {c['num_images']} images, {c['num_queries']} queries ({skipped})")
    return "css converted: " + "; ".join(parts)


def prepare_default_css(data_root: str | None = None, seed: int = 0, image_size: int = 64, **sizes: Any) -> str:
    """Generate (once) and convert (once) the embedded default CSS data; returns the TFRecord dir."""
    raw = ensure_css_data(data_root, seed=seed, image_size=image_size, **sizes)
    final = raw.rstrip(os.sep) + "_tfrecords_v2"  # v2: gallery images carry scene_cells
    return atomic_build(final, lambda tmp: convert_css(raw, tmp, image_size=image_size))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints a UserError on one line and exits non-zero."""
    p = argparse.ArgumentParser(prog="python -m datasets.css.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("--raw_dir", required=True, help="dir with the CSS npy and images/")
    p.add_argument("--out_dir", required=True, help="where to write TFRecord shards and info.json")
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--examples_per_shard", type=int, default=4096)
    args = p.parse_args(argv)
    try:
        convert_css(args.raw_dir, args.out_dir, args.image_size, args.examples_per_shard)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
