"""TIRG on the ``css`` TFDS builder's output: ``t2i-tf-tfds-build css`` prepares both configs (gallery images and
queries) from a generated CSS raw layout, and ``--data_dir=tfds:css@TFDS_DATA_DIR`` (or either prepared folder)
trains, evaluates, exports and retrieves with the very numbers of a run on ``t2i-tf-css-convert``'s output of the same
files (one on-disk format); a --data_dir that is neither is a one-line error saying what was expected."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import t2i_tf.tfds  # noqa: F401 -- registers the builders
from t2i_tf.data import css
from t2i_tf.datasets.css.convert import main as css_convert_main
from t2i_tf.datasets.css.generate import generate_css
from t2i_tf.tfds.build import main as build_main
from tests.cli_runner import run_cli

TIRG = ("--model=tirg", "--preset=test", "--num_iters=2", "--train_eval_queries=0")  # recall@K: test queries


@pytest.fixture(scope="module")
def css_tfds(tmp_path_factory):
    """(raw layout, t2i-tf-css-convert's output, TFDS data dir with css prepared, its two prepared folders)."""
    root = tmp_path_factory.mktemp("tfds_css_tirg")
    raw, converted, data_dir = str(root / "manual"), str(root / "converted"), str(root / "tfds")
    generate_css(raw, seed=3, num_base_scenes=12, edits_per_scene=4, image_size=32)
    assert css_convert_main([f"--raw_dir={raw}", f"--out_dir={converted}"]) == 0  # t2i-tf-css-convert, 64 px
    assert build_main(["css", f"--manual_dir={raw}", f"--data_dir={data_dir}"]) == 0
    folders = {kind: os.path.join(data_dir, "css", kind, "1.0.0") for kind in ("images", "queries")}
    return raw, converted, data_dir, folders


def test_build_prepares_both_configs_and_the_reader_joins_them(css_tfds, capsys):
    raw, converted, data_dir, folders = css_tfds
    assert build_main(["css", f"--manual_dir={raw}", f"--data_dir={data_dir}"]) == 0  # already prepared: reused
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out == f"prepared css in {folders['images']} (train with --data_dir={folders['images']})"
    with open(os.path.join(converted, "info.json")) as f:
        info = json.load(f)
    for split in ("train", "test"):  # tfds.load on each config still gives its examples
        kwargs = {"split": split, "data_dir": data_dir}
        assert len(tfds.load("css/images", **kwargs)) == info["splits"][split]["num_images"] == 60
        assert len(tfds.load("css/queries", **kwargs)) == info["splits"][split]["num_queries"] == 48
    for folder in folders.values():  # either prepared folder names both
        assert css.record_dirs(folder) == folders
    assert css.record_dirs(converted) == {"images": converted, "queries": converted}
    for split in ("train", "test"):
        ours, theirs = css.read_queries(folders["images"], split), css.read_queries(converted, split)
        assert list(ours) == list(theirs) and all(np.array_equal(ours[k], theirs[k]) for k in ours)
        for a, b in zip(css.read_gallery(folders["queries"], split), css.read_gallery(converted, split)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(css.read_scene_cells(folders["images"], split),
                                      css.read_scene_cells(converted, split))
    ours, theirs = (css.train_dataset(d, 8, seed=3).take(2) for d in (folders["queries"], converted))
    for a, b in zip(ours, theirs):
        for key in a:
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)


@pytest.fixture(scope="module")
def runs(css_tfds, tmp_path_factory):
    """The test preset trained 2 steps from the TFDS spec and from the converter's output."""
    _, converted, data_dir, _ = css_tfds
    out = {}
    for name, given in (("tfds", f"tfds:css@{data_dir}"), ("converted", converted)):
        workdir = str(tmp_path_factory.mktemp(f"tirg_{name}"))
        out[name] = (workdir, run_cli(*TIRG, f"--data_dir={given}", f"--workdir={workdir}").stdout)
    return out


def metrics(workdir: str) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_tirg_trains_on_the_tfds_output_with_the_converters_numbers(css_tfds, runs):
    folders = css_tfds[3]
    (workdir, stdout), (ref_workdir, ref_stdout) = runs["tfds"], runs["converted"]
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["config"]["data_dir"] == folders["images"]
    ours, theirs = metrics(workdir), metrics(ref_workdir)
    assert [r["step"] for r in ours] == [2] and {f"test/R@{k}" for k in (1, 5, 10, 50)} <= set(ours[0])
    assert ours == theirs  # recall@K on every test query, exactly
    assert 0 < ours[0]["test/R@50"] <= 100 and ours[0]["test/R@1"] < ours[0]["test/R@50"]
    loss = re.findall(r"loss (\S+)", stdout)
    assert loss and loss == re.findall(r"loss (\S+)", ref_stdout)  # the same training batches


def test_eval_export_and_retrieve_from_either_prepared_folder(css_tfds, runs, tmp_path):
    raw, converted, _, folders = css_tfds
    workdir = runs["tfds"][0]
    shutil.copytree(workdir, tmp_path / "run")
    workdir = str(tmp_path / "run")
    proc = run_cli(*TIRG, f"--data_dir={folders['queries']}", f"--workdir={workdir}", "--mode=eval")
    rows = metrics(workdir)
    assert "| test |" in proc.stdout and len(rows) == 2 and rows[1] == rows[0]
    image = os.path.join(raw, "images", "css_test_000005.png")
    proc = run_cli(*TIRG, f"--data_dir={folders['images']}", f"--workdir={workdir}", "--mode=retrieve",
                   f"--image={image}", "--text=add red circle to top-left", "--top_k=5")
    results = json.loads(proc.stdout[proc.stdout.index("{"):])["results"]
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5]
    assert [r["similarity"] for r in results] == sorted((r["similarity"] for r in results), reverse=True)
    labels = css.read_gallery(converted, "test")[1]
    assert all(r["label"] == labels[r["image_id"]] for r in results)  # ids index the converter's gallery
    assert all(r["file"] == os.path.join(raw, "images", f"css_test_{r['image_id']:06d}.png") for r in results)
    proc = run_cli(*TIRG, f"--workdir={workdir}", "--mode=export", f"--export_dir={tmp_path / 'saved'}")
    assert "signatures compose, embed_image" in proc.stdout
    assert os.path.isfile(tmp_path / "saved" / "saved_model.pb")


def error_of(data_dir: str, workdir: str) -> str:
    proc = run_cli(*TIRG, f"--data_dir={data_dir}", f"--workdir={workdir}", check=False)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    return err


def test_a_data_dir_that_is_neither_is_a_one_line_error(css_tfds, tmp_path):
    raw, converted, data_dir, _ = css_tfds
    workdir = str(tmp_path / "run")
    for given in (data_dir, os.path.join(data_dir, "css"), os.path.join(data_dir, "css", "queries")):
        assert error_of(given, workdir) == (f"error: --data_dir {given} has no info.json: it is not a converted "
                                                   f"dataset directory but holds t2i_tf TFDS datasets: give "
                                                   f"--data_dir=tfds:css@{data_dir}")
    assert "(expected a converter's output, or a t2i_tf TFDS builder's prepared folder: tfds:NAME[/CONFIG]@DATA_DIR)" \
        in error_of(f"{raw}/images", workdir)

    only_images = str(tmp_path / "only_images")
    assert build_main(["css/images", f"--manual_dir={raw}", f"--data_dir={only_images}"]) == 0
    err = error_of(f"tfds:css@{only_images}", workdir)
    assert err.endswith(f"its 'queries' config is not prepared next to it "
                        f"({os.path.join(only_images, 'css', 'queries', '1.0.0')}); prepare both: "
                        f"t2i-tf-tfds-build css --manual_dir=DIR --data_dir={only_images}"), err

    mixed = tmp_path / "mixed"
    shutil.copytree(data_dir, mixed)
    info_path = mixed / "css" / "queries" / "1.0.0" / "info.json"
    info = json.loads(info_path.read_text())
    info["splits"]["test"]["num_images"] -= 1  # the queries of another conversion
    info_path.write_text(json.dumps(info))
    assert "were prepared from different CSS files (their info.json differ); prepare both again: t2i-tf-tfds-build " \
        f"css --manual_dir=DIR --data_dir={mixed} --overwrite" in error_of(f"tfds:css@{mixed}", workdir)

    other = tmp_path / "other"
    shutil.copytree(converted, other)
    info = json.loads((other / "info.json").read_text())
    (other / "info.json").write_text(json.dumps(dict(info, dataset="css_captions")))
    assert error_of(str(other), workdir).endswith(
        "holds dataset 'css_captions'; TIRG needs converted CSS records (t2i-tf-css-convert's output, or the css "
        "TFDS builder's: --data_dir=tfds:css@DATA_DIR)")
