"""StackGAN's Python 2 pickles read through the restricted unpickler."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from t2i_tf.datasets import stackgan_pickles as sp
from t2i_tf.data.safe_pickle import load_pickle
from t2i_tf.errors import UserError
from tests.fixtures_t2i import py2_pickle, write_py2_pickle, write_stackgan_split

NAMES = ["002.Laysan_Albatross/Laysan_Albatross_0002_1027", "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18"]


def test_fixture_pickles_are_python2_style():
    data = py2_pickle([np.linspace(-1, 1, 8, dtype=np.float32), NAMES[0]])
    assert data[:2] == b"\x80\x02" and b"U\x2f002.Laysan" in data  # SHORT_BINSTRING, as py2 wrote str
    with pytest.raises(UserError):  # raw float bytes are not ASCII: only latin1 reads them
        load_pickle(io.BytesIO(data), encoding="ascii")
    array, name = load_pickle(io.BytesIO(data))
    np.testing.assert_array_equal(array, np.linspace(-1, 1, 8, dtype=np.float32))
    assert name == NAMES[0]


@pytest.mark.parametrize("as_list", [False, True])
def test_split_files_and_lookup(tmp_path, as_list):
    embs = [np.full([10, 1024], i + 0.5, np.float32) for i in range(2)]
    write_stackgan_split(str(tmp_path / "train"), NAMES, [2, 1], embs, as_list=as_list)
    d = str(tmp_path / "train")
    assert sp.load_filenames(os.path.join(d, sp.FILENAMES_FILE)) == NAMES
    assert sp.load_class_info(os.path.join(d, sp.CLASS_INFO_FILE), 2) == [2, 1]
    array = sp.load_embeddings(os.path.join(d, sp.EMBEDDINGS_FILE))
    assert array.shape == (2, 10, 1024) and array.dtype == np.float32
    assert sp.split_dirs(str(tmp_path)) == {"train": d}
    split_of, class_of = sp.read_split_lists(str(tmp_path))
    assert split_of == {NAMES[0]: "train", NAMES[1]: "train"} and class_of == {NAMES[0]: 2, NAMES[1]: 1}
    lookup = sp.EmbeddingLookup(str(tmp_path))
    assert lookup.get(NAMES[1])[3, 7] == 1.5 and lookup.get(NAMES[0])[0, 0] == 0.5
    assert lookup.get("003.Sooty_Albatross/x") is None
    lookup.release()
    assert lookup.get(NAMES[1]).shape == (10, 1024)  # reloaded on demand


def test_mismatches_are_user_errors(tmp_path):
    write_stackgan_split(str(tmp_path / "test"), NAMES, [2, 1], [np.zeros([10, 1024], np.float32)] * 3)
    lookup = sp.EmbeddingLookup(str(tmp_path))
    with pytest.raises(UserError, match="3 rows"):
        lookup.get(NAMES[0])
    with pytest.raises(UserError, match="2 names"):
        sp.load_class_info(write_py2_pickle(str(tmp_path / "ci.pickle"), [1, 2, 3]), 2)
    with pytest.raises(UserError, match="shape"):
        sp.load_embeddings(write_py2_pickle(str(tmp_path / "e.pickle"), np.zeros([2, 2, 2, 2], np.float32)))
    with pytest.raises(UserError, match="no StackGAN embeddings"):
        sp.EmbeddingLookup(str(tmp_path / "nowhere"))


def test_code_in_a_pickle_is_refused(tmp_path):
    path = tmp_path / "train" / "filenames.pickle"
    path.parent.mkdir()
    path.write_bytes(b"\x80\x02cposix\nsystem\nU\x04trueR.")
    with pytest.raises(UserError, match="posix.system"):
        sp.load_filenames(str(path))
