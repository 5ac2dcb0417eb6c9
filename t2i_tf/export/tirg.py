"""SavedModel export of a composed-retrieval model with named signatures.

- ``compose(image: uint8 [N,H,W,3], text: string [N]) -> {"embedding": float32 [N,D], "known_words": int32 [N]}``
  (``known_words``: the text's words found in the vocabulary; 0 means the query was composed from unknown tokens
  only, and callers should refuse it, as the CLI and the demo do)
- ``embed_image(image: uint8 [N,H,W,3]) -> {"embedding": float32 [N,D]}``

Images of any size are resized to the training size; tokenisation is inside
the graph, so callers pass raw strings. Embeddings are L2-normalised (cosine
similarity = dot product).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from t2i_tf.data.text import Tokenizer, known_word_counts
from t2i_tf.export.description import write_export_description


TIRG_KNOWN_WORDS = ("int32 [N], the words of each text found in the vocabulary; 0 means the query was composed "
                    "from unknown-word tokens only (the demo and the CLI refuse such texts)")


class TirgServing(tf.Module):
    """The exported module: a retrieval model, its tokenizer and the image size."""

    def __init__(self, model: tf.Module, tokenizer: Tokenizer, image_size: int):
        super().__init__(name="tirg_serving")
        self.model = model
        self.tokenizer = tokenizer
        self.image_size = image_size

    def _preprocess(self, image: tf.Tensor) -> tf.Tensor:
        x = tf.cast(image, tf.float32)
        x = tf.image.resize(x, [self.image_size, self.image_size], antialias=True)
        return x / 127.5 - 1.0

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"), tf.TensorSpec([None], tf.string, name="text")])
    def compose(self, image, text):
        tokens = self.tokenizer(text)
        emb = self.model.compose(self._preprocess(image), tokens, training=False)
        return {"embedding": tf.math.l2_normalize(emb, axis=-1), "known_words": known_word_counts(tokens)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")])
    def embed_image(self, image):
        emb = self.model.embed_images(self._preprocess(image), training=False)
        return {"embedding": tf.math.l2_normalize(emb, axis=-1)}


def export_tirg(model: tf.Module, tokenizer: Tokenizer, image_size: int, path: str) -> dict[str, Any]:
    """Write the SavedModel to ``path``; returns the signature description (also saved as t2i_export.json)."""
    module = TirgServing(model, tokenizer, image_size)
    tf.saved_model.save(module, path, signatures={"compose": module.compose, "embed_image": module.embed_image})
    description = {
        "model": "tirg",
        "composition": getattr(model, "composition", None),
        "image_size": image_size,
        "signatures": {
            "compose": {"inputs": {"image": "uint8 [N,H,W,3]", "text": "string [N]"}, "outputs": {"embedding": "float32 [N,D], L2-normalised", "known_words": TIRG_KNOWN_WORDS}},
            "embed_image": {"inputs": {"image": "uint8 [N,H,W,3]"}, "outputs": {"embedding": "float32 [N,D], L2-normalised"}},
        },
    }
    write_export_description(path, description)
    return description
