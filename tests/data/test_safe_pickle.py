"""Tests of the restricted unpickler: plain data, numpy arrays, Python 2 pickles, forbidden globals."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from t2i_tf.data.safe_pickle import load_npy, load_pickle, save_object_npy, write_object_npy
from t2i_tf.errors import UserError
from tests.conftest import REPO_ROOT
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
    with pytest.raises(UserError, match="not a valid pickle"):
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


# ---- pickles that only name allowed globals, yet would crash or exhaust the reader (hand-assembled opcodes)

def _str(text: str) -> bytes:
    data = text.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def _dtype(code: str) -> bytes:
    return b"cnumpy\ndtype\n" + _str(code) + b"\x89\x88\x87R"  # dtype(code, False, True)


def _object_field_dtype_pickle() -> bytes:
    """_frombuffer(16 attacker bytes, dtype('V16') whose BUILD state claims an object field but not the flag that
    says it holds objects, (1,), 'C'): without the BUILD check numpy reads the bytes as an object pointer."""
    state = (b"(K\x03" + _str("|") + b"N" + _str("a") + b"\x85}" + _str("a") + _dtype("O8") + b"K\x00\x86s"
             + b"K\x10K\x01K\x00t")
    return (b"\x80\x02cnumpy.core.numeric\n_frombuffer\n(C\x10" + b"\x41" * 16 + _dtype("V16") + state + b"b"
            + b"K\x01\x85" + _str("C") + b"tR.")


def test_a_dtype_state_with_object_fields_is_refused_without_crashing():
    # In a fresh process: the attack, if it got through, is a segmentation fault, not an exception.
    path_code = (f"import io, sys\nsys.path.insert(0, {REPO_ROOT!r})\nfrom t2i_tf.data.safe_pickle import load_pickle\n"
                 f"from t2i_tf.errors import UserError\n"
                 f"try:\n    load_pickle(io.BytesIO({_object_field_dtype_pickle()!r}))\nexcept UserError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", path_code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "not a valid pickle: refused to unpickle: a dtype with fields" in proc.stdout


@pytest.mark.parametrize("payload, message", [
    # _codecs.encode with an encoding that does not exist (was an uncaught LookupError)
    (b"\x80\x02c_codecs\nencode\n" + _str("x") + _str("no-such-codec") + b"\x86R.", "_codecs.encode is read for str"),
    # a 36-byte pickle asking for a 2 GB bytearray (was a MemoryError / 2 GB allocation)
    (b"\x80\x02c__builtin__\nbytearray\nJ\xff\xff\xff\x7f\x85R.", "larger than the whole file"),
    # numpy's _reconstruct of a 2^40-element array
    (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n\x8a\x06\x00\x00\x00\x00\x00\x01\x85C\x01b\x87R.",
     "larger than the whole file"),
    # an object array whose state carries raw bytes (they would be read as pointers)
    (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
     b"(K\x01K\x02\x85" + _dtype("O8") + b"\x89C\x10" + b"\x41" * 16 + b"tb.", "needs a list of 2 items"),
    # a dtype given as a structured spec instead of a type code
    (b"\x80\x02cnumpy\ndtype\n]" + _str("a") + _str("O") + b"\x86a" + b"\x89\x88\x87R.", "type code"),
    # BUILD on something that is not an array or a dtype
    (b"\x80\x02c__builtin__\nset\n)R}b.", "setting the state of a set"),
])
def test_allowed_globals_with_hostile_arguments_are_clear_errors(payload, message):
    with pytest.raises(UserError, match=message):
        load_pickle(io.BytesIO(payload))


def test_real_numpy_pickles_still_round_trip():
    values = {"f": np.arange(6, dtype=">f8").reshape(2, 3), "s": np.array([b"ab", b"c"]), "u": np.array(["x", "yz"]),
              "o": np.array([{"a": 1}, [2]], dtype=object), "scalar": np.float32(1.5), "F": np.asfortranarray(np.eye(2))}
    for protocol in (2, 3, 4, 5):
        data = pickle.dumps(values, protocol=protocol)
        out, trusted = load_pickle(io.BytesIO(data)), pickle.loads(data)  # our own data: the plain reader is fine
        for k, v in values.items():
            np.testing.assert_array_equal(out[k], v)
            assert np.asarray(out[k]).dtype == np.asarray(trusted[k]).dtype
