"""Feature extractors for FID and Inception Score: the 2015 ImageNet Inception graph, or any Keras model file.

The reference network is `classify_image_graph_def.pb` from
`inception-2015-12-05.tgz` (the file TTUR's FID and OpenAI's Inception Score
use). It is read from a path the user gives (the .pb, the directory it was
extracted to, or the .tgz itself, read in memory) and never downloaded. The
frozen TF1 GraphDef is imported into a `tf.compat.v1.wrap_function`, so it runs
eagerly in TF2 on batches of any size:

- images are fed at ``ExpandDims:0`` as float pixels in [0, 255]; the graph's
  own ``ResizeBilinear`` (to 299x299) and ``Sub``/``Mul`` ((x - 128) / 128)
  nodes do the resizing and scaling, exactly as in TTUR and OpenAI's code;
- ``pool_3:0`` [N, 1, 1, 2048] gives the FID features;
- ``softmax/logits/MatMul:0`` (pool_3 @ softmax/weights, no bias: OpenAI's
  Inception Score) or ``softmax/logits:0`` (with the bias) gives [N, 1008] logits.

Two graph rewrites make this possible: the ``pool_3/_reshape`` shape constant
[1, 2048] (which limits the original graph to batch 1) becomes [-1, 2048], and
the ``BatchNormWithGlobalNormalization`` nodes (an op removed in GraphDef
version 9, which TF2 functions refuse to run) are replaced by the same
arithmetic in standard ops: (x - mean) * (rsqrt(var + eps) * gamma) + beta.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, Union

import keras
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.python.framework import op_def_registry

from t2i_tf.errors import UserError
from t2i_tf.eval.protocol import file_sha256

__all__ = [
    "FeatureExtractor",
    "InceptionGraph",
    "KerasFeatureExtractor",
    "images_to_pixels",
    "load_feature_extractor",
    "read_inception_graph_def",
]

INCEPTION_PB_NAME = "classify_image_graph_def.pb"
INCEPTION_TGZ_NAME = "inception-2015-12-05.tgz"
INPUT_TENSOR = "ExpandDims:0"
POOL3_TENSOR = "pool_3:0"
LOGITS_TENSOR = "softmax/logits:0"
LOGITS_NO_BIAS_TENSOR = "softmax/logits/MatMul:0"
INPUT_SIZE = 299

_EXPECTED = f"expected {INCEPTION_PB_NAME}, the directory it was extracted to, or {INCEPTION_TGZ_NAME}"
_RANGE_TOL = 1e-3  # float images may exceed [-1, 1] by this much (round-off) before clipping

ImageBatches = Union[np.ndarray, tf.Tensor, Iterable]


class FeatureExtractor(Protocol):
    """What FID needs from a network: images in, one feature vector per image out."""

    sha256: str
    feature_dim: int

    def features(self, images: ImageBatches, batch_size: int | None = None) -> np.ndarray:
        """[N, feature_dim] float32 features of uint8 or [-1, 1] float NHWC images."""
        ...

    def protocol(self) -> dict[str, Any]:
        """How the features are computed, for the metrics JSON."""
        ...


# ----------------------------------------------------------------------------- images


def images_to_pixels(images: np.ndarray | tf.Tensor, quantize: bool = True) -> tf.Tensor:
    """NHWC uint8 [0, 255] or float [-1, 1] images (1 or 3 channels) -> float32 RGB pixels in [0, 255].

    With `quantize`, float images are rounded to whole pixel values, i.e. the
    metric sees what saving the images as PNG would keep.
    """
    x = tf.convert_to_tensor(images)
    if x.shape.rank != 4:
        raise UserError(f"expected images of shape [N, H, W, C], got shape {x.shape}")
    channels = x.shape[-1]
    if channels == 1:
        x = tf.tile(x, [1, 1, 1, 3])
    elif channels != 3:
        raise UserError(f"expected images with 1 or 3 channels, got {channels}")
    if x.dtype == tf.uint8:
        return tf.cast(x, tf.float32)
    if not x.dtype.is_floating:
        raise UserError(f"expected uint8 images in [0, 255] or float images in [-1, 1], got dtype {x.dtype.name}")
    x = tf.cast(x, tf.float32)
    if tf.size(x) > 0:
        lo, hi = float(tf.reduce_min(x)), float(tf.reduce_max(x))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise UserError("images contain NaN or Inf")
        if lo < -1.0 - _RANGE_TOL or hi > 1.0 + _RANGE_TOL:
            raise UserError(
                f"float images must lie in [-1, 1] (got values in [{lo:.4g}, {hi:.4g}]); "
                "pass uint8 images for the [0, 255] range"
            )
    pixels = (tf.clip_by_value(x, -1.0, 1.0) + 1.0) * 127.5
    return tf.round(pixels) if quantize else pixels


def _iter_batches(images: ImageBatches, batch_size: int) -> Iterator[Any]:
    """Yields slices of at most `batch_size` images from an array or from an iterable of arrays."""
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(images, (np.ndarray, tf.Tensor)):
        sources: Iterable = [images]
    elif isinstance(images, Iterable):
        sources = images
    else:
        raise UserError(f"expected an image array or an iterable of image batches, got {type(images).__name__}")
    for source in sources:
        if not isinstance(source, tf.Tensor):
            source = np.asarray(source)
        n = int(source.shape[0]) if len(source.shape) else 0
        for start in range(0, n, batch_size):
            yield source[start : start + batch_size]


def _run_batched(fn, images: ImageBatches, batch_size: int, num_outputs: int) -> list[np.ndarray]:
    """Applies `fn` (a batch -> tuple of tensors) to every batch and concatenates each output."""
    outputs: list[list[np.ndarray]] = [[] for _ in range(num_outputs)]
    for batch in _iter_batches(images, batch_size):
        for store, value in zip(outputs, fn(batch)):
            store.append(np.asarray(value))
    if not outputs[0]:
        raise UserError("no images were given to the feature extractor")
    return [np.concatenate(store, axis=0) for store in outputs]


# ----------------------------------------------------------------------------- GraphDef loading


def _read_tar_member(path: str) -> bytes:
    """The bytes of classify_image_graph_def.pb inside a (gzipped) tar, read without extracting to disk."""
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                if member.isfile() and os.path.basename(member.name) == INCEPTION_PB_NAME:
                    handle = tar.extractfile(member)
                    if handle is None:
                        break
                    return handle.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise UserError(f"cannot read the archive {path!r} ({exc}); {_EXPECTED}") from exc
    raise UserError(f"the archive {path!r} has no member {INCEPTION_PB_NAME}; {_EXPECTED}")


def _read_graph_def_bytes(path: str | os.PathLike) -> tuple[bytes, str]:
    """Reads the Inception GraphDef bytes from a .pb, a directory or a .tgz; returns (bytes, source description)."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise UserError(f"Inception weights not found at {p!r}; {_EXPECTED}")
    if os.path.isdir(p):
        pb_path = os.path.join(p, INCEPTION_PB_NAME)
        tgz_path = os.path.join(p, INCEPTION_TGZ_NAME)
        if os.path.isfile(pb_path):
            p = pb_path
        elif os.path.isfile(tgz_path):
            p = tgz_path
        else:
            raise UserError(
                f"the directory {p!r} contains neither {INCEPTION_PB_NAME} nor {INCEPTION_TGZ_NAME}; {_EXPECTED}"
            )
    try:
        is_tar = tarfile.is_tarfile(p)
    except OSError as exc:
        raise UserError(f"cannot read Inception weights {p!r} ({exc}); {_EXPECTED}") from exc
    if is_tar:
        return _read_tar_member(p), f"{p}:{INCEPTION_PB_NAME}"
    try:
        with open(p, "rb") as f:
            return f.read(), p
    except OSError as exc:
        raise UserError(f"cannot read Inception weights {p!r} ({exc}); {_EXPECTED}") from exc


def read_inception_graph_def(path: str | os.PathLike) -> tuple[tf.compat.v1.GraphDef, str, str]:
    """Parses the GraphDef from a .pb, directory or .tgz; returns (graph_def, SHA-256 of the .pb bytes, source)."""
    data, source = _read_graph_def_bytes(path)
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise UserError(f"{source!r} is not a TensorFlow GraphDef; {_EXPECTED}") from exc
    return graph_def, hashlib.sha256(data).hexdigest(), source


def _node_name(tensor_or_input: str) -> str:
    """'^name', 'name:1' or 'name' -> 'name'."""
    return tensor_or_input.lstrip("^").split(":")[0]


def _float_const(name: str, value: float, dtype_enum: int) -> tf.compat.v1.NodeDef:
    """A scalar Const NodeDef."""
    node = tf.compat.v1.NodeDef(name=name, op="Const")
    node.attr["dtype"].type = dtype_enum
    dtype = tf.dtypes.as_dtype(dtype_enum)
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.asarray(value, dtype=dtype.as_numpy_dtype)))
    return node


def _binary(name: str, op: str, a: str, b: str, dtype_enum: int) -> tf.compat.v1.NodeDef:
    """A two-input elementwise NodeDef."""
    node = tf.compat.v1.NodeDef(name=name, op=op, input=[a, b])
    node.attr["T"].type = dtype_enum
    return node


def _rewrite_batch_norm(node: tf.compat.v1.NodeDef, taken: set[str]) -> list[tf.compat.v1.NodeDef]:
    """Standard-op replacement of a BatchNormWithGlobalNormalization node, keeping its name for consumers."""
    data = [i for i in node.input if not i.startswith("^")]
    control = [i for i in node.input if i.startswith("^")]
    t, mean, var, beta, gamma = data
    dtype_enum = node.attr["T"].type
    eps = node.attr["variance_epsilon"].f
    scale_after = node.attr["scale_after_normalization"].b

    def fresh(suffix: str) -> str:
        name = f"{node.name}/_t2i_{suffix}"
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    eps_n = _float_const(fresh("eps"), eps, dtype_enum)
    var_eps = _binary(fresh("var_eps"), "AddV2", var, eps_n.name, dtype_enum)
    inv = tf.compat.v1.NodeDef(name=fresh("rsqrt"), op="Rsqrt", input=[var_eps.name])
    inv.attr["T"].type = dtype_enum
    nodes = [eps_n, var_eps, inv]
    scale_name = inv.name
    if scale_after:
        scale = _binary(fresh("scale"), "Mul", inv.name, gamma, dtype_enum)
        nodes.append(scale)
        scale_name = scale.name
    centered = _binary(fresh("centered"), "Sub", t, mean, dtype_enum)
    scaled = _binary(fresh("scaled"), "Mul", centered.name, scale_name, dtype_enum)
    out = _binary(node.name, "AddV2", scaled.name, beta, dtype_enum)
    out.input.extend(control)
    if node.device:
        for n in (*nodes, centered, scaled, out):
            n.device = node.device
    return [*nodes, centered, scaled, out]


class _PreparedGraph:
    """The Inception GraphDef cut down to input -> outputs, made batch- and TF2-compatible."""

    def __init__(self, graph_def: tf.compat.v1.GraphDef, source: str, outputs: list[str]) -> None:
        """Prunes, rewrites and validates `graph_def` for the given output tensor names."""
        nodes = {n.name: n for n in graph_def.node}
        wanted = [INPUT_TENSOR, POOL3_TENSOR, *outputs]
        missing = sorted({t for t in wanted if _node_name(t) not in nodes})
        if missing:
            raise UserError(
                f"{source!r} is not the Inception graph: missing tensors {', '.join(missing)}; "
                f"{_EXPECTED} (inception-2015-12-05)"
            )
        input_name = _node_name(INPUT_TENSOR)
        keep: set[str] = set()
        stack = [_node_name(t) for t in (POOL3_TENSOR, *outputs)]
        while stack:
            name = stack.pop()
            if name in keep:
                continue
            if name not in nodes:
                raise UserError(f"{source!r} is a broken GraphDef: node {name!r} is used but not defined")
            keep.add(name)
            if name != input_name:
                stack.extend(_node_name(i) for i in nodes[name].input)

        taken = set(nodes)
        out = tf.compat.v1.GraphDef()
        out.versions.CopyFrom(graph_def.versions)
        out.library.CopyFrom(graph_def.library)
        self.batch_norm_rewrites = 0
        self.batch_reshape_patched = False
        self.resize: dict[str, Any] | None = None
        for node in graph_def.node:
            if node.name not in keep:
                continue
            if node.name == input_name:
                placeholder = out.node.add(name=input_name, op="Placeholder")
                placeholder.attr["dtype"].type = tf.float32.as_datatype_enum
                placeholder.attr["shape"].shape.CopyFrom(tf.TensorShape([None, None, None, 3]).as_proto())
                continue
            if node.op == "BatchNormWithGlobalNormalization":
                out.node.extend(_rewrite_batch_norm(node, taken))
                self.batch_norm_rewrites += 1
                continue
            new = out.node.add()
            new.CopyFrom(node)
            if "_output_shapes" in new.attr:
                del new.attr["_output_shapes"]  # stale batch-1 shape hints
            if new.op == "Reshape" and _node_name(new.input[0]) == _node_name(POOL3_TENSOR):
                self._patch_batch_reshape(new, nodes, out, taken, source)
            if new.op == "ResizeBilinear" and self.resize is None:
                self.resize = self._resize_info(new, nodes)
        self._check_ops(out, source)
        self.graph_def = out

    def _patch_batch_reshape(
        self,
        reshape: tf.compat.v1.NodeDef,
        nodes: dict[str, tf.compat.v1.NodeDef],
        out: tf.compat.v1.GraphDef,
        taken: set[str],
        source: str,
    ) -> None:
        """Replaces a constant [1, D] target shape of the reshape after pool_3 by [-1, D] (a new Const node)."""
        shape_node = nodes.get(_node_name(reshape.input[1]))
        if shape_node is None or shape_node.op != "Const":
            raise UserError(f"{source!r}: unexpected Inception graph, the reshape after pool_3 has no constant shape")
        shape = tf.make_ndarray(shape_node.attr["value"].tensor).copy()
        if shape.ndim != 1 or shape.size == 0 or shape[0] != 1:
            return
        shape[0] = -1
        name = f"{shape_node.name}/_t2i_any_batch"
        while name in taken:
            name += "_"
        taken.add(name)
        const = out.node.add(name=name, op="Const")
        const.attr["dtype"].type = shape_node.attr["dtype"].type
        const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(shape))
        reshape.input[1] = name
        self.batch_reshape_patched = True

    @staticmethod
    def _resize_info(node: tf.compat.v1.NodeDef, nodes: dict[str, tf.compat.v1.NodeDef]) -> dict[str, Any]:
        """The graph's resize: output size and pixel-centre convention."""
        size_node = nodes.get(_node_name(node.input[1]))
        size = None
        if size_node is not None and size_node.op == "Const":
            size = [int(v) for v in tf.make_ndarray(size_node.attr["value"].tensor).reshape(-1)]
        return {
            "op": "ResizeBilinear",
            "size": size,
            "align_corners": bool(node.attr["align_corners"].b),
            "half_pixel_centers": bool(node.attr["half_pixel_centers"].b),
        }

    @staticmethod
    def _check_ops(graph_def: tf.compat.v1.GraphDef, source: str) -> None:
        """Fails early, with names, on ops this TensorFlow cannot run in a function."""
        unknown, removed = set(), set()
        for node in graph_def.node:
            op_def = op_def_registry.get(node.op)
            if op_def is None:
                unknown.add(node.op)
            elif op_def.HasField("deprecation") and op_def.deprecation.version <= tf.version.GRAPH_DEF_VERSION:
                removed.add(node.op)
        if unknown or removed:
            raise UserError(
                f"{source!r} uses ops this TensorFlow cannot run: "
                f"{', '.join(sorted(unknown | removed))}; {_EXPECTED}"
            )


class InceptionGraph:
    """The 2015 ImageNet Inception graph as a batched TF2 feature extractor (pool_3 features and logits)."""

    def __init__(self, path: str | os.PathLike, logits_bias: bool = False, batch_size: int = 50) -> None:
        """Loads the graph from a .pb, its directory or inception-2015-12-05.tgz.

        logits_bias=False gives OpenAI's Inception Score logits (pool_3 @ W, the
        bias is left out as in improved-gan); True uses softmax/logits (pool_3 @ W + b).
        """
        graph_def, self.sha256, self.source = read_inception_graph_def(path)
        self.path = os.fspath(path)
        self.logits_bias = bool(logits_bias)
        self.batch_size = int(batch_size)
        self.logits_tensor = LOGITS_TENSOR if self.logits_bias else LOGITS_NO_BIAS_TENSOR
        prepared = _PreparedGraph(graph_def, self.source, [self.logits_tensor])
        self._prepared = prepared
        pruned = prepared.graph_def
        logits_name = self.logits_tensor

        def _imported(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            pool3, logits = tf.compat.v1.import_graph_def(
                pruned,
                input_map={INPUT_TENSOR: images},
                return_elements=[POOL3_TENSOR, logits_name],
                name="inception",
            )
            return tf.reshape(pool3, [tf.shape(pool3)[0], -1]), logits

        try:
            self._fn = tf.compat.v1.wrap_function(_imported, [tf.TensorSpec([None, None, None, 3], tf.float32)])
        except (ValueError, TypeError, tf.errors.OpError) as exc:
            raise UserError(
                f"{self.source!r} could not be imported as the Inception graph ({exc}); {_EXPECTED}"
            ) from exc
        feature_shape, logits_shape = (t.shape for t in self._fn.outputs)
        self.feature_dim = feature_shape[-1]
        self.num_classes = logits_shape[-1]

    def _run(self, pixels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Runs the graph on float [0, 255] pixels, resizing first if the graph has no resize node."""
        if self._prepared.resize is None:
            pixels = tf.compat.v1.image.resize_bilinear(pixels, [INPUT_SIZE, INPUT_SIZE], align_corners=False)
        return self._fn(pixels)

    def features_and_logits(
        self, images: ImageBatches, batch_size: int | None = None, quantize: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """pool_3 features [N, 2048] and logits [N, 1008] of NHWC uint8 or [-1, 1] float images, in one pass."""
        features, logits = self._batched(images, batch_size, quantize, slice(0, 2))
        return features, logits

    def features(self, images: ImageBatches, batch_size: int | None = None, quantize: bool = True) -> np.ndarray:
        """pool_3 features [N, 2048] (float32) for FID."""
        return self._batched(images, batch_size, quantize, slice(0, 1))[0]

    def logits(self, images: ImageBatches, batch_size: int | None = None, quantize: bool = True) -> np.ndarray:
        """Class logits [N, 1008] (float32) for the Inception Score (use from_logits=True)."""
        return self._batched(images, batch_size, quantize, slice(1, 2))[0]

    def _batched(
        self, images: ImageBatches, batch_size: int | None, quantize: bool, outputs: slice
    ) -> list[np.ndarray]:
        """Runs all images in batches and returns the selected outputs, concatenated."""
        count = len(range(2)[outputs])
        return _run_batched(
            lambda b: self._run(images_to_pixels(b, quantize))[outputs], images, batch_size or self.batch_size, count
        )

    def protocol(self) -> dict[str, Any]:
        """How features and logits are computed, for the metrics JSON."""
        return {
            "network": f"inception-2015-12-05/{INCEPTION_PB_NAME}",
            "source": self.source,
            "weights_sha256": self.sha256,
            "input_tensor": INPUT_TENSOR,
            "input_pixels": "float [0, 255]; uint8 as is, float [-1, 1] as round((x + 1) * 127.5)",
            "resize": self._prepared.resize
            or {"op": "resize_bilinear", "size": [INPUT_SIZE, INPUT_SIZE], "align_corners": False},
            "feature_tensor": POOL3_TENSOR,
            "feature_dim": self.feature_dim,
            "logits_tensor": self.logits_tensor,
            "logits_bias": self.logits_bias,
            "num_classes": self.num_classes,
            "batch_reshape_patched": self._prepared.batch_reshape_patched,
            "batch_norm_rewrites": self._prepared.batch_norm_rewrites,
        }


# ----------------------------------------------------------------------------- Keras models


class KerasFeatureExtractor:
    """A Keras model file (--fid_model=path.keras) as feature extractor, where ImageNet features mean little."""

    def __init__(
        self,
        path: str | os.PathLike,
        input_size: tuple[int, int] | None = None,
        input_range: tuple[float, float] = (-1.0, 1.0),
        batch_size: int = 50,
    ) -> None:
        """Loads the model; images are resized to `input_size` (default: the model's H, W), mapped to `input_range`."""
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise UserError(f"feature model not found: {self.path!r}; expected a Keras model file (.keras)")
        try:
            self.model = keras.saving.load_model(self.path, compile=False)
        except Exception as exc:  # Keras raises many types for a bad file
            raise UserError(f"cannot load {self.path!r} as a Keras model ({exc}); expected a .keras file") from exc
        self.sha256 = file_sha256(self.path)
        shape = tuple(self.model.inputs[0].shape) if getattr(self.model, "inputs", None) else (None,) * 4
        if input_size is None and shape[1] is not None and shape[2] is not None:
            input_size = (int(shape[1]), int(shape[2]))
        self.input_size = input_size
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.batch_size = int(batch_size)
        self.feature_dim = int(self._embed(tf.zeros([1, *(input_size or (32, 32)), 3]))[0].shape[-1])

    def _embed(self, pixels: tf.Tensor) -> tuple[tf.Tensor]:
        """Resizes float [0, 255] pixels, maps them to the model's range and returns [B, D] features."""
        if self.input_size is not None and tuple(pixels.shape[1:3]) != tuple(self.input_size):
            pixels = tf.image.resize(pixels, self.input_size, method="bilinear")
        lo, hi = self.input_range
        x = lo + pixels * ((hi - lo) / 255.0)
        out = self.model(x, training=False)
        if isinstance(out, (list, tuple)):
            out = out[0]
        out = tf.convert_to_tensor(out)
        if out.shape.rank == 4:
            out = tf.reduce_mean(out, axis=[1, 2])  # a feature map: global average pool
        elif out.shape.rank != 2:
            raise UserError(f"{self.path!r}: expected the model to output [N, D] features, got shape {out.shape}")
        return (tf.cast(out, tf.float32),)

    def features(self, images: ImageBatches, batch_size: int | None = None, quantize: bool = True) -> np.ndarray:
        """[N, D] features of NHWC uint8 or [-1, 1] float images."""
        embed = lambda b: self._embed(images_to_pixels(b, quantize))  # noqa: E731
        return _run_batched(embed, images, batch_size or self.batch_size, 1)[0]

    def protocol(self) -> dict[str, Any]:
        """How features are computed, for the metrics JSON."""
        return {
            "network": "keras",
            "source": self.path,
            "weights_sha256": self.sha256,
            "input_pixels": "float [0, 255]; uint8 as is, float [-1, 1] as round((x + 1) * 127.5)",
            "resize": {"op": "tf.image.resize bilinear", "size": list(self.input_size) if self.input_size else None},
            "input_range": list(self.input_range),
            "feature_dim": self.feature_dim,
        }


def load_feature_extractor(path: str | os.PathLike, **kwargs: Any) -> FeatureExtractor:
    """A KerasFeatureExtractor for .keras/.h5 files, else the Inception graph (.pb, directory or .tgz)."""
    if os.fspath(path).endswith((".keras", ".h5")):
        return KerasFeatureExtractor(path, **kwargs)
    return InceptionGraph(path, **kwargs)
