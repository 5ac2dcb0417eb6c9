"""TFDS builders on fixtures in the real layouts: ``tfds.load`` works on each, the prepared files hold the converter's
records (the same ``tf.train.Example`` in the same order: one on-disk format), skips stay counted, bad layouts are
one-line errors, and the readers and a training run take the prepared folder as ``--data_dir``."""

from __future__ import annotations

import glob
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import t2i_tf.tfds  # noqa: F401 -- registers the builders
from t2i_tf.data.records import read_info, shard_paths
from t2i_tf.data.t2i import held_out_batches, t2i_dataset
from t2i_tf.datasets.css.captions import ATTRIBUTE_DIM, convert_css_captions
from t2i_tf.datasets.css.convert import convert_css
from t2i_tf.datasets.css.generate import generate_css
from t2i_tf.datasets.cub.convert import convert_cub
from t2i_tf.datasets.flowers.convert import convert_flowers
from t2i_tf.errors import UserError
from t2i_tf.tfds.base import T2IBuilderConfig
from t2i_tf.tfds.build import main as build_main
from t2i_tf.tfds.build import prepare, prepared_dir
from tests.cli_runner import run_cli
from tests.fixtures_t2i import make_cub, make_flowers, read_records

CORRUPT = "002.Laysan_Albatross/Laysan_Albatross_0001_104"


def load(name: str, manual_dir: str, data_dir: str, split: str) -> list[dict]:
    """``tfds.load`` as a user calls it (manual_dir through the DownloadConfig), as numpy examples."""
    ds = tfds.load(name, split=split, data_dir=data_dir, download_and_prepare_kwargs={
        "download_config": tfds.download.DownloadConfig(manual_dir=manual_dir)})
    return list(tfds.as_numpy(ds))


def prepared(name: str, data_dir: str) -> str:
    return os.fspath(tfds.builder(name, data_dir=data_dir).data_dir)


def examples(paths: list[str]) -> list[tf.train.Example]:
    return [tf.train.Example.FromString(s) for p in paths for s in tf.data.TFRecordDataset(p).as_numpy_iterator()]


def converter_files(out_dir: str, record_set: str) -> list[str]:
    return sorted(glob.glob(os.path.join(out_dir, f"{record_set}-*.tfrecord")))


def assert_same_records(prepared_dir: str, reference_dir: str, record_sets: list[str]) -> None:
    for record_set in record_sets:
        ours, theirs = examples(shard_paths(prepared_dir, record_set)), examples(converter_files(reference_dir, record_set))
        assert len(ours) == len(theirs) > 0, record_set
        assert ours == theirs, record_set  # every key, type and value, in the converter's order


def assert_same_info(prepared_dir: str, reference: dict, name: str) -> dict:
    info = read_info(prepared_dir)
    for key in ("dataset", "format", "skipped", "skipped_examples", "vocabulary", "embedding_dim", "extra_int64",
                "split_source", "class_names"):
        assert info.get(key) == json.loads(json.dumps(reference.get(key))), key
    for split, counts in reference["splits"].items():
        assert {k: v for k, v in info["splits"][split].items() if k != "num_shards"} == \
            {k: v for k, v in counts.items() if k != "num_shards"}
    assert info["tfds"]["name"] == name.split("/")[0] and info["tfds"]["version"] == "1.0.0"
    return info


# --------------------------------------------------------------------------------------------------- CUB


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    """(fixture, tfds data dir, {config: reference converter dir and info}) of a StackGAN birds layout with one
    corrupt image."""
    root = str(tmp_path_factory.mktemp("tfds_cub"))
    fx = make_cub(root, stackgan=True, embeddings=True, corrupt=(CORRUPT,))
    refs = {"default": os.path.join(root, "ref_default"), "stackgan_embeddings": os.path.join(root, "ref_emb")}
    infos = {"default": convert_cub(fx.cub_dir, refs["default"]),
             "stackgan_embeddings": convert_cub(fx.cub_dir, refs["stackgan_embeddings"], embeddings_dir=fx.birds_dir)}
    return fx, os.path.join(root, "tfds"), refs, infos


@pytest.mark.parametrize("config", ["default", "stackgan_embeddings"])
def test_cub_tfds_load_gives_the_converters_examples(cub, config):
    fx, data_dir, refs, _ = cub
    for split in ("train", "test"):
        got = load(f"cub_captions/{config}", fx.birds_dir, data_dir, split)
        want = read_records(refs[config], split)
        assert [g["name"].decode() for g in got] == [w["name"] for w in want] and len(want) > 0
        for g, w in zip(got, want):
            assert g["class_id"] == w["class_id"] == fx.names[w["name"]]
            assert [c.decode() for c in g["captions"]] == w["captions"]
            np.testing.assert_array_equal(g["image"], tf.io.decode_image(w["image"], channels=3).numpy())
            if config == "stackgan_embeddings":
                np.testing.assert_array_equal(g["embeddings"], w["embeddings"].reshape(-1, 1024))
            else:
                assert "embeddings" not in g


@pytest.mark.parametrize("config", ["default", "stackgan_embeddings"])
def test_cub_prepared_folder_holds_the_converters_records_and_skip_report(cub, config):
    fx, data_dir, refs, infos = cub
    load(f"cub_captions/{config}", fx.birds_dir, data_dir, "train")
    folder = prepared(f"cub_captions/{config}", data_dir)
    assert_same_records(folder, refs[config], ["train", "test"])
    info = assert_same_info(folder, infos[config], "cub_captions")
    assert info["skipped"] == {"train": {"corrupt_image": 1}}  # the corrupt image stays a counted skip
    assert not glob.glob(os.path.join(folder, "_t2i_converter_records*"))  # the converter's scratch copy is gone
    builder = tfds.builder(f"cub_captions/{config}", data_dir=data_dir)
    assert builder.info.splits["train"].num_examples == infos[config]["splits"]["train"]["num_examples"] == 5
    assert builder.info.metadata["t2i_info"]["skipped"] == info["skipped"]


def test_readers_give_the_same_batches_from_the_prepared_folder(cub):
    fx, data_dir, refs, _ = cub
    load("cub_captions/stackgan_embeddings", fx.birds_dir, data_dir, "train")
    folder = prepared("cub_captions/stackgan_embeddings", data_dir)
    for training in (True, False):
        ours = t2i_dataset(folder, "train", 2, 16, training=training, seed=3, wrong_candidates=4).take(3)
        theirs = t2i_dataset(refs["stackgan_embeddings"], "train", 2, 16, training=training, seed=3,
                             wrong_candidates=4).take(3)
        n = 0
        for a, b in zip(ours, theirs):
            assert set(a) == set(b) == {"image", "caption", "class_id", "embedding", "wrong_image"}
            for k in a:
                np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)
            n += 1
        assert n == 3
    held = list(held_out_batches(folder, "train", 16, 3, 2))
    ref = list(held_out_batches(refs["stackgan_embeddings"], "train", 16, 3, 2))
    assert [int(b["image"].shape[0]) for b in held] == [2, 1]
    for a, b in zip(held, ref):
        np.testing.assert_array_equal(a["caption"].numpy(), b["caption"].numpy())
        np.testing.assert_array_equal(a["image"].numpy(), b["image"].numpy())


def test_bad_layouts_are_one_line_errors(tmp_path, cub, capsys):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "README.txt").write_text("not CUB")
    with pytest.raises(UserError, match="images.txt not found"):
        prepare("cub_captions", str(manual), str(tmp_path / "tfds"))
    fx = cub[0]
    no_pickles = tmp_path / "birds_without_embeddings"
    make_cub(str(no_pickles))  # captions and images, no StackGAN folders
    with pytest.raises(UserError, match="char-CNN-RNN-embeddings.pickle"):
        prepare("cub_captions/stackgan_embeddings", str(no_pickles / "birds"), str(tmp_path / "tfds"))
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, message in ((["nope"], "error: unknown dataset 'nope'"),
                          (["cub_captions/nope"], ("error: cub_captions has no config 'nope': its configs are default, "
                                                   "stackgan_embeddings")),
                          (["cub_captions", f"--manual_dir={empty}"], f"error: --manual_dir {empty} is empty")):
        args = args if len(args) > 1 else args + [f"--manual_dir={fx.birds_dir}"]
        assert build_main(args + [f"--data_dir={tmp_path / 'tfds'}"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(message) and len(err.splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "tfds" / "cub_captions" / "default" / "1.0.0")  # nothing half-written


def test_build_command_prints_the_folder_to_train_on(cub, tmp_path, capsys):
    fx = cub[0]
    assert build_main(["cub_captions", f"--manual_dir={fx.birds_dir}", f"--data_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    folder = os.path.join(str(tmp_path), "cub_captions", "default", "1.0.0")
    assert out == f"prepared cub_captions in {folder} (train with --data_dir={folder})"
    assert read_info(folder)["splits"]["test"]["num_examples"] == 2


def test_a_custom_config_passes_the_converters_split_options_and_checks_the_embedding_size(cub, tmp_path):
    fx = cub[0]
    config = T2IBuilderConfig(name="classes_3_4_test", test_classes="3,4")
    builder = tfds.builder("cub_captions", config=config, data_dir=str(tmp_path))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=fx.birds_dir))
    info = read_info(os.fspath(builder.data_dir))
    assert info["splits"]["test"]["class_ids"] == [3, 4] and info["splits"]["train"]["class_ids"] == [1, 2]
    assert builder.info.splits["test"].num_examples == 4
    small = T2IBuilderConfig(name="tiny_embeddings", embeddings=True, embedding_dim=8)
    builder = tfds.builder("cub_captions", config=small, data_dir=str(tmp_path))
    with pytest.raises(UserError, match="declares 8-d embeddings but the converter found 1024-d"):
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=fx.birds_dir))


def test_a_tfds_spec_names_the_prepared_folder(cub, tmp_path):
    fx, data_dir, _, _ = cub
    load("cub_captions/stackgan_embeddings", fx.birds_dir, data_dir, "train")
    folder = prepared("cub_captions/stackgan_embeddings", data_dir)
    assert prepared_dir(f"tfds:cub_captions/stackgan_embeddings@{data_dir}") == folder
    assert prepared_dir(f"tfds:cub_captions/stackgan_embeddings:1.0.0@{data_dir}") == folder
    not_prepared = "not prepared in .* t2i-tf-tfds-build cub_captions/default --manual_dir=DIR --data_dir="
    for spec, message in ((f"tfds:cub_captions/default@{tmp_path}", not_prepared),
                          (f"tfds:cub/default@{data_dir}", "unknown dataset 'cub'"),
                          (f"tfds:cub_captions/x@{data_dir}", "has no config 'x'"),
                          (f"tfds:cub_captions:9.9.9@{data_dir}", "9.9.9")):
        with pytest.raises(UserError, match=message):
            prepared_dir(spec)


# ----------------------------------------------------------------------------------------------- Flowers


@pytest.mark.parametrize("config", ["default", "stackgan_embeddings"])
def test_flowers_tfds_load_and_prepared_records(tmp_path, config):
    fx = make_flowers(str(tmp_path / "manual"), stackgan=True, embeddings=True, no_captions=("image_00003",))
    ref = str(tmp_path / "ref")
    info = convert_flowers(fx.flowers_dir, ref, embeddings_dir=fx.stackgan_dir if config != "default" else None)
    data_dir = str(tmp_path / "tfds")
    got = load(f"flowers_captions/{config}", str(tmp_path / "manual"), data_dir, "test")
    want = read_records(ref, "test")
    assert [g["name"].decode() for g in got] == [w["name"] for w in want] and len(want) == 2
    assert all(g["class_id"] == 4 for g in got)
    assert ("embeddings" in got[0]) == (config == "stackgan_embeddings")
    folder = prepared(f"flowers_captions/{config}", data_dir)
    assert_same_records(folder, ref, ["train", "test"])
    assert assert_same_info(folder, info, "flowers_captions")["skipped"] != {}  # image_00003 has no captions


# --------------------------------------------------------------------------------------------------- CSS


@pytest.fixture(scope="module")
def css_raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds_css")
    raw = str(root / "manual")
    generate_css(raw, seed=5, num_base_scenes=4, edits_per_scene=3, image_size=16)
    return raw, str(root)


def test_css_images_and_queries(css_raw):
    raw, root = css_raw
    ref = os.path.join(root, "ref_css")
    info = convert_css(raw, ref, image_size=64)
    data_dir = os.path.join(root, "tfds")
    images = load("css/images", raw, data_dir, "test")
    queries = load("css/queries", raw, data_dir, "test")
    assert [int(x["image_id"]) for x in images] == list(range(info["splits"]["test"]["num_images"]))
    assert images[0]["image"].shape == (64, 64, 3) and images[0]["scene_cells"].shape == (9,)
    assert len(queries) == info["splits"]["test"]["num_queries"] > 0
    assert all(isinstance(q["text"], bytes) and q["text"] for q in queries)
    folder_images, folder_queries = prepared("css/images", data_dir), prepared("css/queries", data_dir)
    assert_same_records(folder_images, ref, ["images_train", "images_test"])
    assert_same_records(folder_queries, ref, ["queries_train", "queries_test"])
    with pytest.raises(UserError, match="queries_test"):  # each config holds its own record sets
        shard_paths(folder_images, "queries_test")


def test_css_on_the_official_python2_layout(tmp_path):
    """The official CSS download's layout (a Python 2 pickle npy read by the restricted unpickler, RGBA / grey PNGs)."""
    import io

    from tests.datasets.test_css_convert import official_split, write_official
    from tests.py2_pickle import Py2Pickler

    raw = str(tmp_path / "manual")
    data = np.array({"train": official_split(4, True), "test": official_split(4, True)}, dtype=object)
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2, fix_imports=True).dump(data)
    write_official(raw, buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    ref = str(tmp_path / "ref")
    convert_css(raw, ref, image_size=64)
    data_dir = str(tmp_path / "tfds")
    images = load("css/images", raw, data_dir, "test")
    assert [int(x["label"]) for x in images] == [200, 1000, 70000, 13]
    np.testing.assert_array_equal(images[1]["image"][2, 32], [255, 255, 255])  # transparency composited on white
    queries = load("css/queries", raw, data_dir, "train")
    assert [(int(q["source_id"]), int(q["target_id"]), q["text"]) for q in queries] == [
        (0, 1, b"make middle-center cube green"), (0, 2, b"make middle-center cube green"),
        (1, 3, b"add blue sphere to top-left")]
    assert_same_records(prepared("css/images", data_dir), ref, ["images_train", "images_test"])
    assert_same_records(prepared("css/queries", data_dir), ref, ["queries_train", "queries_test"])


@pytest.mark.parametrize("config", ["default", "attributes"])
def test_css_captions(css_raw, config):
    raw, root = css_raw
    ref = os.path.join(root, f"ref_captions_{config}")
    info = convert_css_captions(raw, ref, image_size=64, attribute_embeddings=config == "attributes")
    data_dir = os.path.join(root, "tfds")
    got = load(f"css_captions/{config}", raw, data_dir, "train")
    want = read_records(ref, "train")
    assert [g["name"].decode() for g in got] == [w["name"] for w in want] and len(want) > 0
    assert got[0]["scene_cells"].shape == (9,) and got[0]["image"].shape == (64, 64, 3)
    if config == "attributes":
        assert got[0]["embeddings"].shape == (3, ATTRIBUTE_DIM)
    folder = prepared(f"css_captions/{config}", data_dir)
    assert_same_records(folder, ref, ["train", "test"])
    assert_same_info(folder, info, "css_captions")


def test_a_training_run_reads_the_prepared_folder(css_raw, tmp_path):
    """The GAN-CLS test preset trains and evaluates on the TFDS-prepared captioned CSS given as
    --data_dir=tfds:NAME/CONFIG@DIR, read from its prepared folder (that the
    folder gives the very batches of the converter's records is test_readers_give_the_same_batches_...)."""
    raw, root = css_raw
    data_dir = os.path.join(root, "tfds")
    load("css_captions/default", raw, data_dir, "train")
    folder = prepared("css_captions/default", data_dir)
    workdir = str(tmp_path / "run")
    proc = run_cli("--model=gan_cls", "--preset=test", f"--data_dir=tfds:css_captions/default@{data_dir}",
                   f"--workdir={workdir}", "--num_iters=2")
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["config"]["data_dir"] == folder
    values = dict(re.findall(r"(\S*(?:d_loss|g_loss|eval/d_real)) (-?[\d.]+)", proc.stdout))
    assert {"d_loss", "g_loss", "eval/d_real"} <= set(values), proc.stdout
    assert all(np.isfinite(float(v)) for v in values.values())
    assert "step 2/2" in proc.stdout and "| eval |" in proc.stdout
