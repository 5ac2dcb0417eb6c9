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


def test_a_random_flip_given_on_the_command_line_wins_over_the_datasets_choice():
    from absl import flags

    from configs import gan_cls
    from t2i_tf import cli

    try:
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["main.py", "--model=gan_cls", "--preset=test", "--random_flip=false"])
        assert cli.apply_dataset_settings(cli.resolve_config(gan_cls.SCHEMA), gan_cls.SCHEMA, "cub")["random_flip"] is False
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["main.py", "--model=gan_cls", "--preset=test"])
        assert cli.apply_dataset_settings(cli.resolve_config(gan_cls.SCHEMA), gan_cls.SCHEMA, "cub")["random_flip"] is True
    finally:
        flags.FLAGS.unparse_flags()


def test_css_layout_encoders_of_the_cpu_presets_turn_back_on_other_datasets(capsys):
    """The cpu presets' word slots read captions as CSS grid layouts; on CUB a new run uses auto / last_state, unless
    the command line gives them."""
    from absl import flags

    from configs import damsm, gan_cls
    from t2i_tf import cli

    try:
        for schema, name, css, elsewhere in ((gan_cls.SCHEMA, "text_encoder", "word_slots", "auto"),
                                             (damsm.SCHEMA, "sentence_encoder", "word_slots", "last_state")):
            flags.FLAGS.unparse_flags()
            flags.FLAGS(["main.py", f"--model={schema.model}", "--preset=cpu"])
            config = cli.resolve_config(schema)
            assert config[name] == css
            assert cli.apply_dataset_settings(dict(config), schema, "cub")[name] == elsewhere
            assert f"note: cub records: --{name}={elsewhere} (the --preset=cpu value {css} is for CSS" in \
                capsys.readouterr().out
            assert cli.apply_dataset_settings(dict(config), schema, "css_captions")[name] == css
            flags.FLAGS.unparse_flags()
            flags.FLAGS(["main.py", f"--model={schema.model}", "--preset=cpu", f"--{name}={css}"])
            assert cli.apply_dataset_settings(cli.resolve_config(schema), schema, "cub")[name] == css  # given: kept
    finally:
        flags.FLAGS.unparse_flags()


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
