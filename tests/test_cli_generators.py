"""End-to-end: main.py chains the multi-run generators (DAMSM -> AttnGAN, StackGAN Stage-I -> Stage-II,
TIRG -> stackgan_tirg) on tiny generated data and evaluates each with --mode=eval."""

import json
import os

from tests.cli_runner import run_cli


def read_eval_json(workdir):
    folder = os.path.join(workdir, "eval")
    (name,) = [f for f in os.listdir(folder) if f.startswith("generator_metrics_step")]
    with open(os.path.join(folder, name)) as f:
        return json.load(f)


def test_damsm_then_attngan(captioned_css, trained_damsm, tmp_path):
    records, damsm, attngan = captioned_css[16], trained_damsm, str(tmp_path / "attngan")
    run_cli("--model=attngan", "--preset=test", f"--data_dir={records}", f"--workdir={attngan}",
             f"--damsm_workdir={damsm}", "--rgb_skip", "--spectral_norm")
    run_cli("--model=attngan", f"--workdir={attngan}", "--mode=eval", "--eval_images=10")
    result = read_eval_json(attngan)
    assert result["step"] == 2 and result["protocol"]["model"] == "attngan"
    assert result["protocol"]["damsm_workdir"] == os.path.abspath(damsm)
    out = str(tmp_path / "sheet.png")
    proc = run_cli("--model=attngan", f"--workdir={attngan}", "--mode=generate", "--text=a red circle|a blue square",
                    "--num_samples=2", f"--output={out}")
    assert os.path.isfile(out) and json.loads(proc.stdout.strip().splitlines()[-1])["images"] == [2, 2, 16, 16, 3]


def test_stackgan_stage1_then_stage2(captioned_css, trained_stage1, tmp_path):
    px32, s1, s2 = captioned_css[32], trained_stage1, str(tmp_path / "s2")
    run_cli("--model=stackgan", "--preset=test", "--stage=2", f"--stage1_workdir={s1}", f"--data_dir={px32}",
             f"--workdir={s2}")
    run_cli("--model=stackgan", f"--workdir={s2}", "--mode=eval", "--eval_images=10")
    result = read_eval_json(s2)
    assert result["protocol"]["stage"] == 2 and result["protocol"]["image_size"] == 32


def test_tirg_then_stackgan_tirg(tiny_css, trained_tirg, tmp_path):
    from PIL import Image

    raw, records = tiny_css
    tirg, gen = trained_tirg, str(tmp_path / "gen")
    run_cli("--model=stackgan_tirg", "--preset=test", f"--data_dir={records}", f"--workdir={gen}",
             f"--tirg_workdir={tirg}")
    run_cli("--model=stackgan_tirg", f"--workdir={gen}", "--mode=eval", "--eval_images=10")
    result = read_eval_json(gen)
    assert result["protocol"]["model"] == "stackgan_tirg" and result["protocol"]["tirg_workdir"] == os.path.abspath(tirg)
    source = os.path.join(raw, "images", "css_test_000000.png")
    out = str(tmp_path / "edit.png")
    run_cli("--model=stackgan_tirg", f"--workdir={gen}", "--mode=generate", f"--image={source}",
             "--text=make top-left circle red", "--num_samples=2", f"--output={out}")
    sheet = Image.open(out)
    # one row: [source, 2 samples] at 16 px shown 4x, with the PAD margins
    assert sheet.size[0] == 3 * 64 + 4 * 4
