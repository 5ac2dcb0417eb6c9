"""End-to-end: main.py chains the multi-run generators (DAMSM -> AttnGAN, StackGAN Stage-I -> Stage-II,
TIRG -> stackgan_tirg) on tiny generated data and evaluates each with --mode=eval."""

import json
import os

from tests.test_cli import run_main


def read_eval_json(workdir):
    folder = os.path.join(workdir, "eval")
    (name,) = [f for f in os.listdir(folder) if f.startswith("generator_metrics_step")]
    with open(os.path.join(folder, name)) as f:
        return json.load(f)


def test_damsm_then_attngan(tiny_css, tmp_path):
    from datasets.css.captions import convert_css_captions

    raw, _ = tiny_css
    records = str(tmp_path / "captions")
    convert_css_captions(raw, records, image_size=16)
    damsm, attngan = str(tmp_path / "damsm"), str(tmp_path / "attngan")
    proc = run_main("--model=damsm", "--preset=test", f"--data_dir={records}", f"--workdir={damsm}")
    assert "words_loss" in proc.stdout
    run_main("--model=attngan", "--preset=test", f"--data_dir={records}", f"--workdir={attngan}",
             f"--damsm_workdir={damsm}", "--rgb_skip", "--spectral_norm")
    run_main("--model=attngan", f"--workdir={attngan}", "--mode=eval", "--eval_images=10")
    result = read_eval_json(attngan)
    assert result["step"] == 2 and result["protocol"]["model"] == "attngan"
    assert result["protocol"]["damsm_workdir"] == os.path.abspath(damsm)
    out = str(tmp_path / "sheet.png")
    proc = run_main("--model=attngan", f"--workdir={attngan}", "--mode=generate", "--text=a red circle|a blue square",
                    "--num_samples=2", f"--output={out}")
    assert os.path.isfile(out) and json.loads(proc.stdout.strip().splitlines()[-1])["images"] == [2, 2, 16, 16, 3]


def test_stackgan_stage1_then_stage2(tiny_css, tmp_path):
    from datasets.css.captions import convert_css_captions

    raw, _ = tiny_css
    px16, px32 = str(tmp_path / "px16"), str(tmp_path / "px32")
    convert_css_captions(raw, px16, image_size=16)
    convert_css_captions(raw, px32, image_size=32)
    s1, s2 = str(tmp_path / "s1"), str(tmp_path / "s2")
    run_main("--model=stackgan", "--preset=test", f"--data_dir={px16}", f"--workdir={s1}")
    run_main("--model=stackgan", "--preset=test", "--stage=2", f"--stage1_workdir={s1}", f"--data_dir={px32}",
             f"--workdir={s2}")
    run_main("--model=stackgan", f"--workdir={s2}", "--mode=eval", "--eval_images=10")
    result = read_eval_json(s2)
    assert result["protocol"]["stage"] == 2 and result["protocol"]["image_size"] == 32


def test_tirg_then_stackgan_tirg(tiny_css, tmp_path):
    from PIL import Image

    raw, records = tiny_css
    tirg, gen = str(tmp_path / "tirg"), str(tmp_path / "gen")
    run_main("--model=tirg", "--preset=test", f"--data_dir={records}", f"--workdir={tirg}")
    run_main("--model=stackgan_tirg", "--preset=test", f"--data_dir={records}", f"--workdir={gen}",
             f"--tirg_workdir={tirg}")
    run_main("--model=stackgan_tirg", f"--workdir={gen}", "--mode=eval", "--eval_images=10")
    result = read_eval_json(gen)
    assert result["protocol"]["model"] == "stackgan_tirg" and result["protocol"]["tirg_workdir"] == os.path.abspath(tirg)
    source = os.path.join(raw, "images", "css_test_000000.png")
    out = str(tmp_path / "edit.png")
    run_main("--model=stackgan_tirg", f"--workdir={gen}", "--mode=generate", f"--image={source}",
             "--text=make top-left circle red", "--num_samples=2", f"--output={out}")
    assert Image.open(out).size[0] > 0
