"""tf.data reader of the text-to-image records (converted from a tiny CUB fixture)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.datasets.cub import convert
from t2i_tf.data.t2i import load_size, t2i_dataset
from t2i_tf.errors import UserError
from tests.fixtures_t2i import captions_for, make_cub

S = 16


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("t2i_reader"))
    fx = make_cub(root, stackgan=True, embeddings=True, test_classes=(3, 4))
    out = os.path.join(root, "out")
    convert.convert_cub(fx.cub_dir, out, embeddings_dir=fx.birds_dir, examples_per_shard=2)
    return fx, out


def batches(ds: tf.data.Dataset, n: int) -> list[dict[str, np.ndarray]]:
    return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


def blue_class(images: np.ndarray, blue: dict[int, int]) -> np.ndarray:
    """The class whose blue value is nearest to each image's mean blue."""
    b = ((images[..., 2] + 1.0) * 127.5).mean(axis=(1, 2))
    ids = np.array(sorted(blue))
    return ids[np.argmin(np.abs(b[:, None] - np.array([blue[i] for i in ids])[None, :]), axis=1)]


def test_training_batches(data):
    fx, out = data
    ds = t2i_dataset(out, "train", batch_size=4, image_size=S, training=True, seed=3)
    assert set(ds.element_spec) == {"image", "caption", "class_id", "embedding", "wrong_image"}
    assert ds.element_spec["image"].shape == (4, S, S, 3) and ds.element_spec["embedding"].shape == (4, 1024)
    got = batches(ds, 6)
    for b in got:
        assert b["image"].dtype == np.float32 and b["wrong_image"].shape == (4, S, S, 3)
        assert b["image"].min() >= -1.0 and b["image"].max() <= 1.0 and b["image"].std() > 0.1
        assert b["class_id"].dtype == np.int64 and set(b["class_id"]) <= {1, 2}
        for cap, cid in zip(b["caption"], b["class_id"]):
            name = cap.decode().split(" of ")[1].split(":")[0]
            assert fx.names[name] == cid and cap.decode() in captions_for(name, cid)
        # GAN-CLS: the mean of 4 distinct captions' embeddings (fixture caption c has value 1000*class+10*k+c)
        emb = b["embedding"]
        np.testing.assert_allclose(emb, np.repeat(emb[:, :1], 1024, axis=1))
        frac = emb[:, 0] - 1000.0 * b["class_id"]
        m = frac - 10.0 * np.floor(frac / 10.0)
        assert np.all((m >= 1.5 - 1e-3) & (m <= 7.5 + 1e-3))
        np.testing.assert_allclose(4 * m, np.round(4 * m), atol=1e-3)
    all_m = np.concatenate([b["embedding"][:, 0] % 10 for b in got])
    assert len(set(np.round(all_m, 2))) > 1  # a new random subset per step
    assert len({c for b in got for c in b["caption"]}) > 8  # captions sampled, not always the first


def test_eval_is_one_ordered_pass_with_first_caption_and_mean_embedding(data):
    fx, out = data
    ds = t2i_dataset(out, "test", batch_size=3, image_size=S, training=False)
    got = batches(ds, 10)
    assert [len(b["class_id"]) for b in got] == [3, 1]  # 4 test images, last batch partial
    caps = [c.decode() for b in got for c in b["caption"]]
    test_names = [n for n, c in fx.names.items() if c in (3, 4)]
    assert caps == [captions_for(n, fx.names[n])[0] for n in test_names]
    emb = np.concatenate([b["embedding"] for b in got])
    expected = [1000.0 * fx.names[n] + 10.0 * fx.index_in_class[n] + 4.5 for n in test_names]
    np.testing.assert_allclose(emb[:, 0], expected, rtol=1e-6)
    # eval images are the stored crops resized to S: no flip, so red grows to the right
    img = np.concatenate([b["image"] for b in got])
    assert np.all(img[:, :, -1, 0].mean(axis=1) > img[:, :, 0, 0].mean(axis=1))
    again = batches(t2i_dataset(out, "test", batch_size=3, image_size=S, training=False), 10)
    np.testing.assert_array_equal(again[0]["wrong_image"], got[0]["wrong_image"])


def test_wrong_image_is_of_another_class(data):
    fx, out = data
    for split, training in (("train", True), ("test", False)):
        ds = t2i_dataset(out, split, batch_size=4, image_size=S, training=training, seed=1)
        for b in batches(ds, 8):
            assert np.all(blue_class(b["image"], fx.blue) == b["class_id"])  # the blue code reads the class
            assert np.all(blue_class(b["wrong_image"], fx.blue) != b["class_id"])


def test_deterministic_with_seed_and_flips_both_ways(data):
    _, out = data
    a = batches(t2i_dataset(out, "train", batch_size=4, image_size=S, seed=5), 10)
    b = batches(t2i_dataset(out, "train", batch_size=4, image_size=S, seed=5), 10)
    c = batches(t2i_dataset(out, "train", batch_size=4, image_size=S, seed=6), 10)
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert any(not np.array_equal(x["image"], z["image"]) for x, z in zip(a, c))
    img = np.concatenate([x["image"] for x in a])
    slope = img[:, :, -1, 0].mean(axis=1) - img[:, :, 0, 0].mean(axis=1)  # red = 6x in the source
    assert np.all(np.abs(slope) > 0.2)
    assert (slope > 0).sum() >= 5 and (slope < 0).sum() >= 5  # flipped and not flipped


def test_input_context_shards_disjointly(data):
    _, out = data
    for pipelines in (2, 3):  # 2 shard files per split: by file for 2 pipelines, by record for 3
        seen = []
        for pid in range(pipelines):
            ctx = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=pid,
                                             num_replicas_in_sync=pipelines)
            ds = t2i_dataset(out, "test", batch_size=8, image_size=S, training=False, input_context=ctx)
            seen.append([c for b in batches(ds, 10) for c in b["caption"]])
        flat = [c for s in seen for c in s]
        assert len(flat) == 4 and len(set(flat)) == 4 and all(seen)


def test_sizes_and_errors(data, tmp_path):
    _, out = data
    assert load_size(64) == 76 and load_size(256) == 304 and load_size(128) == 152
    ds = t2i_dataset(out, "train", batch_size=2, image_size=32, seed=0)
    assert batches(ds, 1)[0]["image"].shape == (2, 32, 32, 3)
    with pytest.raises(UserError, match="valid"):
        t2i_dataset(out, "valid", batch_size=2)
    fx = make_cub(str(tmp_path), reed=True, test_classes=(4,))
    convert.convert_cub(fx.cub_dir, str(tmp_path / "out"))
    with pytest.raises(UserError, match="at least 2"):
        t2i_dataset(str(tmp_path / "out"), "test", batch_size=2)
    info_less = t2i_dataset(str(tmp_path / "out"), "train", batch_size=2, image_size=S)
    assert "embedding" not in info_less.element_spec


def test_random_flip_off_keeps_orientation(data):
    _, out = data
    img = np.concatenate([x["image"] for x in batches(t2i_dataset(out, "train", batch_size=4, image_size=S, seed=5, random_flip=False), 10)])
    slope = img[:, :, -1, 0].mean(axis=1) - img[:, :, 0, 0].mean(axis=1)
    assert np.all(slope > 0.2)  # never mirrored
