"""One SavedModel export as the web demo sees it: its description and signatures, called on JSON-friendly inputs
with every input checked first (types, rows, pixels), plus DAMSM caption ranking. The demos per task
(t2i_tf/serve/demos.py) build on it."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import threading
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image

from t2i_tf.data.images import image_header_size, read_image
from t2i_tf.errors import UserError
from t2i_tf.export.description import DESCRIPTION_FILE
from t2i_tf.serve.gallery import MAX_IMAGE_PIXELS, bomb_refused

MAX_ROWS = 64  # images / captions per request
MAX_REQUEST_PIXELS = 16 * 1024 * 1024  # all images of one request together (~48 MB decoded)


def _base64_bytes(data: str, what: str) -> bytes:
    data = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:
        raise UserError(f"{what} is not base64-encoded image bytes") from None


def decode_image(data: str | bytes, what: str = "image") -> np.ndarray:
    """uint8 RGB [H, W, 3] from base64 text (a data: URI prefix is allowed) or raw bytes; UserError if unreadable."""
    if isinstance(data, str):
        data = _base64_bytes(data, what)
    try:
        return read_image(data, what, max_pixels=MAX_IMAGE_PIXELS)
    except Image.DecompressionBombError as e:
        raise bomb_refused(what, e) from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def _check_image_strings(key: str, value: Any) -> None:
    """A UserError unless ``value`` is a base64 string or a list of them (checked before any decoding)."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise UserError(f"{key}: give at least one image")
    for i, item in enumerate(items[:MAX_ROWS + 1]):
        if not isinstance(item, str):
            where = f"{key}[{i}]" if isinstance(value, list) else key
            raise UserError(f"{where} must be a base64-encoded PNG or JPEG image (a string); got {_json_type(item)}")


def encode_png(image: np.ndarray) -> str:
    """Base64 PNG of a uint8 [H, W, 3] image."""
    out = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


def _spec_kind(spec: tf.TensorSpec) -> str:
    if spec.dtype == tf.string:
        return "text"
    if spec.dtype == tf.uint8 and spec.shape.rank == 4:
        return "image"
    if spec.shape.rank == 0:
        return "integer" if spec.dtype.is_integer else "number"
    return "array"


class DemoModel:
    """One loaded export: its description and signatures."""

    def __init__(self, export_dir: str):
        path = os.path.join(export_dir, DESCRIPTION_FILE)
        if not os.path.isfile(path):
            raise UserError(f"{export_dir} is not an export of main.py (no {DESCRIPTION_FILE}): "
                            "run python main.py --model=... --mode=export first")
        with open(path) as f:
            self.description = json.load(f)
        self.export_dir = export_dir
        self.module = tf.saved_model.load(export_dir)
        self.signatures = dict(self.module.signatures)
        self.inputs = {name: {k: _spec_kind(s) for k, s in sig.structured_input_signature[1].items()}
                       for name, sig in self.signatures.items()}
        self._lock = threading.Lock()  # one TF call at a time from the server's threads

    # --------------------------------------------------------------- facts
    @property
    def model_name(self) -> str:
        return str(self.description.get("model"))

    @property
    def actions(self) -> list[str]:
        """Signature names plus DAMSM's caption ranking when the export has both encoders."""
        extra = ["match"] if {"encode_text", "encode_image"} <= set(self.signatures) else []
        return extra + sorted(self.signatures)

    def info(self) -> dict[str, Any]:
        return {"model": self.model_name, "image_size": self.description.get("image_size"),
                "inputs": self.inputs, "description": self.description}

    # --------------------------------------------------------------- calls
    def run(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Do ``action`` on a JSON payload; returns a JSON-friendly dict. UserError for bad input."""
        if not isinstance(payload, dict):
            raise UserError("the request body must be a JSON object")
        if action == "match" and "match" in self.actions:
            return self.match(payload)
        if action not in self.signatures:
            raise UserError(f"this {self.model_name} export has no action {action!r}; "
                            f"it has {', '.join(self.actions)}")
        out = self.call(action, payload)
        if "known_words" in out:  # a text with no vocabulary word would be drawn from unknown tokens only
            texts = payload.get("text")
            texts = [texts] if isinstance(texts, str) else texts
            for text, known in zip(texts, out["known_words"]):
                if int(known) == 0:
                    raise UserError(f"no word of the text {text.strip()!r} is in the model's vocabulary")
        return {k: self._output(v) for k, v in out.items()}

    def call(self, name: str, payload: dict[str, Any]) -> dict[str, np.ndarray]:
        """Call signature ``name`` on JSON inputs (texts as lists of strings, images as base64, scalars as
        numbers); returns its outputs as numpy arrays."""
        kinds = self.inputs[name]
        missing = [k for k in kinds if k not in payload]
        if missing:
            raise UserError(f"{name} needs {', '.join(missing)} (inputs: {', '.join(kinds)})")
        # Types, rows and the images' total pixels are checked before anything is decoded.
        for k, kind in kinds.items():
            if kind == "image":
                _check_image_strings(k, payload[k])
        raw_rows = {len(payload[k]) if isinstance(payload[k], list) else 1 for k, kind in kinds.items()
                    if kind in ("text", "image")}
        if len(raw_rows) > 1:
            raise UserError(f"{name}: the image / text inputs must have the same number of rows; got {sorted(raw_rows)}")
        self._check_pixel_budget([payload[k] for k, kind in kinds.items() if kind == "image"])
        args = {k: self._tensor(k, kind, payload[k], self.signatures[name].structured_input_signature[1][k])
                for k, kind in kinds.items()}
        rows = {int(v.shape[0]) for k, v in args.items() if kinds[k] in ("text", "image", "array")}
        if len(rows) > 1:
            raise UserError(f"{name}: the image / text / array inputs must have the same number of rows; got {sorted(rows)}")
        with self._lock:
            out = self.signatures[name](**args)
        return {k: v.numpy() for k, v in out.items()}

    def _tensor(self, key: str, kind: str, value: Any, spec: tf.TensorSpec) -> tf.Tensor:
        if kind == "text":
            texts = [value] if isinstance(value, str) else value
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise UserError(f"{key} must be a string or a list of strings")
            texts = [t.strip() for t in texts]
            if not texts or not all(texts):
                raise UserError(f"{key}: give at least one non-empty line of text")
            for t in texts:
                try:
                    t.encode("utf-8")
                except UnicodeEncodeError:
                    raise UserError(f"{key}: {t[:40]!r} is not valid Unicode text (a lone surrogate?)") from None
            return tf.constant(self._capped(key, texts))
        if kind == "image":
            images = value if isinstance(value, list) else [value]
            decoded = [decode_image(v, f"{key}[{i}]") for i, v in enumerate(self._capped(key, images))]
            if len({im.shape for im in decoded}) > 1:
                decoded = [np.asarray(Image.fromarray(im).resize(decoded[0].shape[1::-1])) for im in decoded]
            return tf.constant(np.stack(decoded))
        if kind in ("integer", "number"):
            wanted = "an integer" if kind == "integer" else "a number"
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
                    kind == "integer" and value != int(value)):
                raise UserError(f"{key} must be {wanted}; got {value!r}")
            if kind == "integer":
                info = np.iinfo(spec.dtype.as_numpy_dtype)
                if not info.min <= int(value) <= info.max:
                    raise UserError(f"{key} must be {wanted} in {info.min}..{info.max}; got {value!r}")
                value = int(value)
            if key == "num_images" and not 1 <= value <= MAX_ROWS:
                raise UserError(f"num_images must be in 1..{MAX_ROWS}; got {value}")
            return tf.constant(value, spec.dtype)
        try:
            array = np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
        except (TypeError, ValueError):
            raise UserError(f"{key} must be a numeric array of shape {spec.shape}") from None
        if not spec.shape.is_compatible_with(array.shape):
            raise UserError(f"{key} must have shape {spec.shape}; got {list(array.shape)}")
        return tf.constant(self._capped(key, array))

    @staticmethod
    def _check_pixel_budget(values: list[Any]) -> None:
        """A UserError when the request's images would decode to more than MAX_REQUEST_PIXELS (read from headers)."""
        total = 0
        for value in values:
            for item in (value if isinstance(value, list) else [value])[:MAX_ROWS]:
                if isinstance(item, str):
                    try:
                        width, height = image_header_size(_base64_bytes(item, "image"), "image")
                    except Image.DecompressionBombError as e:
                        raise bomb_refused("image", e) from None
                    total += width * height
        if total > MAX_REQUEST_PIXELS:
            raise UserError(f"the request's images have {total:,} pixels; at most {MAX_REQUEST_PIXELS:,} per request")

    @staticmethod
    def _capped(key: str, rows):
        if len(rows) > MAX_ROWS:
            raise UserError(f"{key}: at most {MAX_ROWS} rows per request; got {len(rows)}")
        return rows

    @staticmethod
    def _output(array: np.ndarray) -> Any:
        if array.dtype == np.uint8 and array.ndim == 4:
            return [encode_png(im) for im in array]
        if array.dtype.kind == "f":
            return np.round(array.astype(np.float64), 6).tolist()
        return array.tolist()

    def call_tensors(self, name: str, args: dict[str, Any]) -> dict[str, np.ndarray]:
        """Call signature ``name`` on ready tensors (checked by the caller); outputs as numpy arrays."""
        with self._lock:
            out = self.signatures[name](**{k: tf.constant(v) if not isinstance(v, tf.Tensor) else v
                                           for k, v in args.items()})
        return {k: v.numpy() for k, v in out.items()}

    # --------------------------------------------------------------- DAMSM
    def match(self, payload: dict[str, Any]) -> dict[str, Any]:
        """DAMSM: ``{"image": base64, "text": [captions]}`` -> captions ranked by cosine of sentence vs image."""
        if "image" not in payload or "text" not in payload:
            raise UserError("match needs image (base64) and text (captions)")
        image = self.call("encode_image", {"image": payload["image"]})["global"]
        texts = payload["text"] if isinstance(payload["text"], list) else [payload["text"]]
        sentences, g = self.call("encode_text", {"text": texts})["sentence"], image[0]
        scores = sentences @ g / (np.linalg.norm(sentences, axis=1) * np.linalg.norm(g) + 1e-8)
        return {"results": sorted(({"text": t.strip(), "score": float(s)} for t, s in zip(texts, scores)),
                                  key=lambda r: -r["score"])}
