"""End-to-end: main.py --model=gan_cls on tiny captioned CSS (train, export, load the generator elsewhere)."""

import os
import subprocess
import sys

import numpy as np

from tests.test_cli import run_main


def test_gan_cls_train_export_generate(tiny_css, tmp_path):
    from datasets.css.captions import convert_css_captions

    raw, _ = tiny_css
    records = str(tmp_path / "captions")
    convert_css_captions(raw, records, image_size=16)
    workdir = str(tmp_path / "run")
    base = ["--model=gan_cls", "--preset=test", f"--data_dir={records}", f"--workdir={workdir}"]
    proc = run_main(*base, "--num_iters=2")
    assert "| eval |" in proc.stdout and "d_real" in proc.stdout
    export_dir = str(tmp_path / "saved")
    proc = run_main(*base, "--mode=export", f"--export_dir={export_dir}")
    assert "generate" in proc.stdout
    script = f"""
import numpy as np, tensorflow as tf
m = tf.saved_model.load({export_dir!r})
out = m.signatures["generate"](text=tf.constant(["a large red circle at the top left"]), seed=tf.constant(3, tf.int64))
np.save({str(tmp_path / 'img.npy')!r}, out["images"].numpy())
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    image = np.load(tmp_path / "img.npy")
    assert image.shape == (1, 16, 16, 3) and image.dtype == np.uint8
    proc = run_main(*base, "--mode=retrieve", "--image=x.png", "--text=x", check=False)
    assert proc.returncode == 2 and "--mode=retrieve is for --model=tirg" in proc.stderr
