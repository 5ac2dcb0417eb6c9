"""Tests of the restricted unpickler: plain data, numpy arrays, Python 2 pickles, forbidden globals."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest

from t2i_tf.data.safe_pickle import load_npy, load_pickle, save_object_npy, write_object_npy
from t2i_tf.errors import UserError
from tests.py2_pickle import Py2Pickler




def py2_dumps(obj) -> bytes:
    """A Python-2-style pickle of ``obj`` (numpy globals under their py2 module name)."""
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2, fix_imports=True).dump(obj)
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_plain_data_roundtrip(tmp_path):
    obj = {"a": [1, 2.5, None, True, "x"], "b": (1, "two"), "c": {"nested": {3, 4}}, "d": b"raw", 5: -1}
    for protocol in (3, 4, pickle.HIGHEST_PROTOCOL):
        assert load_pickle(io.BytesIO(pickle.dumps(obj, protocol=protocol))) == obj
    path = tmp_path / "plain.pickle"
    path.write_bytes(pickle.dumps(obj))
    assert load_pickle(str(path)) == obj


def test_plain_data_protocol2_without_sets():
    obj = {"a": [1, 2.5, None, True, "x"], "b": (1, "two"), "d": b"raw", 5: -1}
    assert load_pickle(io.BytesIO(pickle.dumps(obj, protocol=2))) == obj


def test_protocol2_set_is_allowed():
    assert load_pickle(io.BytesIO(pickle.dumps({"s": {1, 2}}, protocol=2))) == {"s": {1, 2}}


def test_numpy_arrays_inside_dicts():
    obj = {"emb": np.arange(12, dtype=np.float32).reshape(3, 4), "ids": np.array([7, 8], np.int64),
           "scalar": np.float64(2.5), "strs": np.array(["ab", "c"])}
    for protocol in (2, 4):
        out = load_pickle(io.BytesIO(pickle.dumps(obj, protocol=protocol)))
        for k in ("emb", "ids", "strs"):
            np.testing.assert_array_equal(out[k], obj[k])
            assert out[k].dtype == obj[k].dtype
        assert out["scalar"] == 2.5


def test_python2_pickle_needs_latin1():
    obj = {"text": b"caf\xe9", "name": "plain", "arr": np.array([1000, -2], np.int64), "list": [b"a", 1]}
    data = py2_dumps(obj)
    assert b"_codecs" not in data and b"U\x04caf\xe9" in data  # really py2 byte strings
    out = load_pickle(io.BytesIO(data))
    assert out["text"] == "café" and out["name"] == "plain" and out["list"] == ["a", 1]
    np.testing.assert_array_equal(out["arr"], [1000, -2])
    with pytest.raises(UserError, match="not a readable pickle"):
        load_pickle(io.BytesIO(data), encoding="ascii")


def test_load_npy_object_and_numeric(tmp_path):
    d = {"train": {"labels": [0, 1], "mods": [{"to_str": "x"}]}}
    path = str(tmp_path / "d.npy")
    save_object_npy(path, d)
    assert load_npy(path) == d
    py2 = str(tmp_path / "py2.npy")
    write_object_npy(py2, py2_dumps(np.array(d, dtype=object)))
    assert load_npy(py2) == d
    num = str(tmp_path / "n.npy")
    np.save(num, np.arange(6, dtype=np.int16).reshape(2, 3))
    np.testing.assert_array_equal(load_npy(num), np.arange(6).reshape(2, 3))


def test_forbidden_global_is_refused(tmp_path):
    for protocol in (2, 4):
        with pytest.raises(UserError, match="os|posix|system"):
            load_pickle(io.BytesIO(pickle.dumps({"x": Evil()}, protocol=protocol)))
    path = str(tmp_path / "evil.npy")
    write_object_npy(path, pickle.dumps(np.array({"train": Evil()}, dtype=object), protocol=2))
    with pytest.raises(UserError, match="refused"):
        load_npy(path)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_pickle(str(tmp_path / "nope.pickle"))
    with pytest.raises(UserError, match="not found"):
        load_npy(str(tmp_path / "nope.npy"))
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not an npy at all")
    with pytest.raises(UserError):
        load_npy(str(bad))
