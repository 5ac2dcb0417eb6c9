"""Text tokenisation inside the TF graph, with a vocabulary saved next to checkpoints.

Words are lower-cased and stripped of punctuation (so "middle-left" is one token,
as in google/tirg's vocabulary); 0 is padding and 1 is out-of-vocabulary.
"""

from __future__ import annotations

import collections
import os
import re
from typing import Iterable

import tensorflow as tf

from t2i_tf.errors import UserError
from t2i_tf.files import write_text_atomic

_PUNCTUATION = r"[!\"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~']"
VOCAB_FILE = "vocab.txt"


def standardize(text: tf.Tensor) -> tf.Tensor:
    """Lower-case and strip punctuation (graph op, used by the tokenizer)."""
    return tf.strings.regex_replace(tf.strings.lower(text), _PUNCTUATION, "")


TOKENIZER_RULE = "lowercase, ASCII punctuation removed, split on whitespace"


def python_tokens(text: str) -> list[str]:
    """The words :class:`Tokenizer` sees in ``text`` (:data:`TOKENIZER_RULE`), in Python: for vocabularies."""
    return re.sub(_PUNCTUATION, "", text.lower()).split()


def build_vocabulary(texts: Iterable[str], min_count: int = 1) -> list[str]:
    """Words of ``texts`` seen at least ``min_count`` times, most frequent first (ties by word)."""
    counts = collections.Counter(w for t in texts for w in python_tokens(t))
    words = [w for w, c in counts.items() if c >= min_count]
    words.sort(key=lambda w: (-counts[w], w))
    if not words:
        raise UserError("cannot build a vocabulary: no words in the training texts")
    return words


def unknown_words(text: str, vocabulary: Iterable[str]) -> list[str]:
    """The words of ``text`` (as the tokenizer splits it) that are not in ``vocabulary``, in order, once each."""
    known = set(vocabulary)
    return list(dict.fromkeys(w for w in python_tokens(text) if w not in known))


def check_captions(captions: Iterable[str], vocabulary: list[str], vocabulary_name: str) -> dict[str, list[str]]:
    """Each caption's words outside ``vocabulary`` (captions with none are left out); a UserError naming the
    caption when it has no known word at all (it would be drawn from padding and unknown tokens only)."""
    unknown: dict[str, list[str]] = {}
    for caption in captions:
        missing = unknown_words(caption, vocabulary)
        if not caption.strip() or len(missing) == len(python_tokens(caption)):
            raise UserError(f"no word of the caption {caption!r} is in the {vocabulary_name} ({len(vocabulary)} "
                            f"words, e.g. {' '.join(vocabulary[:8])})")
        if missing:
            unknown[caption] = missing
    return unknown


KNOWN_WORDS_RULE = ("known_words: int32 [N], the words of each text found in the vocabulary; 0 means the images "
                    "follow padding and unknown-word tokens only (the demo and the CLI refuse such texts)")


def known_word_counts(tokens: tf.Tensor) -> tf.Tensor:
    """int32 [N]: how many of each row's token ids are vocabulary words (not padding 0, not unknown 1)."""
    return tf.reduce_sum(tf.cast(tokens > 1, tf.int32), axis=1)


class Tokenizer(tf.Module):
    """Raw strings [N] -> int64 token ids [N, max_len] (0 = padding, 1 = out of vocabulary).

    A tf.Module with a static hash table, so it runs in tf.data, in training
    graphs and inside an exported SavedModel (callers pass raw strings).
    """

    PAD, OOV = 0, 1

    def __init__(self, vocabulary: list[str], max_len: int, name: str = "tokenizer"):
        super().__init__(name=name)
        if max_len < 1:
            raise UserError(f"max_len must be >= 1, got {max_len}")
        self.vocabulary = list(vocabulary)
        self.max_len = int(max_len)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(self.vocabulary, tf.string),
                tf.range(2, len(self.vocabulary) + 2, dtype=tf.int64),
            ),
            default_value=self.OOV,
        )

    @property
    def vocab_size(self) -> int:
        """Number of ids including padding and OOV."""
        return len(self.vocabulary) + 2

    def __call__(self, texts: tf.Tensor) -> tf.Tensor:
        words = tf.strings.split(standardize(tf.convert_to_tensor(texts, tf.string)))
        ids = tf.ragged.map_flat_values(self.table.lookup, words)
        return ids.to_tensor(default_value=self.PAD, shape=[None, self.max_len])


def save_vocabulary(vocabulary: list[str], directory: str) -> str:
    """Write one word per line to ``directory/vocab.txt``."""
    return write_text_atomic(os.path.join(directory, VOCAB_FILE), "\n".join(vocabulary) + "\n")


def load_vocabulary(directory: str) -> list[str] | None:
    """Read ``directory/vocab.txt``; None when it does not exist yet."""
    path = os.path.join(directory, VOCAB_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]
