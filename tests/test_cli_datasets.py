"""main.py on CUB records: default workdirs of their own (not the CSS runs') and the dataset's settings."""

import json
import os

import pytest

from t2i_tf.datasets.cub.convert import convert_cub
from tests.cli_runner import run_cli
from tests.fixtures_t2i import make_cub


@pytest.fixture(scope="module")
def cub_records(tmp_path_factory):
    root = tmp_path_factory.mktemp("cub_cli")
    fx = make_cub(str(root / "raw"), reed=True, test_classes=(3, 4))
    out = str(root / "records")
    convert_cub(fx.cub_dir, out, max_side=16)
    return out


def test_cub_runs_get_their_own_default_workdir_and_flips(cub_records, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = run_cli("--model=gan_cls", "--preset=test", "--image_size=16", f"--data_dir={cub_records}", "--num_iters=1")
    assert "note: cub records: --random_flip=True (the --preset=test value False is for CSS" in proc.stdout
    saved = json.load(open(tmp_path / "runs" / "gan_cls_cub" / "config.json"))["config"]
    assert saved["random_flip"] is True and not os.path.exists(tmp_path / "runs" / "gan_cls")
    # a resumed run keeps what it was trained with; a flag given wins over the dataset's choice
    proc = run_cli("--model=gan_cls", "--image_size=16", f"--data_dir={cub_records}", "--num_iters=2")
    assert "note: cub records" not in proc.stdout and "from step 1" in proc.stdout
    run_cli("--model=gan_cls", "--preset=test", "--image_size=16", f"--data_dir={cub_records}", "--num_iters=1",
            "--random_flip=false", f"--workdir={tmp_path / 'noflip'}")
    assert json.load(open(tmp_path / "noflip" / "config.json"))["config"]["random_flip"] is False


def test_css_layout_encoders_of_the_cpu_presets_turn_back_on_other_datasets(cub_records, tmp_path, monkeypatch):
    """The cpu presets' word slots read captions as CSS grid layouts; on CUB a new run uses auto instead."""
    monkeypatch.chdir(tmp_path)
    tiny = ("--image_size=16", "--batch_size=4", "--ngf=4", "--ndf=4", "--z_dim=4", "--proj_dim=4", "--text_dim=9",
            "--text_embed_dim=4", "--text_hidden_dim=4", "--encoder_width=4", "--eval_images=8",
            "--eval_batch_size=4", "--num_samples=2", "--num_iters=1")
    proc = run_cli("--model=gan_cls", "--preset=cpu", *tiny, f"--data_dir={cub_records}")
    assert "note: cub records: --text_encoder=auto (the --preset=cpu value word_slots is for CSS" in proc.stdout
    assert json.load(open(tmp_path / "runs" / "gan_cls_cub" / "config.json"))["config"]["text_encoder"] == "auto"


def test_chained_runs_default_to_the_datasets_workdirs(cub_records, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = run_cli("--model=stackgan", "--preset=test", "--stage=2", f"--data_dir={cub_records}", check=False)
    assert proc.returncode == 2 and "runs/stackgan_stage1_cub" in proc.stderr
    proc = run_cli("--model=attngan", "--preset=test", f"--data_dir={cub_records}", check=False)
    assert proc.returncode == 2 and "runs/damsm_cub" in proc.stderr


def test_workdir_suffix():
    from t2i_tf.cli import workdir_suffix

    assert workdir_suffix("css") == workdir_suffix("css_captions") == workdir_suffix("") == ""
    assert workdir_suffix("cub") == "_cub" and workdir_suffix("hd5:Birds 2") == "_hd5_birds_2"
