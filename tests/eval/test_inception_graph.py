"""Tests for t2i_tf.eval.inception_graph on a small synthetic copy of the Inception GraphDef.

The real classify_image_graph_def.pb cannot be downloaded here, so the fixture
builds a tiny graph with the same tensor names and the same quirks: an
``ExpandDims`` input in [0, 255] reached from ``DecodeJpeg``, the graph's own
``ResizeBilinear`` to 299x299 and ``Sub``/``Mul`` scaling, legacy
``BatchNormWithGlobalNormalization`` and ``Concat`` ops, ``pool_3``
[1, 1, 1, 2048] followed by the batch-1 ``pool_3/_reshape`` to [1, 2048], and
``softmax/logits/MatMul`` + bias -> ``softmax/logits`` [1, 1008]. GraphDef
producer version 5, as a 2015 graph. The reference outputs come from running
that original graph in a TF1 session one image at a time, as TTUR/OpenAI do.
"""

import hashlib
import io
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.errors import UserError
from t2i_tf.eval import inception_graph as ig

_BN_IDENTITIES = {
    # identity node -> (input, scale_after_normalization)
    "conv/batchnorm": ("conv/Conv2D", True),
    "mixed_10/tower_1/conv/batchnorm": ("mixed_10/tower_1/conv/Conv2D", False),
}


def _const(rng, shape, name, scale=1.0, positive=False):
    value = rng.normal(size=shape) * scale
    if positive:
        value = np.abs(value) + 0.5
    return tf.constant(value.astype(np.float32), name=name)


def build_synthetic_inception_graph_def(seed: int = 0) -> tf.compat.v1.GraphDef:
    """A small GraphDef with the Inception tensor names, shapes and batch-1 quirks."""
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        decoded = tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg")
        cast = tf.cast(decoded, tf.float32, name="Cast")
        expand = tf.expand_dims(cast, 0, name="ExpandDims")
        size = tf.constant([299, 299], tf.int32, name="ResizeBilinear/size")
        resized = tf.raw_ops.ResizeBilinear(
            images=expand, size=size, align_corners=False, half_pixel_centers=False, name="ResizeBilinear"
        )
        sub = tf.subtract(resized, tf.constant(128.0, name="Sub/y"), name="Sub")
        mul = tf.multiply(sub, tf.constant(1.0 / 128.0, name="Mul/y"), name="Mul")
        conv = tf.nn.conv2d(mul, _const(rng, (3, 3, 3, 8), "conv/conv2d_params", 0.3), 8, "VALID", name="conv/Conv2D")
        for prefix, channels in (("conv/batchnorm", 8), ("mixed_10/tower_1/conv/batchnorm", 1024)):
            _const(rng, (channels,), f"{prefix}/moving_mean", 0.5)
            _const(rng, (channels,), f"{prefix}/moving_variance", positive=True)
            _const(rng, (channels,), f"{prefix}/beta", 0.2)
            _const(rng, (channels,), f"{prefix}/gamma", positive=True)
        bn = tf.identity(conv, name="conv/batchnorm")  # becomes BatchNormWithGlobalNormalization below
        act = tf.nn.relu(bn, name="conv/relu")
        pool = tf.nn.max_pool2d(act, 3, 2, "VALID", name="pool")  # 38 -> 18
        tower = tf.nn.relu(
            tf.nn.conv2d(pool, _const(rng, (3, 3, 8, 1024), "mixed_10/tower/conv/conv2d_params", 0.2), 2, "VALID"),
            name="mixed_10/tower/conv",
        )
        conv1 = tf.nn.conv2d(
            pool, _const(rng, (3, 3, 8, 1024), "mixed_10/tower_1/conv/conv2d_params", 0.2), 2, "VALID",
            name="mixed_10/tower_1/conv/Conv2D",
        )
        tower1 = tf.nn.relu(tf.identity(conv1, name="mixed_10/tower_1/conv/batchnorm"), name="mixed_10/tower_1/conv")
        join = tf.raw_ops.Concat(
            concat_dim=tf.constant(3, name="mixed_10/join/concat_dim"), values=[tower, tower1], name="mixed_10/join"
        )  # legacy Concat, [1, 8, 8, 2048]
        pool3 = tf.nn.avg_pool2d(join, 8, 1, "VALID", name="pool_3")  # [1, 1, 1, 2048]
        flat = tf.reshape(pool3, tf.constant([1, 2048], name="pool_3/_reshape/shape"), name="pool_3/_reshape")
        weights = _const(rng, (2048, 1008), "softmax/weights", 0.05)
        biases = _const(rng, (1008,), "softmax/biases", 1.0)
        matmul = tf.matmul(flat, weights, name="softmax/logits/MatMul")
        logits = tf.nn.bias_add(matmul, biases, name="softmax/logits")
        tf.nn.softmax(logits, name="softmax")
    graph_def = graph.as_graph_def()
    for node in graph_def.node:
        if node.name in _BN_IDENTITIES:
            data_input, scale_after = _BN_IDENTITIES[node.name]
            node.op = "BatchNormWithGlobalNormalization"
            del node.input[:]
            node.input.extend(
                [data_input] + [f"{node.name}/{k}" for k in ("moving_mean", "moving_variance", "beta", "gamma")]
            )
            node.attr.clear()
            node.attr["T"].type = tf.float32.as_datatype_enum
            node.attr["variance_epsilon"].f = 0.001
            node.attr["scale_after_normalization"].b = scale_after
    graph_def.versions.producer = 5
    graph_def.versions.min_consumer = 0
    return graph_def


def _reference_outputs(graph_def, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """The original graph, run in a TF1 session one image at a time (batch 1 is all it supports)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    names = ["pool_3:0", "softmax/logits:0", "softmax/logits/MatMul:0"]
    out = {n: [] for n in names}
    with tf.compat.v1.Session(graph=graph) as sess:
        for image in pixels:
            values = sess.run(names, {"ExpandDims:0": image[None].astype(np.float32)})
            for n, v in zip(names, values):
                out[n].append(v.reshape(1, -1))
    return {n: np.concatenate(v) for n, v in out.items()}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The synthetic graph written as a .pb, an extracted directory and a .tgz."""
    graph_def = build_synthetic_inception_graph_def()
    data = graph_def.SerializeToString()
    root = tmp_path_factory.mktemp("inception")
    extracted = root / "extracted"
    extracted.mkdir()
    pb = extracted / ig.INCEPTION_PB_NAME
    pb.write_bytes(data)
    tgz = root / ig.INCEPTION_TGZ_NAME
    with tarfile.open(tgz, "w:gz") as tar:
        for name, payload in (("LICENSE", b"license text"), (ig.INCEPTION_PB_NAME, data)):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return {"graph_def": graph_def, "sha256": hashlib.sha256(data).hexdigest(), "pb": pb, "dir": extracted, "tgz": tgz}


@pytest.fixture(scope="module")
def net(weights):
    return ig.InceptionGraph(weights["pb"])


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 64, 64, 3), dtype=np.uint8)


def test_matches_original_graph_and_batches_of_two(net, weights, images):
    ref = _reference_outputs(weights["graph_def"], images)
    feats, logits = net.features_and_logits(images, batch_size=2)
    assert feats.shape == (5, 2048) and feats.dtype == np.float32
    assert logits.shape == (5, 1008)
    np.testing.assert_allclose(feats, ref["pool_3:0"], rtol=1e-4, atol=1e-5)
    # Default logits follow OpenAI's Inception Score code: pool_3 @ softmax weights, no bias.
    np.testing.assert_allclose(logits, ref["softmax/logits/MatMul:0"], rtol=1e-4, atol=1e-4)
    assert not np.allclose(logits, ref["softmax/logits:0"], atol=1e-2)
    protocol = net.protocol()
    assert protocol["batch_reshape_patched"] is True
    assert protocol["batch_norm_rewrites"] == 2
    assert protocol["weights_sha256"] == weights["sha256"]


def test_logits_with_bias(weights, images):
    net_b = ig.InceptionGraph(weights["pb"], logits_bias=True)
    ref = _reference_outputs(weights["graph_def"], images[:2])
    np.testing.assert_allclose(net_b.logits(images[:2]), ref["softmax/logits:0"], rtol=1e-4, atol=1e-4)
    assert net_b.protocol()["logits_tensor"] == "softmax/logits:0"


def test_batching_does_not_change_features(net, images):
    one_by_one = net.features(images, batch_size=1)
    np.testing.assert_allclose(net.features(images, batch_size=2), one_by_one, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.features(images, batch_size=5), one_by_one, rtol=1e-5, atol=1e-6)
    # An iterable of batches gives the same as the array.
    np.testing.assert_allclose(net.features(iter([images[:3], images[3:]])), one_by_one, rtol=1e-5, atol=1e-6)


def test_64px_inputs_are_resized_to_299_by_the_graph(net, images):
    assert net.protocol()["resize"] == {
        "op": "ResizeBilinear", "size": [299, 299], "align_corners": False, "half_pixel_centers": False,
    }
    resized = tf.compat.v1.image.resize_bilinear(
        tf.constant(images, tf.float32), [299, 299], align_corners=False, half_pixel_centers=False
    ).numpy()
    assert resized.shape == (5, 299, 299, 3)
    pre_resized = net.features(resized / 127.5 - 1.0, batch_size=5, quantize=False)
    np.testing.assert_allclose(net.features(images, batch_size=5), pre_resized, rtol=1e-4, atol=1e-5)
    # A differently sized input still works (any H, W).
    assert net.features(images[:, :40, :50]).shape == (5, 2048)


def test_float_images_in_minus_one_one_match_uint8(net, images):
    as_float = images.astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(net.features(as_float), net.features(images), rtol=1e-5, atol=1e-6)
    gray = images[..., :1]
    np.testing.assert_allclose(net.features(gray), net.features(np.repeat(gray, 3, -1)), rtol=1e-6)
    with pytest.raises(UserError, match=r"\[-1, 1\]"):
        net.features(images.astype(np.float32))
    with pytest.raises(UserError, match="1 or 3 channels"):
        net.features(np.zeros((2, 8, 8, 4), np.uint8))
    with pytest.raises(UserError, match=r"\[N, H, W, C\]"):
        net.features(np.zeros((8, 8, 3), np.uint8))


def test_pb_directory_and_tgz_load_the_same_network(net, weights, images):
    for key in ("dir", "tgz"):
        other = ig.InceptionGraph(weights[key])
        assert other.sha256 == weights["sha256"]
        np.testing.assert_allclose(other.features(images[:2]), net.features(images[:2]), rtol=1e-6)
    assert ig.InceptionGraph(weights["tgz"]).source.endswith(f"{ig.INCEPTION_TGZ_NAME}:{ig.INCEPTION_PB_NAME}")


def test_missing_and_wrong_files_raise_user_errors(tmp_path):
    expected = "expected classify_image_graph_def.pb"
    with pytest.raises(UserError, match=f"not found at .*nope.pb.*{expected}"):
        ig.InceptionGraph(tmp_path / "nope.pb")
    with pytest.raises(UserError, match=f"contains neither.*{expected}"):
        ig.InceptionGraph(tmp_path)
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(UserError, match=f"garbage.pb.*not a TensorFlow GraphDef.*{expected}"):
        ig.InceptionGraph(garbage)
    tgz = tmp_path / "other.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("README")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(UserError, match="other.tgz.*has no member classify_image_graph_def.pb"):
        ig.InceptionGraph(tgz)


def test_graph_def_without_inception_tensors_lists_missing_names(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3], name="ExpandDims")
        tf.reduce_mean(x, axis=[1, 2], keepdims=True, name="pool_3")
    path = tmp_path / "classify_image_graph_def.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(UserError, match="missing tensors softmax/logits/MatMul:0") as info:
        ig.InceptionGraph(path)
    assert "pool_3:0" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(UserError, match="softmax/logits:0"):
        ig.InceptionGraph(path, logits_bias=True)


def test_keras_feature_extractor(tmp_path, images):
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(6)(x))
    path = tmp_path / "feat.keras"
    model.save(path)
    extractor = ig.load_feature_extractor(path)
    assert isinstance(extractor, ig.KerasFeatureExtractor)
    assert extractor.feature_dim == 6 and len(extractor.sha256) == 64
    feats = extractor.features(images, batch_size=2)
    expected = model(tf.image.resize(images.astype(np.float32), (16, 16)) / 127.5 - 1.0).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="feature model not found"):
        ig.KerasFeatureExtractor(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot load .*bad.keras"):
        ig.KerasFeatureExtractor(bad)


def test_metrics_json_records_the_weights_hash_atomically(net, weights, tmp_path):
    from t2i_tf.eval.protocol import file_sha256, read_metrics_json, write_metrics_json

    assert file_sha256(weights["pb"]) == weights["sha256"]
    path = tmp_path / "eval" / "metrics.json"
    metrics = {"fid": np.float64(12.5), "is_mean": np.float32(3.0), "bad": float("nan"), "folds": np.arange(3)}
    write_metrics_json(path, metrics, {"inception": net.protocol(), "splits": 10}, step=np.int64(700))
    write_metrics_json(path, {"fid": 11.0}, {"inception": net.protocol()}, step=800)  # replaces the file
    record = read_metrics_json(path)
    assert record["step"] == 800 and record["metrics"] == {"fid": 11.0}
    assert record["protocol"]["inception"]["weights_sha256"] == weights["sha256"]
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temporary files left
    write_metrics_json(path, metrics, {}, step=1)
    assert read_metrics_json(path)["metrics"] == {"fid": 12.5, "is_mean": 3.0, "bad": None, "folds": [0, 1, 2]}
    with pytest.raises(UserError, match="file not found"):
        file_sha256(tmp_path / "missing.pb")
