"""Vocabulary and in-graph tokenizer."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.data.text import Tokenizer, build_vocabulary, load_vocabulary, save_vocabulary
from t2i_tf.errors import UserError


def test_vocabulary_order_and_punctuation():
    v = build_vocabulary(["make middle-left red", "make top-right Red!"])
    assert v == ["make", "red", "middleleft", "topright"]


def test_tokenizer_ids_padding_oov_truncation():
    tok = Tokenizer(["make", "red"], max_len=3)
    ids = tok(tf.constant(["Make RED", "make blue red zzz", ""])).numpy()
    assert ids.tolist() == [[2, 3, 0], [2, 1, 3], [0, 0, 0]]
    assert tok.vocab_size == 4


def test_tokenizer_in_tf_function_and_dataset():
    tok = Tokenizer(["a"], max_len=2)
    ds = tf.data.Dataset.from_tensor_slices(["a", "b a"]).batch(2).map(tok)
    np.testing.assert_array_equal(next(iter(ds)).numpy(), [[2, 0], [1, 2]])


def test_vocabulary_roundtrip(tmp_path):
    assert load_vocabulary(str(tmp_path)) is None
    save_vocabulary(["x", "y"], str(tmp_path))
    assert load_vocabulary(str(tmp_path)) == ["x", "y"]


def test_empty_vocabulary_is_an_error():
    with pytest.raises(UserError, match="no words"):
        build_vocabulary(["", "!!"])


def test_check_captions_names_unknown_words_and_refuses_captions_without_a_known_word():
    import pytest

    from t2i_tf.data.text import check_captions
    from t2i_tf.errors import UserError

    vocab = ["a", "red", "circle"]
    assert check_captions(["a red circle", "a red zzz qqq"], vocab, "training vocabulary") == {"a red zzz qqq": ["zzz", "qqq"]}
    for bad in ("zzz qqq", "   ", "??"):
        with pytest.raises(UserError, match="is in the training vocabulary .3 words, e.g. a red circle."):
            check_captions([bad], vocab, "training vocabulary")
