"""End-to-end on anime faces from tags: the generated fixture in the deep_t2i layout -> converter -> DAMSM and
AttnGAN (the anime_test presets: spectral norm, self-attention, RGB skips and EMA on) through main.py -> eval,
export, and generation from tags, in this process and from the export in a fresh one; bad tags are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.cli_runner import run_cli
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(records, damsm workdir, attngan workdir, fixture) after 2 training steps of each anime_test preset."""
    from t2i_tf.datasets.anime.convert import convert_anime
    from t2i_tf.datasets.anime.generate import generate_anime

    root = tmp_path_factory.mktemp("anime_cli")
    raw, records = str(root / "raw"), str(root / "records")
    generate_anime(raw, num_images=40, image_size=32, seed=3, num_hair=2, num_eyes=2)
    convert_anime(raw, records, image_size=32, test_fraction=0.3)
    damsm, attngan = str(root / "damsm"), str(root / "attngan")
    run_cli("--model=damsm", "--preset=anime_test", f"--data_dir={records}", f"--workdir={damsm}")
    run_cli("--model=attngan", "--preset=anime_test", f"--data_dir={records}", f"--workdir={attngan}",
            f"--damsm_workdir={damsm}")
    return records, damsm, attngan, raw


def test_the_anime_presets_train_with_the_modern_options(runs):
    _, damsm, attngan, _ = runs
    with open(os.path.join(attngan, "config.json")) as f:
        config = json.load(f)["config"]
    assert config["preset"] == "anime_test" and config["dataset"] == "anime"
    assert config["spectral_norm"] and config["self_attention"] and config["rgb_skip"] and config["ema_decay"] > 0
    assert not config["random_crop"] and config["random_flip"]
    with open(os.path.join(damsm, "vocab.txt")) as f:
        words = f.read().split()
    assert {"hair", "eyes"} <= set(words) and len(words) <= 6  # tags only: 2 hair + 2 eye colours + hair, eyes
    with open(os.path.join(attngan, "metrics.jsonl")) as f:
        metrics = [json.loads(line) for line in f]
    assert metrics[-1]["step"] == 2


def test_eval_and_generate_from_tags(runs, tmp_path):
    attngan = runs[2]
    run_cli("--model=attngan", f"--workdir={attngan}", "--mode=eval", "--eval_images=10")
    folder = os.path.join(attngan, "eval")
    (name,) = [f for f in os.listdir(folder) if f.startswith("generator_metrics_step")]
    with open(os.path.join(folder, name)) as f:
        result = json.load(f)
    assert result["step"] == 2 and 0.0 <= result["metrics"]["r_precision"] <= 1.0
    assert result["protocol"]["eval_split"] == "test" and result["protocol"]["model"] == "attngan"
    out = str(tmp_path / "sheet.png")
    proc = run_cli("--model=attngan", f"--workdir={attngan}", "--mode=generate",
                   "--text=orange hair black eyes|white hair orange eyes", "--num_samples=2", f"--output={out}")
    assert os.path.isfile(out) and json.loads(proc.stdout.strip().splitlines()[-1])["images"] == [2, 2, 16, 16, 3]
    bad = run_cli("--model=attngan", f"--workdir={attngan}", "--mode=generate", "--text=zzz qqq", check=False)
    assert bad.returncode != 0 and "no word of the caption 'zzz qqq' is in the DAMSM vocabulary" in bad.stderr


def test_export_generates_from_tags_in_a_fresh_process(runs):
    _, _, attngan, raw = runs
    run_cli("--model=attngan", f"--workdir={attngan}", "--mode=export")
    export = os.path.join(attngan, "export")
    script = ("import json, sys, tensorflow as tf\n"
              "from t2i_tf.datasets.anime.colour_check import colour_check\n"
              "m = tf.saved_model.load(sys.argv[1])\n"
              "tags = tf.constant(['orange hair black eyes', 'white hair black eyes'])\n"
              "out = m.signatures['generate'](text=tags, seed=tf.constant(7, tf.int64))\n"
              "again = m.signatures['generate'](text=tags, seed=tf.constant(7, tf.int64))\n"
              "print(out['images'].shape, out['images'].dtype.name, out['known_words'].numpy().tolist(),"
              " bool(tf.reduce_all(out['images'] == again['images'])))\n"
              "print(json.dumps(colour_check(sys.argv[1], sys.argv[2], per_tags=2)))\n")
    proc = subprocess.run([sys.executable, "-c", script, export, raw], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shapes, colours = proc.stdout.strip().splitlines()[-2:]
    assert shapes == "(2, 16, 16, 3) uint8 [4, 4] True"
    result = json.loads(colours)
    assert result["generated"]["images"] == 2 * 4 and 0.0 <= result["generated"]["both"] <= 1.0
    assert result["chance"] == {"hair": 0.5, "eyes": 0.5, "both": 0.25}


def test_bad_tag_files_are_clear_errors(tmp_path, capsys):
    from t2i_tf.datasets.anime.convert import main

    raw = tmp_path / "raw"
    (raw / "imgs").mkdir(parents=True)
    (raw / "tags.csv").write_text("0.jpg,blue hair red eyes\n1.jpg blue hair\n")
    assert main(["--anime_dir", str(raw), "--out_dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {raw / 'tags.csv'} line 2: expected '<image>,<tags>' such as '0.jpg,blue hair red eyes'; "
                   "got '1.jpg blue hair' (no comma)")
