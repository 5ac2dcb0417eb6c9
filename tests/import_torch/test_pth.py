"""The restricted ``.pth`` reader: official layouts read exactly, hostile and broken files refused in one line.

Fixtures in fixtures/pth were written once by make_pth_fixtures.py with torch 2.14; the hostile and
hand-made (Python 2, big-endian, broken) files are assembled here opcode by opcode, without torch.
"""

from __future__ import annotations

import os
import pickle
import struct
import time
import zipfile

import numpy as np
import pytest

from t2i_tf.errors import UserError
from t2i_tf.import_torch.pth import load_checkpoint, load_state_dict

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "pth")
FORMATS = ("zip", "legacy")
MAGIC = 0x1950A86A20F9469CFC6C


def fixture(name: str) -> str:
    return os.path.join(FIXTURES, name)


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(fixture("expected.npz")) as z:
        return {k: z[k] for k in z.files}


# --- hand-made pickles -----------------------------------------------------------------------------------------
def glob(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def text(s: str) -> bytes:
    b = s.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(b)) + b


def py2_str(s: str) -> bytes:
    return pickle.SHORT_BINSTRING + bytes([len(s)]) + s.encode()


def integer(n: int) -> bytes:
    return pickle.BININT + struct.pack("<i", n) if -(2**31) <= n < 2**31 else pickle.dumps(n, 2)[2:-1]


def tup(*items: bytes) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def call(fn: bytes, *args: bytes) -> bytes:
    return fn + tup(*args) + pickle.REDUCE


def dict_of(*pairs: tuple[bytes, bytes]) -> bytes:
    return pickle.EMPTY_DICT + pickle.MARK + b"".join(k + v for k, v in pairs) + pickle.SETITEMS


def whole(body: bytes) -> bytes:
    return pickle.PROTO + b"\x02" + body + pickle.STOP


def storage(cls: str, key: str, numel: int, legacy: bool, s=text, module: str = "torch", view: bytes | None = None):
    extra = [view or pickle.NONE] if legacy else []
    return tup(s("storage"), glob(module, cls), s(key), s("cpu"), integer(numel), *extra) + pickle.BINPERSID


def tensor(store: bytes, offset: int, size: tuple, stride: tuple, v1: bool = False) -> bytes:
    dims = [tup(*map(integer, size)), tup(*map(integer, stride))]
    if v1:
        return call(glob("torch._utils", "_rebuild_tensor"), store, integer(offset), *dims)
    return call(glob("torch._utils", "_rebuild_tensor_v2"), store, integer(offset), *dims, pickle.NEWFALSE,
                call(glob("collections", "OrderedDict")))


def write_zip(path, data_pkl: bytes, storages: dict[str, bytes], byteorder: bytes | None = b"little",
              compression: int = zipfile.ZIP_STORED) -> str:
    with zipfile.ZipFile(path, "w", compression) as z:
        z.writestr("anyname/data.pkl", data_pkl)
        if byteorder is not None:
            z.writestr("anyname/byteorder", byteorder)
        for key, data in storages.items():
            z.writestr(f"anyname/data/{key}", data)
    return str(path)


def write_legacy(path, main_pkl: bytes, storages: list[tuple[str, int, bytes]], little: bool = True) -> str:
    info = {"protocol_version": 1001, "little_endian": little, "type_sizes": {"short": 2, "int": 4, "long": 8}}
    head = b"".join(pickle.dumps(x, protocol=2) for x in (MAGIC, 1001, info))
    keys = pickle.dumps([k for k, _, _ in storages], protocol=2)
    body = b"".join(struct.pack("<q" if little else ">q", n) + data for _, n, data in storages)
    with open(path, "wb") as f:
        f.write(head + main_pkl + keys + body)
    return str(path)


def one_float_tensor_file(tmp_path, layout: str, numel: int, size: tuple, stride: tuple, offset: int = 0,
                          data: bytes | None = None) -> str:
    """A file holding {'w': tensor} over one float32 storage of ``numel`` elements."""
    legacy = layout == "legacy"
    pkl = whole(dict_of((text("w"), tensor(storage("FloatStorage", "0", numel, legacy), offset, size, stride))))
    data = np.arange(numel, dtype="<f4").tobytes() if data is None else data
    if legacy:
        return write_legacy(tmp_path / "f.pth", pkl, [("0", numel, data)])
    return write_zip(tmp_path / "f.pth", pkl, {"0": data})


def refused(path: str, *needles: str) -> str:
    with pytest.raises(UserError) as e:
        load_checkpoint(path)
    message = str(e.value)
    assert "\n" not in message and str(path) in message, message
    for needle in needles:
        assert needle in message, message
    return message


# --- official layouts ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", FORMATS)
def test_state_dict_values_match_torch(layout, expected):
    sd = load_state_dict(fixture(f"state_{layout}.pth"))
    want = {k[len("state/"):]: v for k, v in expected.items() if k.startswith("state/")}
    assert list(sd) == list(want)  # every entry, in the state dict's order
    for name, value in sd.items():
        assert value.dtype == want[name].dtype and value.shape == want[name].shape, name
        np.testing.assert_array_equal(value, want[name], err_msg=name)
        assert value.flags.c_contiguous and value.flags.writeable, name


@pytest.mark.parametrize("layout", FORMATS)
def test_views_shared_storage_and_dtypes(layout):
    sd = load_state_dict(fixture(f"state_{layout}.pth"))
    np.testing.assert_array_equal(sd["view.transposed"], np.arange(12, dtype=np.float32).reshape(3, 4).T)
    np.testing.assert_array_equal(sd["view.sliced"], np.arange(30.0).reshape(5, 6)[1:4, ::2])
    np.testing.assert_array_equal(sd["view.expanded"], np.tile(np.float32([1, 2, 3]), (4, 1)))
    assert sd["shared.a"].shape == sd["shared.b"].shape == (4,)
    assert not np.array_equal(sd["shared.a"], sd["shared.b"])  # offset 0 and 4 of the same storage
    sd["shared.a"][0] = 123.0  # independent copies
    assert 123.0 not in sd["shared.b"]
    assert sd["empty"].shape == (0, 3) and sd["empty"].dtype == np.float32
    assert sd["scalar"].shape == () and sd["scalar"] == np.float32(2.5)
    assert sd["1.num_batches_tracked"].shape == () and sd["1.num_batches_tracked"].dtype == np.int64
    assert sd["dtype.bfloat16"].dtype == np.float32  # bfloat16 widened exactly
    assert sd["dtype.bool"].tolist() == [True, False, True]
    assert sd["dtype.int64"].tolist() == [-(2**40), 0, 2**40]
    assert sd["dtype.int8"].tolist() == [-128, 127] and sd["dtype.uint8"].tolist() == [0, 255]
    assert sd["dtype.uint16"].tolist() == [1, 65535] and sd["dtype.float16"].dtype == np.float16


@pytest.mark.parametrize("layout", FORMATS)
def test_tirg_checkpoint(layout, expected):
    path = fixture(f"tirg_{layout}.pth")
    ckpt = load_checkpoint(path)
    assert set(ckpt) == {"it", "opt", "model_state_dict"} and ckpt["it"] == 7
    assert type(ckpt["opt"]) is dict  # the argparse.Namespace, as a dict of its attributes
    assert ckpt["opt"]["dataset"] == "css3d" and ckpt["opt"]["learning_rate"] == 0.01
    assert ckpt["opt"]["use_complete_text_query"] is False
    sd = load_state_dict(path)  # picks model_state_dict
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name, value in sd.items():
        np.testing.assert_array_equal(value, expected[f"tirg/{name}"])
    assert load_state_dict(path, key="model_state_dict").keys() == sd.keys()
    with pytest.raises(UserError, match="'opt' is a dict, not a state dict"):
        load_state_dict(path, key="opt")
    with pytest.raises(UserError, match="no entry 'netG'.*'model_state_dict'"):
        load_state_dict(path, key="netG")


def test_checkpoint_without_a_state_dict_key(tmp_path):
    path = write_zip(tmp_path / "c.pth", whole(dict_of((text("epoch"), integer(3)))), {})
    with pytest.raises(UserError, match="without 'model_state_dict' or 'state_dict'.*'epoch'"):
        load_state_dict(path)


@pytest.mark.parametrize("layout", FORMATS)
def test_whole_model_is_refused_with_a_hint(layout):
    refused(fixture(f"linear_module_{layout}.pth"), "torch.nn.modules.linear.Linear", "model.state_dict()")


def test_python2_legacy_checkpoint(tmp_path):
    """torch 0.3 / Python 2 (StackGAN, AttnGAN): py2 strings, _rebuild_tensor, torch.cuda storages, a view."""
    view = tup(py2_str("view"), integer(2), integer(4))  # elements 2..5 of the root storage
    store = tup(py2_str("storage"), glob("torch.cuda", "FloatStorage"), py2_str("140"), py2_str("cuda:0"),
                integer(8), pickle.NONE) + pickle.BINPERSID
    viewed = tup(py2_str("storage"), glob("torch.cuda", "FloatStorage"), py2_str("140"), py2_str("cuda:0"),
                 integer(8), view) + pickle.BINPERSID
    body = (glob("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.MARK
            + py2_str("fc.weight") + tensor(store, 1, (2, 3), (1, 2), v1=True)
            + py2_str("fc.bias") + tensor(viewed, 1, (3,), (1,), v1=True)
            + pickle.SETITEMS + dict_of((py2_str("version"), integer(1))) + pickle.BUILD)  # _metadata-like state
    path = write_legacy(tmp_path / "netG_epoch_600.pth", whole(body), [("140", 8, np.arange(8, dtype="<f4").tobytes())])
    sd = load_state_dict(path)
    np.testing.assert_array_equal(sd["fc.weight"], np.arange(1, 7, dtype=np.float32).reshape(3, 2).T)
    np.testing.assert_array_equal(sd["fc.bias"], np.float32([3, 4, 5]))


@pytest.mark.parametrize("layout", FORMATS)
def test_big_endian_files_are_byteswapped(tmp_path, layout):
    values = np.float64([1.5, -2.0, 3.25, 1e300])
    legacy = layout == "legacy"
    pkl = whole(dict_of((text("w"), tensor(storage("DoubleStorage", "k", 4, legacy), 0, (2, 2), (1, 2)))))
    if legacy:
        path = write_legacy(tmp_path / "b.pth", pkl, [("k", 4, values.astype(">f8").tobytes())], little=False)
    else:
        path = write_zip(tmp_path / "b.pth", pkl, {"k": values.astype(">f8").tobytes()}, byteorder=b"big")
    w = load_state_dict(path)["w"]
    assert w.dtype == np.float64 and w.dtype.isnative
    np.testing.assert_array_equal(w, values.reshape(2, 2).T)


def test_zip_without_byteorder_record_is_little_endian(tmp_path):
    pkl = whole(dict_of((text("w"), tensor(storage("IntStorage", "0", 2, False), 0, (2,), (1,)))))
    path = write_zip(tmp_path / "old.pth", pkl, {"0": np.int32([5, -6]).tobytes()}, byteorder=None)
    assert load_state_dict(path)["w"].tolist() == [5, -6]


# --- hostile files ---------------------------------------------------------------------------------------------
def payloads(marker: str) -> dict[str, bytes]:
    cmd = f"touch {marker}"
    return {
        "os.system": call(glob("os", "system"), text(cmd)),
        "posix.system": call(glob("posix", "system"), text(cmd)),
        "builtins.eval": call(glob("builtins", "eval"), text(f"open({marker!r}, 'w')")),
        "__builtin__.eval": call(glob("__builtin__", "eval"), text(f"open({marker!r}, 'w')")),  # py2 name
        "subprocess.Popen": call(glob("subprocess", "Popen"), pickle.MARK + text("touch") + text(marker)
                                 + pickle.LIST),
        "stack_global": text("os") + text("system") + pickle.STACK_GLOBAL + tup(text(cmd)) + pickle.REDUCE,
        "inst": pickle.MARK + text(cmd) + b"ios\nsystem\n",
        "obj": pickle.MARK + glob("os", "system") + text(cmd) + pickle.OBJ,
        "getattr": call(glob("builtins", "getattr"), glob("os", "path"), text("join")),
        "functools.partial": call(glob("functools", "partial"), glob("os", "system"), text(cmd)),
        "numpy": call(glob("numpy", "load"), text(marker)),
    }


HOSTILE = list(payloads("m"))


@pytest.mark.parametrize("layout", FORMATS)
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_globals_are_refused_and_nothing_runs(tmp_path, layout, name):
    marker = str(tmp_path / "marker")
    payload = payloads(marker)[name]
    legacy = layout == "legacy"
    # a real tensor first, then the payload as another entry of the state dict
    body = dict_of((text("w"), tensor(storage("FloatStorage", "0", 2, legacy), 0, (2,), (1,))), (text("x"), payload))
    data = np.float32([1, 2]).tobytes()
    path = (write_legacy(tmp_path / "evil.pth", whole(body), [("0", 2, data)]) if legacy
            else write_zip(tmp_path / "evil.pth", whole(body), {"0": data}))
    message = refused(path, "not a plain PyTorch state dict or checkpoint", "is not allowed")
    assert "state_dict()" not in message  # no model hint for stdlib callables
    assert not os.path.exists(marker)


@pytest.mark.parametrize("layout", FORMATS)
def test_build_on_anything_but_an_ordered_dict_is_refused(tmp_path, layout):
    body = dict_of((text("x"), pickle.EMPTY_LIST + dict_of((text("append"), glob("os", "system"))) + pickle.BUILD))
    on_list = pickle.EMPTY_LIST + dict_of((text("a"), integer(1))) + pickle.BUILD
    on_dict = pickle.EMPTY_DICT + dict_of((text("a"), integer(1))) + pickle.BUILD
    for i, b in enumerate((body, on_list, on_dict)):
        path = (write_legacy(tmp_path / f"b{i}.pth", whole(b), []) if layout == "legacy"
                else write_zip(tmp_path / f"b{i}.pth", whole(b), {}))
        refused(path, "not allowed")


def test_hostile_pickle_inside_legacy_header_is_refused(tmp_path, tmp_path_factory):
    marker = tmp_path / "marker"
    evil = whole(call(glob("os", "system"), text(f"touch {marker}")))
    path = tmp_path / "h.pth"
    path.write_bytes(evil)  # a bare pickle where the magic number should be
    refused(str(path), "not a readable PyTorch checkpoint")
    path.write_bytes(pickle.dumps(MAGIC, 2) + evil)
    refused(str(path), "os.system")
    assert not marker.exists()


def test_torchscript_archive_is_refused(tmp_path):
    path = tmp_path / "ts.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/constants.pkl", whole(pickle.EMPTY_TUPLE))
        z.writestr("m/code/__torch__.py", "")
    refused(str(path), "TorchScript")


def test_deep_nesting_and_memo_bombs_do_not_crash(tmp_path):
    deep = whole(pickle.EMPTY_LIST * 100_000 + pickle.APPEND * 99_999)
    refused(write_zip(tmp_path / "deep.pth", deep, {}), "nested more than")
    # 22 levels of [x, x]: 2**22 paths; each shared list must be converted once
    body = pickle.EMPTY_LIST + pickle.BINPUT + b"\x00"
    for i in range(22):
        body += pickle.MARK + pickle.BINGET + bytes([i]) + pickle.BINGET + bytes([i]) + pickle.LIST
        body += pickle.BINPUT + bytes([i + 1])
    start = time.perf_counter()
    out = load_checkpoint(write_zip(tmp_path / "dag.pth", whole(body), {}))
    assert time.perf_counter() - start < 1
    assert len(out) == 2 and out[0] is out[1]
    cycle = whole(pickle.EMPTY_LIST + pickle.BINPUT + b"\x00" + pickle.BINGET + b"\x00" + pickle.APPEND)
    refused(write_zip(tmp_path / "cycle.pth", cycle, {}), "cycle")
    missing_memo = whole(pickle.BINGET + b"\x07")
    refused(write_zip(tmp_path / "memo.pth", missing_memo, {}))


def test_huge_claimed_lengths_are_bounded_by_the_file(tmp_path):
    huge_bytes = pickle.PROTO + b"\x04" + b"\x8e" + struct.pack("<Q", 2**62) + b"xx"  # BINBYTES8
    refused(write_zip(tmp_path / "z.pth", huge_bytes, {}))
    refused(write_legacy(tmp_path / "l.pth", huge_bytes, []))
    path = one_float_tensor_file(tmp_path, "zip", 4, (4,), (1,))
    big_storage = whole(dict_of((text("w"), tensor(storage("FloatStorage", "0", 2**40, False), 0, (1,), (1,)))))
    refused(write_zip(tmp_path / "s.pth", big_storage, {"0": b"\0" * 16}), "larger than the whole file")
    assert load_state_dict(path)["w"].tolist() == [0, 1, 2, 3]


# --- broken files ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", FORMATS)
def test_truncated_files(tmp_path, layout):
    data = open(fixture(f"state_{layout}.pth"), "rb").read()
    path = tmp_path / "cut.pth"
    cuts = range(1, len(data), 11 if layout == "legacy" else 97)
    for cut in cuts:
        path.write_bytes(data[:cut])
        refused(str(path))


def test_corrupted_bytes_never_escape_as_other_errors(tmp_path):
    data = bytearray(open(fixture("state_legacy.pth"), "rb").read())
    rng = np.random.default_rng(0)
    path = tmp_path / "flip.pth"
    for _ in range(300):
        bad = bytearray(data)
        for pos in rng.integers(0, 900, size=2):  # the pickles: the storages themselves are raw numbers
            bad[pos] = int(rng.integers(0, 256))
        path.write_bytes(bytes(bad))
        try:
            load_checkpoint(str(path))
        except UserError as e:
            assert "\n" not in str(e)


@pytest.mark.parametrize("layout", FORMATS)
def test_storage_shorter_than_the_tensor(tmp_path, layout):
    refused(one_float_tensor_file(tmp_path, layout, 6, (3, 3), (3, 1)), "needs 36 bytes", "has only 24")
    refused(one_float_tensor_file(tmp_path, layout, 6, (2,), (1,), offset=5), "needs 28 bytes")


def test_storage_records_shorter_than_declared(tmp_path):
    refused(one_float_tensor_file(tmp_path, "zip", 6, (6,), (1,), data=b"\0" * 20), "holds 20 bytes")
    pkl = whole(dict_of((text("w"), tensor(storage("FloatStorage", "0", 6, True), 0, (6,), (1,)))))
    refused(write_legacy(tmp_path / "l.pth", pkl, [("0", 5, b"\0" * 20)]), "has 5 elements")
    refused(write_legacy(tmp_path / "l2.pth", pkl, []), "referenced but not in the file")


def test_missing_zip_record_and_compressed_records(tmp_path):
    pkl = whole(dict_of((text("w"), tensor(storage("FloatStorage", "0", 2, False), 0, (2,), (1,)))))
    refused(write_zip(tmp_path / "a.pth", pkl, {}), "no record 'anyname/data/0'")
    refused(write_zip(tmp_path / "b.pth", pkl, {"0": b"\0" * 8}, compression=zipfile.ZIP_DEFLATED), "compressed")
    path = tmp_path / "c.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("weights.bin", b"")
    refused(str(path), "without <folder>/data.pkl")
    refused(write_zip(tmp_path / "d.pth", pkl, {"0": b"\0" * 8}, byteorder=b"middle"), "byte order")


@pytest.mark.parametrize("size,stride", [((-1, 2), (2, 1)), ((2**62, 2**62), (1, 1)), ((2,), (1, 1)), ((2,), (-1,))])
def test_bad_shapes(tmp_path, size, stride):
    refused(one_float_tensor_file(tmp_path, "zip", 4, size, stride))


def test_unknown_dtypes(tmp_path):
    pkl = whole(dict_of((text("w"), tensor(storage("QInt8Storage", "0", 2, False), 0, (2,), (1,)))))
    refused(write_zip(tmp_path / "q.pth", pkl, {"0": b"\0\0"}), "unsupported tensor type torch.QInt8Storage")
    untyped = storage("UntypedStorage", "0", 2, False, module="torch.storage")
    hooks = call(glob("collections", "OrderedDict"))
    v3 = call(glob("torch._utils", "_rebuild_tensor_v3"), untyped, integer(0), tup(integer(2)), tup(integer(1)),
              pickle.NEWFALSE, hooks, glob("torch", "float8_e4m3fn"))
    refused(write_zip(tmp_path / "f8.pth", whole(dict_of((text("w"), v3))), {"0": b"\0\0"}),
            "unsupported tensor dtype torch.float8_e4m3fn")


def test_not_checkpoints(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    refused(str(empty), "empty file")
    txt = tmp_path / "notes.pth"
    txt.write_text("hello, not a checkpoint\n")
    refused(str(txt), "neither a zip archive nor a legacy torch.save pickle")
    plain = tmp_path / "plain.pth"
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    refused(str(plain), "no PyTorch magic number")
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(str(tmp_path / "missing.pth"))
    bare = whole(dict_of((text("s"), storage("FloatStorage", "0", 1, False))))
    refused(write_zip(tmp_path / "bare.pth", bare, {"0": b"\0" * 4}), "bare Storage")
