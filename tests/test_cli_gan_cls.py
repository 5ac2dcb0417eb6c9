"""End-to-end: main.py --model=gan_cls on tiny captioned CSS (train, export, load the generator elsewhere)."""

import json
import os
import subprocess
import sys

import numpy as np

from tests.test_cli import run_main


def test_gan_cls_train_export_generate(tiny_css, tmp_path):
    from datasets.css.captions import convert_css_captions
    from PIL import Image

    from t2i_tf.eval.sample_grid import PAD

    raw, _ = tiny_css
    records = str(tmp_path / "captions")
    convert_css_captions(raw, records, image_size=16)
    workdir = str(tmp_path / "run")
    # --ngf differs from the preset: later modes must rebuild it from the workdir's config.json.
    proc = run_main("--model=gan_cls", "--preset=test", f"--data_dir={records}", f"--workdir={workdir}",
                    "--num_iters=2", "--ngf=4")
    assert "| eval |" in proc.stdout and "d_real" in proc.stdout
    base = ["--model=gan_cls", f"--workdir={workdir}"]  # no preset, no data dir: all from config.json
    export_dir = str(tmp_path / "saved")
    proc = run_main(*base, "--mode=export", f"--export_dir={export_dir}")
    assert "generate" in proc.stdout
    captions = ["a large red circle at the top left", "a small blue triangle in the center"]
    script = f"""
import numpy as np, tensorflow as tf
m = tf.saved_model.load({export_dir!r})
texts = [c for c in {captions!r} for _ in range(3)]  # each caption 3 times, as --num_samples=3 draws them
out = m.signatures["generate"](text=tf.constant(texts), seed=tf.constant(3, tf.int64))
np.save({str(tmp_path / 'img.npy')!r}, out["images"].numpy())
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    exported = np.load(tmp_path / "img.npy")
    assert exported.shape == (6, 16, 16, 3) and exported.dtype == np.uint8

    sheet_path = str(tmp_path / "sheet.png")
    proc = run_main(*base, "--mode=generate", f"--text={' | '.join(captions)}", "--num_samples=3", "--seed=3",
                    f"--output={sheet_path}")
    assert f'"output": "{sheet_path}"' in proc.stdout
    sheet = np.asarray(Image.open(sheet_path).convert("RGB"))
    cell = 64  # 16 px samples are shown 4x (nearest neighbour)
    assert sheet.shape[1] == 3 * cell + 4 * PAD
    first_row = [sheet[PAD:PAD + cell:4, PAD + c * (cell + PAD):PAD + c * (cell + PAD) + cell:4] for c in range(3)]
    np.testing.assert_array_equal(np.stack(first_row), exported[:3])  # same noise, same images as the export
    caption_band = sheet[PAD + cell + PAD:PAD + cell + PAD + 10]
    assert (caption_band < 128).any()  # the caption is written under its row

    proc = run_main(*base, "--mode=eval", "--eval_images=12")
    metrics_path = os.path.join(workdir, "eval", "generator_metrics_step2.json")
    assert f"generator metrics at step 2 -> {metrics_path}" in proc.stdout
    record = json.load(open(metrics_path))
    assert record["step"] == 2 and record["metrics"]["num_images"] == 12
    assert record["protocol"]["text_encoder"] == "bilstm" and any("R-precision" in s for s in record["protocol"]["skipped"])

    # SRCNN on the same records (x4: 4 -> 16 px), then the GAN's samples upscaled 16 -> 64 px.
    srcnn_dir = str(tmp_path / "srcnn")
    run_main("--model=srcnn", "--preset=test", f"--data_dir={records}", f"--workdir={srcnn_dir}", "--num_iters=2")
    big_path = str(tmp_path / "big.png")
    proc = run_main(*base, "--mode=generate", f"--text={captions[0]}", "--num_samples=2", "--upscale",
                    f"--srcnn_workdir={srcnn_dir}", f"--output={big_path}")
    assert "upscaled x4" in proc.stdout and '"images": [1, 2, 64, 64, 3]' in proc.stdout
    assert np.asarray(Image.open(big_path)).shape[1] == 2 * 64 + 3 * PAD

    proc = run_main(*base, "--mode=generate", "--text=zzz qqq", check=False)
    assert proc.returncode == 2 and "no word of the caption 'zzz qqq'" in proc.stderr
    proc = run_main(*base, "--mode=generate", "--text=a large purple zzz", f"--output={sheet_path}")
    assert "not in the vocabulary (read as unknown): zzz" in proc.stderr
    proc = run_main(*base, "--mode=generate", "--output=x.jpg", check=False)
    assert proc.returncode == 2 and "--output must be a .png path" in proc.stderr
    proc = run_main("--model=tirg", f"--workdir={workdir}", "--mode=export", check=False)
    assert proc.returncode == 2 and "holds a --model=gan_cls run" in proc.stderr
    proc = run_main(*base, "--mode=retrieve", "--image=x.png", "--text=x", check=False)
    assert proc.returncode == 2 and "--mode=retrieve is for retrieval models (tirg), not --model=gan_cls" in proc.stderr
