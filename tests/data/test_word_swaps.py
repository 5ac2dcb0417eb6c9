"""Swapped-word hard negative captions."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.data.text import Tokenizer
from t2i_tf.data.word_swaps import WordSwapper, parse_word_groups
from t2i_tf.errors import UserError

# 'right' is known but 'bottom' is not: top/bottom has one known word, so 'top' is never swapped.
VOCAB = ["a", "at", "blue", "circle", "large", "left", "red", "right", "small", "the", "top", "triangle", "green"]


def _words(ids, tok):
    return [tok.vocabulary[i - 2] if i >= 2 else ("<pad>" if i == 0 else "<oov>") for i in ids]


def test_one_word_swapped_within_its_group_and_never_for_itself():
    tok = Tokenizer(VOCAB, 10)
    swap = WordSwapper(VOCAB, "css")
    caption = "a large red circle at the top left"
    tokens = tok(tf.constant([caption] * 400))
    out, valid = swap(tokens, tf.constant([1, 2]))
    assert bool(tf.reduce_all(valid))
    before = _words(tokens[0].numpy(), tok)
    changed_positions, replacements = [], {}
    for row in out.numpy():
        after = _words(row, tok)
        diff = [k for k, (x, y) in enumerate(zip(before, after)) if x != y]
        assert len(diff) == 1  # exactly one word, never the same word again
        k = diff[0]
        changed_positions.append(before[k])
        replacements.setdefault(before[k], set()).add(after[k])
    # every swappable word (size, colour, shape, left/right) gets picked; 'a', 'at', 'the', 'top' never
    assert set(changed_positions) == {"large", "red", "circle", "left"}
    assert replacements["red"] == {"blue", "green"}  # the colours this vocabulary knows
    assert replacements["large"] == {"small"} and replacements["circle"] == {"triangle"}
    assert replacements["left"] == {"right"}
    # stateless: the same seed, the same swaps; another seed, others
    again, _ = swap(tokens, tf.constant([1, 2]))
    other, _ = swap(tokens, tf.constant([3, 4]))
    np.testing.assert_array_equal(out.numpy(), again.numpy())
    assert (out.numpy() != other.numpy()).any()


def test_captions_without_swappable_words_are_flagged_and_unchanged():
    tok = Tokenizer(VOCAB, 6)
    tokens = tok(tf.constant(["a the at", "", "a red circle"]))
    out, valid = WordSwapper(VOCAB, "red,blue")(tokens, tf.constant([0, 0]))
    assert valid.numpy().tolist() == [False, False, True]
    np.testing.assert_array_equal(out.numpy()[:2], tokens.numpy()[:2])
    assert _words(out.numpy()[2], tok)[:3] == ["a", "blue", "circle"]


def test_word_group_specs():
    assert parse_word_groups("css")[2] == ["small", "large"]
    assert parse_word_groups(" red, Blue ;small,large") == [["red", "blue"], ["small", "large"]]
    for bad, msg in [("", "named set"), ("red", "at least two"), ("red,red", "at least two"),
                     ("red,blue;blue,green", "more than one group")]:
        with pytest.raises(UserError, match=msg):
            parse_word_groups(bad)
    with pytest.raises(UserError, match="nothing to swap"):
        WordSwapper(["a", "bird"], "css")
