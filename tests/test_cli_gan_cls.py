"""End-to-end: main.py --model=gan_cls on tiny captioned CSS: train, export, generate (a subprocess, as a user
runs it), eval, SRCNN upscaling and the errors of each mode, all rebuilt from the workdir's config.json."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFont

from t2i_tf.eval.sample_grid import LINE_HEIGHT, PAD, wrap_text
from tests.cli_runner import run_cli, run_main

CAPTIONS = ["a large red circle at the top left", "a small blue triangle in the center"]


@pytest.fixture(scope="module")
def run(captioned_css, tmp_path_factory):
    """(records, workdir, train output) of a 2-step test-preset run whose --ngf differs from the preset."""
    records = captioned_css[16]
    workdir = str(tmp_path_factory.mktemp("gan_cls_cli") / "run")
    proc = run_cli("--model=gan_cls", "--preset=test", f"--data_dir={records}", f"--workdir={workdir}", "--num_iters=2",
                   "--ngf=4")
    return records, workdir, proc


def base(run):
    return ["--model=gan_cls", f"--workdir={run[1]}"]  # no preset, no data dir: all from config.json


def test_train_ends_with_an_eval_and_saves_only_the_models_settings(run):
    _, workdir, proc = run
    assert "| eval |" in proc.stdout and "d_real" in proc.stdout
    saved = json.load(open(os.path.join(workdir, "config.json")))
    assert saved["model"] == "gan_cls" and saved["config"]["ngf"] == 4 and saved["config"]["preset"] == "test"
    from configs import gan_cls

    assert set(saved["config"]) == set(gan_cls.SCHEMA.fields) | {"data_dir", "preset"}


def _caption_band(caption: str, width: int) -> np.ndarray:
    """The pixels captioned_grid writes for ``caption`` under a row ``width`` px wide."""
    font = ImageFont.load_default()
    lines = wrap_text(caption, width - 2 * PAD, font)
    band = Image.new("RGB", (width, len(lines) * LINE_HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text((PAD, i * LINE_HEIGHT), line, fill=(0, 0, 0), font=font)
    return np.asarray(band)


def test_generate_sheet_holds_the_exports_images_and_the_captions(run, tmp_path):
    export_dir = str(tmp_path / "saved")
    proc = run_cli(*base(run), "--mode=export", f"--export_dir={export_dir}")
    assert "signatures generate" in proc.stdout
    texts = [c for c in CAPTIONS for _ in range(3)]  # each caption 3 times, as --num_samples=3 draws them
    generate = tf.saved_model.load(export_dir).signatures["generate"]
    exported = generate(text=tf.constant(texts), seed=tf.constant(3, tf.int64))["images"].numpy()
    assert exported.shape == (6, 16, 16, 3) and exported.dtype == np.uint8
    # The export says how many words of each text it knows: 0 for a text the CLI and the demo refuse.
    known = generate(text=tf.constant(["a large zzz", "zzz qqq", ""]), seed=tf.constant(0, tf.int64))["known_words"]
    assert known.numpy().tolist() == [2, 0, 0]

    sheet_path = str(tmp_path / "sheet.png")
    proc = run_main(*base(run), "--mode=generate", f"--text={' | '.join(CAPTIONS)}", "--num_samples=3", "--seed=3",
                    f"--output={sheet_path}")
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "output": sheet_path, "step": 2, "images": [2, 3, 16, 16, 3], "captions": CAPTIONS, "seed": 3}
    sheet = np.asarray(Image.open(sheet_path).convert("RGB"))
    cell = 64  # 16 px samples are shown 4x (nearest neighbour)
    width = 3 * cell + 4 * PAD
    assert sheet.shape[1] == width
    first_row = [sheet[PAD:PAD + cell:4, PAD + c * (cell + PAD):PAD + c * (cell + PAD) + cell:4] for c in range(3)]
    np.testing.assert_array_equal(np.stack(first_row), exported[:3])  # same noise, same images as the export
    band = _caption_band(CAPTIONS[0], width)
    y = PAD + cell + PAD
    np.testing.assert_array_equal(sheet[y:y + band.shape[0]], band)  # the first caption, under its row


def test_eval_writes_the_metrics_json(run):
    _, workdir, _ = run
    proc = run_cli(*base(run), "--mode=eval", "--eval_images=12")
    metrics_path = os.path.join(workdir, "eval", "generator_metrics_step2.json")
    assert f"generator metrics at step 2 -> {metrics_path}" in proc.stdout
    record = json.load(open(metrics_path))
    assert record["step"] == 2 and record["metrics"]["num_images"] == 12
    assert record["protocol"]["text_encoder"] == "bilstm"
    # 12 images leave fewer than 99 captions of other classes: R-precision ranks among those there are, and says so.
    k = record["protocol"]["r_precision"]["mismatched_captions"]
    assert 1 <= k < 99 and "r_precision" in record["metrics"]
    assert any(f"among {k} mismatched captions, not 99" in note for note in record["protocol"]["notes"])


def test_generate_upscaled_with_srcnn(run, tmp_path):
    records = run[0]
    srcnn_dir = str(tmp_path / "srcnn")  # x4: 4 -> 16 px on the same records, then the GAN's 16 -> 64 px
    run_cli("--model=srcnn", "--preset=test", f"--data_dir={records}", f"--workdir={srcnn_dir}", "--num_iters=2")
    big_path = str(tmp_path / "big.png")
    proc = run_cli(*base(run), "--mode=generate", f"--text={CAPTIONS[0]}", "--num_samples=2", "--upscale",
                   f"--srcnn_workdir={srcnn_dir}", f"--output={big_path}")
    assert "upscaled x4" in proc.stdout and '"images": [1, 2, 64, 64, 3]' in proc.stdout
    assert np.asarray(Image.open(big_path)).shape[1] == 2 * 64 + 3 * PAD


@pytest.mark.parametrize("args, message", [
    (["--mode=generate", "--text=zzz qqq"], "error: no word of the caption 'zzz qqq'"),
    (["--mode=generate", "--output=x.jpg"], "error: --output must be a .png path"),
    (["--mode=retrieve", "--image=x.png", "--text=x"], "error: --mode=retrieve is for retrieval models (tirg), not --model=gan_cls"),
    (["--mode=generate", "--image=x.png"], "error: --image is for models that modify an image (stackgan_tirg)"),
    (["--mode=export", "--top_k=3"], "error: --top_k is an option of --mode=retrieve, not --mode=export"),
    (["--mode=eval", "--composition=concat"], "error: --composition is not a setting of --model=gan_cls"),
    (["--mode=eval", "--ngf=8", "--minibatch_discrimination"], "checkpoint trained with --ngf=4 --minibatch_discrimination=False; got --ngf=8"),
    (["--optimizer=rmsprop"], "checkpoint trained with --optimizer=adam; got --optimizer=rmsprop"),
])
def test_mode_errors(run, args, message):
    proc = run_cli(*base(run), *args, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unknown_words_are_named_and_another_models_workdir_refused(run, tmp_path):
    proc = run_cli(*base(run), "--mode=generate", "--text=a large zzz", f"--output={tmp_path / 's.png'}")
    assert "note: not in the vocabulary (read as unknown): zzz  [a large zzz]" in proc.stderr
    proc = run_cli("--model=tirg", f"--workdir={run[1]}", "--mode=export", check=False)
    assert proc.returncode == 2 and "holds a --model=gan_cls run" in proc.stderr


def test_auto_text_encoder_does_not_switch_on_a_trained_workdir(run, tmp_path):
    """A BiLSTM workdir pointed at records with embeddings (and an embeddings workdir at records without) used to
    switch --text_encoder=auto silently and die restoring with a shape ValueError."""
    from t2i_tf.datasets.cub.convert import convert_cub
    from tests.fixtures_t2i import make_cub

    fx = make_cub(str(tmp_path / "raw"), stackgan=True, embeddings=True, test_classes=(3, 4))  # 2 test classes
    cub = str(tmp_path / "cub")
    convert_cub(fx.cub_dir, cub, embeddings_dir=fx.birds_dir, max_side=16)
    for mode in ("train", "eval"):
        proc = run_cli(*base(run), f"--mode={mode}", f"--data_dir={cub}", "--num_iters=3", check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "--text_encoder=auto conditioned on a BiLSTM" in proc.stderr
        assert "auto would now choose --text_encoder=pretrained_embeddings" in proc.stderr
    emb_run = str(tmp_path / "emb_run")
    run_cli("--model=gan_cls", "--preset=test", "--image_size=16", f"--data_dir={cub}", f"--workdir={emb_run}",
            "--num_iters=1")
    proc = run_cli("--model=gan_cls", f"--workdir={emb_run}", "--mode=eval", f"--data_dir={run[0]}", check=False)
    assert proc.returncode == 2 and "conditioned on the records' precomputed embeddings" in proc.stderr
    assert "auto would now choose --text_encoder=bilstm" in proc.stderr
    # the records each was trained on still work
    proc = run_cli("--model=gan_cls", f"--workdir={emb_run}", "--mode=export", f"--export_dir={tmp_path / 'e'}")
    assert "signatures generate_from_embedding" in proc.stdout
