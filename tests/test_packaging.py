"""``pip install .``: the wheel holds t2i_tf and configs (never a top-level ``datasets``), its console commands run
from an install target outside the checkout, and a Hugging Face-style ``datasets`` package earlier on sys.path
does not break t2i_tf (whose dataset code lives in t2i_tf/datasets/)."""

from __future__ import annotations

import configparser
import importlib
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO_ROOT

SOURCES = ("pyproject.toml", "requirements.txt", "requirements-dev.txt", "README.md", "t2i_tf", "configs")
TOOLS = {"t2i-tf-css-generate": "t2i_tf.datasets.css.generate", "t2i-tf-css-convert": "t2i_tf.datasets.css.convert",
         "t2i-tf-css-captions": "t2i_tf.datasets.css.captions", "t2i-tf-cub-convert": "t2i_tf.datasets.cub.convert",
         "t2i-tf-flowers-convert": "t2i_tf.datasets.flowers.convert", "t2i-tf-hd5-convert": "t2i_tf.datasets.hd5",
         "t2i-tf-tfds-build": "t2i_tf.tfds.build", "t2i-tf-vg-convert": "t2i_tf.datasets.vg.convert",
         "t2i-tf-coco-stuff-convert": "t2i_tf.datasets.coco_stuff.convert"}

# What a user's process looks like with Hugging Face's `datasets` installed: `import datasets` works, and it
# has none of the checkout's dataset tools (importing `datasets.cub` etc. fails).
FAKE_HF_DATASETS = '''"""Stand-in for Hugging Face datasets."""
IS_FAKE_HF = True
def load_dataset(*args, **kwargs):
    raise RuntimeError("fake")
'''

IMPORT_CHECK = r'''
import os, sys
import datasets  # the user's (fake Hugging Face) package, imported first as a notebook would
assert datasets.IS_FAKE_HF, datasets.__file__
import configs, t2i_tf, t2i_tf.cli, t2i_tf.datasets.cub.convert, t2i_tf.datasets.css.captions, t2i_tf.tfds
from t2i_tf.datasets.t2i_common import parse_class_ids
assert parse_class_ids("3,5-6") == {3, 5, 6}
from configs import tirg
assert tirg.SCHEMA.model == "tirg", tirg.SCHEMA.model
import tensorflow_datasets as tfds
print("builders", sorted(n for n in tfds.list_builders(with_community_datasets=False) if n in t2i_tf.tfds.NAMES))
print("files", os.path.dirname(t2i_tf.__file__), os.path.dirname(configs.__file__), os.path.dirname(datasets.__file__))
import contextlib, io, t2i_tf.console
sys.argv, help_text = ["t2i-tf-cub-convert", "--help"], io.StringIO()
try:  # a dataset tool of the install, run as its console command runs it
    with contextlib.redirect_stdout(help_text):
        t2i_tf.console.cub_convert()
except SystemExit as e:
    assert e.code == 0, e.code
print("tool help", "--cub_dir" in help_text.getvalue() and "--test_classes" in help_text.getvalue())
print("datasets modules", sorted(m for m in sys.modules if m == "datasets" or m.startswith("datasets.")))
'''


def _run(args: list[str], env: dict[str, str], cwd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, install target, env with a fake `datasets` ahead of the target, cwd outside the checkout)."""
    root = tmp_path_factory.mktemp("packaging")
    src = root / "src"  # a copy: building in the checkout would leave build/ and *.egg-info behind
    src.mkdir()
    for name in SOURCES:
        path = os.path.join(REPO_ROOT, name)
        if os.path.isdir(path):
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(path, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_TARGET", "PIP_PREFIX")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "wheel"),
          str(src)], env, str(root))
    (wheel,) = (root / "wheel").glob("*.whl")
    target = root / "target"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(target),
          str(wheel)], env, str(root))
    fake = root / "user_site" / "datasets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(FAKE_HF_DATASETS)
    env["PYTHONPATH"] = os.pathsep.join([str(root / "user_site"), str(target)])
    return str(wheel), str(target), env, str(root)


def test_wheel_holds_t2i_tf_and_configs_but_no_top_level_datasets(installed):
    wheel, _, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"t2i_tf", "configs"}
    # every module of the checkout's packages is in the wheel (a folder missing its __init__.py would be dropped)
    for package in ("t2i_tf", "configs"):
        for dirpath, _, files in os.walk(os.path.join(REPO_ROOT, package)):
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(dirpath, f), REPO_ROOT).replace(os.sep, "/")
                    assert rel in names, f"{rel} is not in the wheel"
    (ep_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    entry_points = configparser.ConfigParser()
    entry_points.read_string(zipfile.ZipFile(wheel).read(ep_name).decode())
    scripts = dict(entry_points["console_scripts"])
    assert scripts["t2i-tf"] == "t2i_tf.console:run"
    assert set(scripts) == {"t2i-tf", *TOOLS}
    from t2i_tf import console

    for script, module in TOOLS.items():  # each tool's command runs that module's main()
        called = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(console, "_tool", lambda name, called=called: called.append(name) or 0)
            assert getattr(console, scripts[script].split(":")[1])() == 0
        assert called == [module], script
        assert callable(importlib.import_module(module).main)


def _cli_flags(help_text: str) -> list[str]:
    """The flags listed under ``t2i_tf.cli:`` in absl's --helpfull."""
    lines = help_text.splitlines()
    start = lines.index("t2i_tf.cli:") + 1
    end = next((i for i in range(start, len(lines)) if lines[i] and not lines[i].startswith(" ")), len(lines))
    return [line.split(":")[0].strip().replace("[no]", "") for line in lines[start:end] if line.startswith("  --")]


def test_console_command_runs_from_the_install_with_main_pys_flags(installed):
    _, target, env, cwd = installed
    proc = subprocess.run([sys.executable, os.path.join(target, "bin", "t2i-tf"), "--helpfull"], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]  # absl's --help* exit with 1 after printing (main.py's too)
    installed_flags = _cli_flags(proc.stdout)
    assert "--model" in installed_flags and "--data_dir" in installed_flags and "--mode" in installed_flags
    from absl import flags

    from t2i_tf import cli  # noqa: F401 -- main.py runs t2i_tf.console.run, which runs this module's flags

    checkout_flags = sorted(f"--{f.name}" for f in flags.FLAGS.get_flags_for_module("t2i_tf.cli"))
    assert sorted(installed_flags) == checkout_flags


def test_installed_t2i_tf_imports_beside_a_hugging_face_style_datasets(installed):
    _, target, env, cwd = installed
    out = _run([sys.executable, "-c", IMPORT_CHECK], env, cwd).stdout.splitlines()
    files = next(line for line in out if line.startswith("files")).split()[1:]
    assert files[0] == os.path.join(target, "t2i_tf") and files[1] == os.path.join(target, "configs")
    assert files[2] == os.path.join(cwd, "user_site", "datasets")
    assert next(line for line in out if line.startswith("datasets modules")) == "datasets modules ['datasets']"
    assert "tool help True" in out
    assert next(line for line in out if line.startswith("builders")) == \
        "builders ['anime_faces', 'css', 'css_captions', 'cub_captions', 'flowers_captions']"
