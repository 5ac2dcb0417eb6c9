"""The demo of one export, by task: what its page offers and the JSON actions the page calls.

- ``retrieval`` (tirg exports): ``retrieve`` -- a source image (gallery id or upload) + modification text -> the
  top-k gallery images by cosine, the source itself left out (as the official evaluation ranks), the expected
  target marked for held-out CSS queries;
- ``text_to_image`` (gan_cls, stackgan, attngan exports on raw text): ``draw`` -- one caption, ``num_samples``
  images = the export's ``generate([caption] * num_samples, seed)``; Stage-II StackGAN adds the Stage-I images
  (``generate_stages``), AttnGAN the last stage's attention map per word (``generate_with_attention``);
- ``modify`` (stackgan_tirg exports): ``modify`` -- source image + instruction -> generated images, next to what
  a served tirg export retrieves for the same query;
- ``scene_graph`` (sg2im exports): ``draw`` -- a CSS caption or an inline JSON scene graph -> images;
- ``draw_edit`` (geneva exports): ``edit`` -- a canvas (blank, gallery id or upload) + instruction, and for later
  turns the previous answer's image and recurrent ``state`` -> the edited canvas and its new state (the export's
  ``edit`` / ``edit_with_state``);
- ``generic`` (any other export): its signatures as forms, called through :class:`DemoModel`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from t2i_tf.errors import UserError
from t2i_tf.serve.actions import (
    MAX_ROWS,
    DemoModel,
    _check_image_strings,
    _json_type,
    decode_image,
    encode_png,
)
from t2i_tf.serve.examples import held_out_episodes, held_out_texts, run_data_dir
from t2i_tf.serve.gallery import Gallery

MAX_SAMPLES = 16
MAX_TEXT_CHARS = 2000
STATE_SLACK = 1e-4  # float rounding above a GRU state's bound of 1
TEXT_TO_IMAGE_SIGNATURES = ("generate_stages", "generate_with_attention", "generate")


def demo_kind(model: DemoModel) -> str:
    """Which page an export gets (see the module docstring)."""
    sigs, name = set(model.signatures), model.model_name
    if "compose" in sigs and "embed_image" in sigs:
        return "retrieval"
    if {"edit", "edit_with_state"} <= sigs and "hidden_dim" in model.description:
        return "draw_edit"
    if name == "stackgan_tirg" and "generate" in sigs:
        return "modify"
    if name == "sg2im" and "generate" in sigs:
        return "scene_graph"
    if "generate" in sigs and model.inputs["generate"] == {"text": "text", "seed": "integer"}:
        return "text_to_image"
    return "generic"


# ------------------------------------------------------------------------------------------ input checks
def _integer(payload: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = payload.get(key, default)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserError(f"{key} must be an integer in {low}..{high}; got {value!r}")
    return value


def _text(payload: dict[str, Any], what: str) -> str:
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"text must be {what}: one non-empty string")
    if len(text) > MAX_TEXT_CHARS:
        raise UserError(f"text has {len(text)} characters; at most {MAX_TEXT_CHARS}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"text {text[:40]!r} is not valid Unicode text (a lone surrogate?)") from None
    return text.strip()


def _seed(payload: dict[str, Any]) -> int:
    return _integer(payload, "seed", 0, -2**63, 2**63 - 1)


def _no_known_word(text: str) -> UserError:
    return UserError(f"no word of the text {text!r} is in the model's vocabulary")


class Demo:
    """One served export: its key in URLs, its kind, held-out examples, and its actions."""

    def __init__(self, key: str, model: DemoModel, gallery: Gallery | None, data_dir: str | None,
                 peers: Callable[[], list[Demo]]):
        self.key, self.model, self.gallery = key, model, gallery
        self.kind = demo_kind(model)
        self._peers = peers  # the other demos of the server (a modify demo shows a retrieval demo's answer)
        if self.kind == "retrieval" and gallery is None:
            raise UserError("--gallery_dir is needed to serve a tirg export (a directory of .png/.jpg images, "
                            "or a CSS dataset folder)")
        records = data_dir or run_data_dir(model.export_dir)
        self.episodes: list[list[str]] = []
        if self.kind == "draw_edit":
            self.episodes = held_out_episodes(records)
            self.examples = [t for episode in self.episodes for t in episode]
        else:
            self.examples = held_out_texts(records)
        self.index: np.ndarray | None = None
        if self.kind == "retrieval":
            self.index = self._embed_gallery()

    # ------------------------------------------------------------------------------------------- facts
    @property
    def actions(self) -> list[str]:
        own = {"retrieval": ["retrieve"], "text_to_image": ["draw"], "modify": ["modify"],
               "scene_graph": ["draw"], "draw_edit": ["edit"]}.get(self.kind, [])
        return own + [a for a in self.model.actions if a not in own]

    def info(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "model": self.model.model_name, "actions": self.actions,
                "image_size": self.model.description.get("image_size"), "examples": self.examples,
                "signatures": sorted(self.model.signatures), "inputs": self.model.inputs,
                "max_samples": MAX_SAMPLES, "max_top_k": MAX_ROWS,
                "retrieval_peer": self._retrieval_peer().key if self._retrieval_peer() else None,
                "example_episodes": self.episodes, "state_size": self.state_size}

    @property
    def state_size(self) -> int | None:
        """draw_edit: the length of the recurrent state (the export's hidden_dim)."""
        return int(self.model.description["hidden_dim"]) if self.kind == "draw_edit" else None

    def _retrieval_peer(self) -> Demo | None:
        if self.kind != "modify":
            return None
        return next((d for d in self._peers() if d.kind == "retrieval"), None)

    # ------------------------------------------------------------------------------------------- calls
    def run(self, action: str, payload: Any) -> dict[str, Any]:
        """Do ``action`` on a JSON payload; UserError (HTTP 400) for anything wrong with it."""
        if not isinstance(payload, dict):
            raise UserError("the request body must be a JSON object")
        if action == "retrieve" and self.kind == "retrieval":
            return self.retrieve(payload)
        if action == "draw" and self.kind == "text_to_image":
            return self.draw(payload)
        if action == "draw" and self.kind == "scene_graph":
            return self.draw_graph(payload)
        if action == "modify" and self.kind == "modify":
            return self.modify(payload)
        if action == "edit" and self.kind == "draw_edit":
            return self.edit(payload)
        if action not in self.model.actions:
            raise UserError(f"this {self.model.model_name} export has no action {action!r}; "
                            f"it has {', '.join(self.actions)}")
        return self.model.run(action, payload)

    def _source(self, payload: dict[str, Any]) -> tuple[np.ndarray, int | None]:
        """The query's source image (uint8 [H, W, 3]) and its gallery id (None for an upload)."""
        has_id, has_image = "gallery_id" in payload, "image" in payload
        if has_id == has_image:
            raise UserError("give the source image either as gallery_id (a gallery image) or as image "
                            "(a base64-encoded PNG or JPEG), not " + ("both" if has_id else "neither"))
        if has_id:
            if self.gallery is None:
                raise UserError("this server has no gallery (start it with --gallery_dir): upload the image instead")
            item = self.gallery.check_id(payload["gallery_id"])
            return self.gallery.image(item), item
        _check_image_strings("image", payload["image"])
        if not isinstance(payload["image"], str):
            raise UserError("image must be one base64-encoded PNG or JPEG image (a string)")
        self.model._check_pixel_budget([payload["image"]])
        return decode_image(payload["image"], "image"), None

    # --------------------------------------------------------------------------------------- retrieval
    def _embed_gallery(self, batch_size: int = 64) -> np.ndarray:
        out = []
        for start in range(0, len(self.gallery), batch_size):
            images = [self.gallery.image(i) for i in range(start, min(start + batch_size, len(self.gallery)))]
            size = images[0].shape
            images = [im if im.shape == size else _resize(im, size) for im in images]
            out.append(self.model.call_tensors("embed_image", {"image": np.stack(images)})["embedding"])
        return np.concatenate(out)

    def rank(self, image: np.ndarray, source_id: int | None, text: str, top_k: int) -> dict[str, Any]:
        """The top-k gallery items for (image, text): ``{"results": [...], "expected": ids | None}``."""
        composed = self.model.call_tensors("compose", {"image": image[None], "text": np.array([text], object)})
        if int(composed["known_words"][0]) == 0:
            raise _no_known_word(text)
        scores = self.index @ composed["embedding"][0]
        order = [int(i) for i in np.argsort(-scores, kind="stable") if i != source_id][:top_k]
        expected = self.gallery.expected(source_id, text)
        results = [dict(self.gallery.item(i), score=round(float(scores[i]), 6),
                        expected=expected is not None and i in expected) for i in order]
        return {"results": results, "expected": expected}

    def retrieve(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"gallery_id": int | "image": base64, "text": str, "top_k": int}`` -> the ranked gallery."""
        top_k = _integer(payload, "top_k", 10, 1, MAX_ROWS)
        text = _text(payload, "the modification")
        image, source_id = self._source(payload)
        return dict(self.rank(image, source_id, text, top_k), source_id=source_id, text=text)

    # ----------------------------------------------------------------------------------- text-to-image
    def draw(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"text": caption, "num_samples": int, "seed": int}`` -> ``num_samples`` images (+ stages / attention)."""
        text = _text(payload, "the caption")
        n, seed = _integer(payload, "num_samples", 4, 1, MAX_SAMPLES), _seed(payload)
        name = next(s for s in TEXT_TO_IMAGE_SIGNATURES if s in self.model.signatures)
        out = self.model.call_tensors(name, {"text": np.array([text] * n, object), "seed": np.int64(seed)})
        if int(out["known_words"][0]) == 0:
            raise _no_known_word(text)
        result: dict[str, Any] = {"text": text, "seed": seed, "signature": name,
                                  "images": [encode_png(im) for im in out["images"]]}
        if "stage1_images" in out:
            result["stage1_images"] = [encode_png(im) for im in out["stage1_images"]]
        if "attention" in out:
            result["attention"] = attention_maps(out["attention"], out["words"])
        return result

    # ---------------------------------------------------------------------------------- modify by text
    def modify(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"gallery_id" | "image", "text", "num_samples", "seed"}`` -> generated images (+ TIRG's retrieval)."""
        text = _text(payload, "the instruction")
        n, seed = _integer(payload, "num_samples", 4, 1, MAX_SAMPLES), _seed(payload)
        image, source_id = self._source(payload)
        out = self.model.call_tensors("generate", {"image": np.repeat(image[None], n, 0),
                                                   "text": np.array([text] * n, object), "seed": np.int64(seed)})
        if int(out["known_words"][0]) == 0:
            raise _no_known_word(text)
        result = {"text": text, "seed": seed, "source_id": source_id, "images": [encode_png(im) for im in out["images"]],
                  "retrieved": None, "retrieval_export": None}
        peer = self._retrieval_peer()
        if peer is not None:
            result["retrieved"] = peer.rank(image, source_id, text, 3)["results"]
            result["retrieval_export"] = peer.key
        return result

    # ------------------------------------------------------------------------------------- scene graph
    def draw_graph(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"text": CSS caption | inline JSON graph, "num_samples", "seed"}`` -> images and object boxes."""
        from t2i_tf.data import scene_graph as sg

        text = _text(payload, "a CSS caption or an inline JSON scene graph")
        n, seed = _integer(payload, "num_samples", 4, 1, MAX_SAMPLES), _seed(payload)
        if not text.startswith("{") and text.lower().endswith(".json"):
            raise UserError("the server reads no files: give the scene graph as inline JSON ({...}) or a caption")
        vocab, most = graph_vocab(self.model.description)
        objects, triples = sg.pad_graphs([sg.read_graph(text, most, vocab)])
        if not (objects > sg.IMAGE_ID).any():
            raise UserError(f"no object found in {text[:80]!r}: " + (
                "describe objects as 'a large red circle at the top left' or give a JSON graph"
                if vocab is sg.CSS_VOCAB else f"give a JSON graph of {vocab.dataset} objects"))
        out = self.model.call_tensors("generate", {"objects": np.repeat(objects, n, 0).astype(np.int32),
                                                   "triples": np.repeat(triples, n, 0).astype(np.int32),
                                                   "seed": np.int64(seed)})
        names = self.model.description.get("object_names") or []
        objs = [names[i - 1] if 0 < i <= len(names) else str(i) for i in objects[0].tolist() if i > sg.IMAGE_ID]
        return {"text": text, "seed": seed, "images": [encode_png(im) for im in out["images"]], "objects": objs}

    # ------------------------------------------------------------------------------------ draw and edit
    def _canvas(self, payload: dict[str, Any]) -> tuple[np.ndarray, int | None, bool]:
        """The canvas to edit: (uint8 [H, W, 3], gallery id or None, blank?) from exactly one of ``blank: true``
        (a white canvas of the export's size, as the edit episodes start), ``gallery_id`` or ``image``."""
        blank = payload.get("blank", False)
        if not isinstance(blank, bool):
            raise UserError(f"blank must be true or false; got {blank!r}")
        given = [k for k in ("gallery_id", "image") if k in payload] + (["blank"] if blank else [])
        if len(given) != 1:
            raise UserError("give the canvas to edit as exactly one of blank: true (an empty canvas), gallery_id "
                            "(a gallery image) or image (a base64-encoded PNG or JPEG, e.g. the previous turn's "
                            "image); got " + (" and ".join(given) if given else "none"))
        if blank:
            size = int(self.model.description.get("image_size") or 64)
            return np.full([size, size, 3], 255, np.uint8), None, True
        image, source_id = self._source(payload)
        return image, source_id, False

    def _state(self, payload: dict[str, Any]) -> np.ndarray | None:
        """The previous turn's recurrent state as float32 [1, state_size], or None (a first turn)."""
        state = payload.get("state")
        if state is None:
            return None
        n = self.state_size
        if not isinstance(state, list) or len(state) != n:
            got = f"a list of {len(state)}" if isinstance(state, list) else _json_type(state)
            raise UserError(f"state must be a list of {n} numbers (the state of the previous turn's answer, "
                            f"sent back unchanged) or null for a first turn; got {got}")
        for i, v in enumerate(state):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise UserError(f"state[{i}] must be a number; got {_json_type(v) if not isinstance(v, float) else v}")
            if abs(v) > 1.0 + STATE_SLACK:
                raise UserError(f"state[{i}] is {v}: a state of this model (a GRU's) lies in -1..1; send back the "
                                "state of the previous turn's answer unchanged")
        return np.asarray(state, np.float32)[None]

    def edit(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"blank": true | "gallery_id" | "image", "text", "state" (optional), "seed"}`` -> the edited canvas
        and its state: the export's ``edit`` (no state: a first turn) or ``edit_with_state`` on that one row."""
        text = _text(payload, "the instruction")
        seed = _seed(payload)
        state = self._state(payload)
        image, source_id, blank = self._canvas(payload)
        name = "edit" if state is None else "edit_with_state"
        args = {"image": image[None], "text": np.array([text], object), "seed": np.int64(seed)}
        if state is not None:
            args["state"] = state
        out = self.model.call_tensors(name, args)
        known = int(out["known_words"][0])
        if known == 0:
            raise _no_known_word(text)
        return {"text": text, "seed": seed, "signature": name, "source_id": source_id, "blank": blank,
                "image": encode_png(out["images"][0]),
                # float32 -> float64 -> JSON is exact both ways: the state sent back is the state returned
                "state": out["state"][0].astype(np.float64).tolist(),
                "known_words": known, "unknown_words": self._unknown_words(text, known)}

    def _unknown_words(self, text: str, known: int) -> list[str]:
        """The words of ``text`` (the tokenizer's rule) that the vocabulary lacks: each word is one row of one
        extra call, made only when fewer words are known than the text has."""
        from t2i_tf.data.text import python_tokens

        words = list(dict.fromkeys(python_tokens(text)))[:MAX_ROWS]
        if not words or known >= len(python_tokens(text)):
            return []
        size = int(self.model.description.get("image_size") or 64)
        out = self.model.call_tensors("edit", {"image": np.full([len(words), size, size, 3], 255, np.uint8),
                                               "text": np.array(words, object), "seed": np.int64(0)})
        return [w for w, k in zip(words, out["known_words"]) if int(k) == 0]


def attention_maps(attention: np.ndarray, words: np.ndarray) -> dict[str, Any]:
    """Per sample, one grey PNG per real word, each map stretched to 0..255 between its own minimum and maximum
    (white = where the word is attended most): ``{"words", "maps"}``."""
    real = [w.decode("utf-8", "replace") for w in words[0] if w]
    maps = []
    for sample in attention:
        row = []
        for t in range(len(real)):
            m = sample[:, :, t] - float(sample[:, :, t].min())
            m = m / max(float(m.max()), 1e-8)
            row.append(encode_png(np.repeat(np.round(m * 255.0).astype(np.uint8)[..., None], 3, -1)))
        maps.append(row)
    return {"words": real, "maps": maps}


def _resize(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize(shape[1::-1]))


def graph_vocab(description: dict[str, Any]) -> tuple[Any, int]:
    """(vocabulary, most objects per graph) of an sg2im export: CSS's (captions readable) unless the export was
    trained on other scene-graph records (Visual Genome, COCO-Stuff), whose names its description lists."""
    from t2i_tf.data import scene_graph as sg

    dataset = description.get("dataset", "css")
    most = int(description.get("max_objects", sg.MAX_CSS_OBJECTS))
    if dataset == "css":
        return sg.CSS_VOCAB, most
    return sg.GraphVocab(str(dataset), tuple(description["object_names"]), tuple(description["predicates"]),
                         frozenset(description.get("image_predicates", [sg.IN_IMAGE])),
                         frozenset(description.get("unused_object_names", []))), most
