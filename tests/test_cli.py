"""End-to-end: main.py on a tiny generated CSS set in a temp dir (train, resume, eval, export, retrieve, errors).

Training, eval, export and retrieve each run once as a subprocess (as a user runs them); the rest runs the
same command line in this process (tests/cli_runner.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from t2i_tf.errors import UserError

from tests.cli_runner import run_cli, run_main


@pytest.fixture(scope="module")
def trained(tiny_css, tmp_path_factory):
    """A workdir trained for 4 iterations with the test preset."""
    _, records = tiny_css
    workdir = str(tmp_path_factory.mktemp("tirg_run"))
    proc = run_main("--model=tirg", "--preset=test", f"--data_dir={records}", f"--workdir={workdir}", "--num_iters=4")
    return records, workdir, proc


def test_train_prints_recall_table_and_saves(trained):
    _, workdir, proc = trained
    assert "| test |" in proc.stdout and "R@1" in proc.stdout and "R@50" in proc.stdout
    assert os.path.isfile(os.path.join(workdir, "vocab.txt"))
    assert any(f.startswith("ckpt-4") for f in os.listdir(os.path.join(workdir, "checkpoints")))
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert records[-1]["step"] == 4 and 0.0 <= records[-1]["test/R@1"] <= 100.0
    assert os.listdir(os.path.join(workdir, "train"))  # TensorBoard events


def test_resume_continues_from_saved_step(trained, tmp_path):
    records, workdir, _ = trained
    import shutil

    copy = str(tmp_path / "resume")
    shutil.copytree(workdir, copy)
    proc = run_cli("--model=tirg", "--preset=test", f"--data_dir={records}", f"--workdir={copy}", "--num_iters=6")
    assert "at step 4" in proc.stdout and "from step 4 to 6" in proc.stdout
    steps = [json.loads(line)["step"] for line in open(os.path.join(copy, "metrics.jsonl"))]
    assert steps == [4, 6]
    proc = run_cli("--model=tirg", "--preset=test", f"--data_dir={records}", f"--workdir={copy}", "--num_iters=6")
    assert "nothing to train" in proc.stdout


def test_eval_mode_matches_training_eval(trained):
    records, workdir, _ = trained
    proc = run_main("--model=tirg", "--preset=test", f"--data_dir={records}", f"--workdir={workdir}", "--mode=eval")
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert rows[-1]["step"] == 4
    assert rows[-1]["test/R@1"] == pytest.approx(rows[0]["test/R@1"])
    assert "| test |" in proc.stdout


def test_export_loads_in_fresh_process_and_matches_keras(trained, tiny_css, tmp_path):
    raw, _ = tiny_css
    records, workdir, _ = trained
    export_dir = str(tmp_path / "saved")
    proc = run_main("--model=tirg", "--preset=test", f"--data_dir={records}", f"--workdir={workdir}", "--mode=export", f"--export_dir={export_dir}")
    assert "compose" in proc.stdout and "embed_image" in proc.stdout

    from PIL import Image

    image = np.asarray(Image.open(os.path.join(raw, "images", "css_test_000000.png")).convert("RGB"))
    np.save(tmp_path / "image.npy", image[None])
    text = "add small red circle to top-left"
    script = f"""
import numpy as np, tensorflow as tf
m = tf.saved_model.load({export_dir!r})
img = tf.constant(np.load({str(tmp_path / 'image.npy')!r}))
q = m.signatures["compose"](image=img, text=tf.constant([{text!r}]))["embedding"].numpy()
g = m.signatures["embed_image"](image=img)["embedding"].numpy()
np.save({str(tmp_path / 'q.npy')!r}, q); np.save({str(tmp_path / 'g.npy')!r}, g)
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    saved_q, saved_g = np.load(tmp_path / "q.npy"), np.load(tmp_path / "g.npy")

    # The same checkpoint through the Keras model in this process.
    from configs import tirg as cfg
    from t2i_tf.tasks.tirg import TirgTask
    from t2i_tf.train.trainer import Trainer

    task = TirgTask(dict(cfg.TEST, data_dir=records, seed=0))
    Trainer(task, workdir, num_iters=4, strategy="default", verbose=False).restore()
    keras_q = task.compose_queries(image[None], np.array([text]))
    keras_g = task.embed_gallery(image[None])
    norm = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(saved_q, norm(keras_q), atol=1e-5)
    np.testing.assert_allclose(saved_g, norm(keras_g), atol=1e-5)
    assert not np.allclose(saved_q, saved_g)


def test_retrieve_prints_top_k(trained, tiny_css):
    raw, _ = tiny_css
    records, workdir, _ = trained
    image = os.path.join(raw, "images", "css_test_000001.png")
    proc = run_main("--model=tirg", "--preset=test", f"--data_dir={records}", f"--workdir={workdir}",
                    "--mode=retrieve", f"--image={image}", "--text=remove top-left red object", "--top_k=3")
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert [r["rank"] for r in out["results"]] == [1, 2, 3]
    sims = [r["similarity"] for r in out["results"]]
    assert sims == sorted(sims, reverse=True)
    assert os.path.isfile(out["results"][0]["file"])


BAD_FLAGS = [
    (["--model=nope"], "--model must be one of"),
    (["--mode=dance"], "--mode must be one of"),
    (["--preset=huge"], "--preset must be one of"),
    (["--data_dir=/nonexistent/css"], "does not exist"),
    (["--batch_size=3"], "must be even"),
    (["--loss=hinge"], "--loss must be one of"),
    (["--composition=sum"], "--composition must be one of"),
    (["--mode=retrieve"], "needs --image"),
    (["--image_blocks=2,x"], "--image_blocks must be"),
    (["--strategy=tpu"], "--strategy must be one of"),
    (["--strategy=multi_worker"], "needs TF_CONFIG"),  # (the test environment has none)
    (["--mode=serve"], "no checkpoint in"),  # serving a run with no export exports its checkpoint first
    (["--num_iters=-5"], "--num_iters must be >= 0"),
    (["--learning_rate=0"], "--learning_rate must be > 0"),
    (["--gan_type=wgan"], "--gan_type is not a setting of --model=tirg; its settings are --batch_size"),
    (["--feature_matching"], "--feature_matching is not a setting of --model=tirg"),
    (["--dataset=cub"], "--dataset must be one of css; got 'cub'"),
    (["--host=0.0.0.0"], "--host is an option of --mode=serve, not --mode=train"),
    (["--serve_also=runs/tirg/export"], "--serve_also is an option of --mode=serve, not --mode=train"),
    (["--top_k=3"], "--top_k is an option of --mode=retrieve, not --mode=train"),
    (["--mode=generate"], "--mode=generate is for text-to-image models, not --model=tirg"),
    (["--mode=eval", "--inception_graph=g.pb"], "--inception_graph is for --mode=eval of a generator, not --model=tirg"),
]


@pytest.mark.parametrize("args, message", BAD_FLAGS)
def test_bad_flags_raise_user_errors(tiny_css, tmp_path, args, message):
    """Each bad value stops with one line naming the flag (exit code 2)."""
    _, records = tiny_css
    argv = ["--model=tirg", "--preset=test", f"--workdir={tmp_path}", "--num_iters=1", *args]
    if not any(a.startswith("--data_dir") for a in args):
        argv.append(f"--data_dir={records}")
    proc = run_cli(*argv, check=False)
    errors = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(errors) == 1 and errors[0].startswith("error: "), proc.stderr
    assert message in errors[0]


def parse(*argv):
    from absl import flags

    flags.FLAGS.unparse_flags()
    flags.FLAGS(["main.py", *argv])


@pytest.fixture
def clean_flags():
    from absl import flags

    yield
    flags.FLAGS.unparse_flags()


def test_a_given_flag_wins_and_no_flag_default_overrides_a_preset(clean_flags):
    from configs import damsm
    from t2i_tf import cli

    parse("--model=damsm", "--preset=test")
    assert cli.resolve_config(damsm.SCHEMA)["eval_images"] == damsm.TEST["eval_images"] == 16
    parse("--model=damsm", "--preset=test", "--eval_images=5", "--seed=3")
    config = cli.resolve_config(damsm.SCHEMA)
    assert config["eval_images"] == 5 and config["seed"] == 3 and config["preset"] == "test"


def test_stackgan_refuses_the_gan_cls_options_it_does_not_have(clean_flags):
    from configs import stackgan
    from t2i_tf import cli

    for flag in ("--feature_matching", "--minibatch_discrimination", "--gan_type=wgan", "--interp"):
        parse("--model=stackgan", flag)
        with pytest.raises(UserError, match=f"{flag.split('=')[0]} is not a setting of --model=stackgan"):
            cli.resolve_config(stackgan.SCHEMA)


def test_saved_settings_come_back_and_given_ones_win(clean_flags):
    from configs import gan_cls
    from t2i_tf import cli

    saved = dict(gan_cls.TEST, ngf=4, text_dim=8, data_dir="/d", preset="test", proj_dim_old=3)  # an older key
    parse("--model=gan_cls", "--num_samples=2")
    merged = cli.apply_saved_config(cli.resolve_config(gan_cls.SCHEMA), saved, gan_cls.SCHEMA)
    assert merged["ngf"] == 4 and merged["num_samples"] == 2 and merged["preset"] == "test"
    assert "proj_dim_old" not in merged


def test_every_flag_is_a_setting_a_mode_option_or_a_run_flag():
    """So every flag in --helpfull is read: settings by the models whose schema has them, mode options by
    their modes (given with another mode they are an error), run flags by every run."""
    from absl import flags

    from t2i_tf import cli

    run_flags = {"model", "mode", "preset", "data_dir", "workdir", "strategy"}
    defined = {f.name for f in flags.FLAGS.get_flags_for_module("t2i_tf.cli")}
    assert defined == run_flags | set(cli.MODE_FLAGS) | set(cli.SETTING_FLAGS)
    assert all(set(modes) <= set(cli.MODES) for modes in cli.MODE_FLAGS.values())
    assert all(flags.FLAGS[name].default is None for name in cli.SETTING_FLAGS)


def test_cli_prints_one_line_error_without_traceback(tiny_css, tmp_path):
    _, records = tiny_css
    proc = run_main("--model=tirg", "--preset=test", f"--data_dir={records}", f"--workdir={tmp_path}", "--batch_size=3", check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: --batch_size must be even and >= 2 (batches are pairs); got 3"]
    proc = run_main("--model=tirg", "--batch_size=abc", "--gan_type=wgan", check=False)  # absl's own parse error
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "batch_size" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--top_k=-3", "--text=remove top-left red object"], "error: --top_k must be >= 1; got -3"),
    (["--text=zzz qqq"], "error: no word of the caption 'zzz qqq' is in the TIRG vocabulary"),
])
def test_retrieve_errors(trained, tiny_css, args, message):
    raw, _ = tiny_css
    records, workdir, _ = trained
    proc = run_cli("--model=tirg", f"--data_dir={records}", f"--workdir={workdir}", "--mode=retrieve",
                   f"--image={os.path.join(raw, 'images', 'css_test_000001.png')}", *args, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr


def test_another_architecture_on_a_trained_workdir_is_refused(trained):
    records, workdir, _ = trained
    proc = run_cli("--model=tirg", f"--workdir={workdir}", "--mode=eval", "--composition=concat", "--embed_dim=8",
                   check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: {workdir} holds a tirg checkpoint trained with --composition=tirg "
                                   "--embed_dim=16; got --composition=concat --embed_dim=8: use those values or "
                                   "another --workdir")


def test_a_truncated_record_file_is_named(tiny_css, tmp_path):
    import shutil

    _, records = tiny_css
    copy = str(tmp_path / "records")
    shutil.copytree(records, copy)
    shard = os.path.join(copy, "queries_train-00000.tfrecord")
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) // 2)
    proc = run_cli("--model=tirg", "--preset=test", f"--data_dir={copy}", f"--workdir={tmp_path / 'w'}", check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: a record file of --data_dir is corrupt: {shard} (")


def test_bad_files_give_clear_errors(tiny_css, tmp_path):
    raw, records = tiny_css
    # Evaluating without a checkpoint.
    proc = run_cli("--model=tirg", "--preset=test", f"--data_dir={records}", f"--workdir={tmp_path / 'empty'}", "--mode=eval", check=False)
    assert proc.returncode == 2 and "no checkpoint" in proc.stderr and "Traceback" not in proc.stderr
    # A raw (unconverted) CSS dir.
    proc = run_cli("--model=tirg", "--preset=test", f"--data_dir={raw}", f"--workdir={tmp_path / 'w'}", check=False)
    assert proc.returncode == 2 and "datasets.css.convert" in proc.stderr
    # A corrupt query image.
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    proc = run_cli("--model=tirg", "--preset=test", f"--data_dir={records}", f"--workdir={tmp_path / 'w'}",
                    "--mode=retrieve", f"--image={bad}", "--text=x", check=False)
    assert proc.returncode == 2 and f"--image {bad} is not a PNG or JPEG image" in proc.stderr and "Traceback" not in proc.stderr
