"""The web demo (t2i_tf.serve): a real HTTP server on a free port in front of real (untrained) exports."""

import base64
import io
import json
import os
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i_tf.errors import UserError
from t2i_tf.serve.__main__ import main as serve_main
from t2i_tf.serve.actions import MAX_ROWS, DemoModel
from t2i_tf.serve.app import DemoApp
from t2i_tf.serve.web import make_server

CAPTIONS = ["a large red circle at the top left", "a small blue triangle in the center"]


def png_b64(image):
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def decode(b64):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


@pytest.fixture()
def http(request):
    """Start a server for a DemoModel; returns (get, post) helpers answering (status, parsed body)."""
    servers = []

    def start(app):
        server = make_server(app, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        base = f"http://127.0.0.1:{server.server_address[1]}"

        def call(path, body=None, raw=None):
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            try:
                headers = {"Content-Type": "application/json"} if data is not None else {}
                with urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=headers),
                                            timeout=60) as r:
                    content, status, kind = r.read(), r.status, r.headers["Content-Type"]
            except urllib.error.HTTPError as e:
                content, status, kind = e.read(), e.code, e.headers["Content-Type"]
            if kind == "image/png":
                return status, content
            return status, (content.decode() if kind.startswith("text/html") else json.loads(content))

        return call

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def untrained_export(task_cls, config, root):
    """Export ``task_cls`` built (untrained) on 16 px captioned CSS records made under ``root``; returns the dir."""
    from t2i_tf.datasets.css.captions import convert_css_captions
    from t2i_tf.datasets.css.generate import generate_css

    generate_css(str(root / "raw"), seed=2, num_base_scenes=4, edits_per_scene=3, image_size=16)
    convert_css_captions(str(root / "raw"), str(root / "records"), image_size=16)
    task = task_cls(dict(config, data_dir=str(root / "records"), seed=0))
    task.prepare(str(root / "run"))
    task.build(tf.distribute.get_strategy())
    task.export(str(root / "export"))
    return str(root / "export")


@pytest.fixture(scope="module")
def gan_export(tmp_path_factory):
    from configs import gan_cls as cfg
    from t2i_tf.tasks.gan_cls import GanClsTask

    return untrained_export(GanClsTask, cfg.TEST, tmp_path_factory.mktemp("serve_gan"))


@pytest.fixture(scope="module")
def tirg_export(css_tirg_export, tmp_path_factory):
    export, raw, _ = css_tirg_export  # the session's untrained TIRG export (tests/serve/conftest.py)
    root = tmp_path_factory.mktemp("serve_tirg")
    gallery = root / "gallery"
    gallery.mkdir()
    images = sorted(n for n in os.listdir(os.path.join(raw, "images")) if n.startswith("css_test_"))[:12]
    for n in images:
        shutil.copy(os.path.join(raw, "images", n), gallery / n)
    (gallery / "broken.png").write_bytes(b"not a png")
    return export, str(gallery)


def test_generate_over_http_is_the_export_and_is_seeded(gan_export, http):
    call = http(DemoApp(gan_export))
    status, page = call("/")
    assert status == 200 and 'data-kind="text_to_image"' in page and 'id="text"' in page and 'id="seed"' in page
    assert gan_export not in page  # no server paths
    status, info = call("/api/info")
    assert status == 200 and info["model"] == "gan_cls" and info["actions"] == ["draw", "generate"]

    status, out = call("/api/generate", {"text": CAPTIONS, "seed": 3})
    assert status == 200 and len(out["images"]) == 2
    images = np.stack([decode(b) for b in out["images"]])
    assert images.shape == (2, 16, 16, 3)
    direct = tf.saved_model.load(gan_export).signatures["generate"](
        text=tf.constant(CAPTIONS), seed=tf.constant(3, tf.int64))["images"].numpy()
    np.testing.assert_array_equal(images, direct)
    assert call("/api/generate", {"text": CAPTIONS, "seed": 3})[1] == out
    assert call("/api/generate", {"text": CAPTIONS, "seed": 4})[1]["images"] != out["images"]
    assert call("/healthz") == (200, {"ok": True})


@pytest.mark.parametrize("body, message", [
    ({"text": ["  "], "seed": 0}, "at least one non-empty line"),
    ({"text": CAPTIONS, "seed": "x"}, "seed must be an integer"),
    ({"text": CAPTIONS}, "generate needs seed"),
    ({"text": CAPTIONS * (MAX_ROWS // 2 + 1), "seed": 0}, f"at most {MAX_ROWS} rows"),
    ([1, 2], "must be a JSON object"),
    ({"text": CAPTIONS, "seed": 2**63}, "seed must be an integer in -9223372036854775808..9223372036854775807"),
    ({"text": CAPTIONS, "seed": 1e300}, "seed must be an integer in"),
    ({"text": CAPTIONS, "seed": 1.5}, "seed must be an integer; got 1.5"),
    ({"text": ["\ud800"], "seed": 0}, "is not valid Unicode text"),
    ({"text": 5, "seed": 0}, "text must be a string or a list of strings"),
    ({"text": ["a red circle", "zzz qqq"], "seed": 0}, "no word of the text 'zzz qqq' is in the model's vocabulary"),
])
def test_bad_requests_get_400_with_the_reason(gan_export, http, body, message):
    call = http(DemoApp(gan_export))
    status, out = call("/api/generate", body)
    assert status == 400 and message in out["error"]


def test_unknown_actions_pages_and_malformed_json(gan_export, http):
    call = http(DemoApp(gan_export))
    status, out = call("/api/retrieve", {"text": "x"})
    assert status == 400 and "has no action 'retrieve'" in out["error"] and "generate" in out["error"]
    assert call("/api/generate", raw=b"{not json")[0] == 400
    status, out = call("/api/generate", raw=b'{"text": ["a red circle"], "seed": NaN}')
    assert status == 400 and "NaN is not a JSON number" in out["error"]
    status, out = call("/api/generate", raw=b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and "nested too deeply" in out["error"]
    assert call("/nope")[0] == 404


def test_tirg_retrieval_ranks_the_gallery_by_cosine(tirg_export, http):
    export, gallery = tirg_export
    call = http(DemoApp(export, gallery))
    info = call("/api/info")[1]
    assert info["gallery"] == {"images": 12, "skipped": 1, "css": False, "with_queries": 0}
    assert info["actions"][0] == "retrieve" and {"compose", "embed_image"} <= set(info["actions"])
    assert 'data-kind="retrieval"' in call("/")[1]

    files = [os.path.join(gallery, n) for n in sorted(os.listdir(gallery)) if n != "broken.png"]
    query = np.asarray(Image.open(files[0]).convert("RGB"))
    status, out = call("/api/retrieve", {"image": png_b64(query), "text": "make middle-center large gray circle red",
                                         "top_k": 5})
    assert status == 200 and len(out["results"]) == 5
    scores = [r["score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)

    sigs = tf.saved_model.load(export).signatures
    q = sigs["compose"](image=tf.constant(query[None]), text=tf.constant(["make middle-center large gray circle red"]))
    g = sigs["embed_image"](image=tf.constant(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])))
    expected = g["embedding"].numpy() @ q["embedding"].numpy()[0]
    best = np.argsort(-expected, kind="stable")[:5]
    assert [r["name"] for r in out["results"]] == [os.path.basename(files[i]) for i in best]
    assert gallery not in json.dumps(out) and all(isinstance(r["id"], int) for r in out["results"])  # no server paths
    np.testing.assert_allclose(scores, expected[best], atol=1e-5)
    status, thumb = call(out["results"][0]["thumbnail"])
    assert status == 200 and np.array_equal(np.asarray(Image.open(io.BytesIO(thumb)).convert("RGB")),
                                            np.asarray(Image.open(files[best[0]]).convert("RGB")))
    # a gallery source is left out of its own ranking, as the official evaluation ranks
    status, by_id = call("/api/retrieve", {"gallery_id": 0, "text": "make middle-center large gray circle red", "top_k": 11})
    assert status == 200 and [r["id"] for r in by_id["results"]] == [int(i) for i in np.argsort(-expected, kind="stable") if i != 0]
    assert by_id["expected"] is None  # not a CSS gallery: no held-out target known
    for bad, message in [({"gallery_id": 12}, "gallery_id must be a gallery image id in 0..11"),
                         ({"gallery_id": 0, "image": png_b64(query)}, "not both"), ({}, "not neither")]:
        status, out = call("/api/retrieve", dict(bad, text="make it red"))
        assert status == 400 and message in out["error"], out
    assert call("/api/gallery/12.png")[0] == 404 and call("/api/gallery/x")[0] == 404
    assert call("/api/gallery?limit=1000")[0] == 400

    assert call("/api/retrieve", {"image": png_b64(query), "text": "x", "top_k": 0})[0] == 400
    status, out = call("/api/retrieve", {"image": "bm90IGFuIGltYWdl", "text": "x"})
    assert status == 400 and "is not a PNG or JPEG image" in out["error"]
    assert q["known_words"].numpy().tolist() == [6]  # all 6 words known ("middle-center" is one word)
    status, out = call("/api/retrieve", {"image": png_b64(query), "text": "zzz qqq"})
    assert status == 400 and out["error"] == "no word of the text 'zzz qqq' is in the model's vocabulary"


def test_tirg_needs_a_gallery_and_the_cli_says_so(tirg_export, tmp_path, capsys):
    export, _ = tirg_export
    with pytest.raises(UserError, match="--gallery_dir is needed"):
        DemoApp(export)
    assert serve_main(["--export_dir", export]) == 2
    assert serve_main(["--export_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: --gallery_dir is needed") and "is not an export of main.py" in err[1]


def test_damsm_match_ranks_captions_by_the_exported_encoders(tmp_path, http):
    from configs import damsm as cfg
    from t2i_tf.tasks.damsm import DamsmTask

    export = untrained_export(DamsmTask, cfg.TEST, tmp_path)
    call = http(DemoApp(export))
    assert call("/api/info")[1]["actions"] == ["match", "encode_image", "encode_text"]

    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    status, out = call("/api/match", {"image": png_b64(image), "text": CAPTIONS + ["a large green square"]})
    assert status == 200 and len(out["results"]) == 3
    sigs = tf.saved_model.load(export).signatures
    g = sigs["encode_image"](image=tf.constant(image[None]))["global"].numpy()[0]
    s = sigs["encode_text"](text=tf.constant(CAPTIONS + ["a large green square"]))["sentence"].numpy()
    cosine = s @ g / (np.linalg.norm(s, axis=1) * np.linalg.norm(g))
    order = np.argsort(-cosine)
    assert [r["text"] for r in out["results"]] == [(CAPTIONS + ["a large green square"])[i] for i in order]
    np.testing.assert_allclose([r["score"] for r in out["results"]], cosine[order], atol=1e-5)
    assert call("/api/match", {"text": CAPTIONS})[0] == 400


@pytest.mark.parametrize("headers, body, status, message", [
    # a cross-site page can post text/plain without a CORS preflight: not JSON, not served
    ({"Content-Type": "text/plain"}, b'{"text": ["a red circle"], "seed": 1}', 415, "takes Content-Type: application/json"),
    ({"Content-Type": "application/json", "Origin": "http://evil.example"}, b"{}", 403, "cross-origin requests are refused"),
    ({"Content-Type": "application/json", "Host": "evil.example:80"}, b"{}", 403, "requests for host 'evil.example:80'"),
    ({"Content-Type": "application/json", "Content-Length": "-1"}, b"{}", 400, "Content-Length must be a number"),
    ({"Content-Type": "application/json", "Content-Length": "abc"}, b"{}", 400, "Content-Length must be a number"),
    ({"Content-Type": "application/json", "Content-Length": str(11 * 1024 * 1024)}, b"", 413, "byte limit"),
])
def test_the_api_refuses_requests_a_foreign_page_could_make(gan_export, headers, body, status, message):
    import http.client

    server = make_server(DemoApp(gan_export), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.putrequest("POST", "/api/generate", skip_host="Host" in headers, skip_accept_encoding=True)
        sent = {"Host": f"127.0.0.1:{port}", "Content-Length": str(len(body)), **headers}
        for key, value in sent.items():
            if key != "Host" or "Host" in headers:
                conn.putheader(key, value)
        conn.endheaders(body)
        response = conn.getresponse()
        assert response.status == status and message in json.loads(response.read())["error"]
        same_origin = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # the page's own request works
        same_origin.request("POST", "/api/generate", body=json.dumps({"text": ["a red circle"], "seed": 1}),
                            headers={"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}"})
        assert same_origin.getresponse().status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_idle_connections_are_dropped_and_workers_are_bounded(gan_export, monkeypatch):
    import socket
    import time

    from t2i_tf.serve import web

    monkeypatch.setattr(web, "SOCKET_TIMEOUT_S", 1)
    server = make_server(DemoApp(gan_export), "127.0.0.1", 0)
    assert server.request_queue_size == 128
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]  # connect, send nothing
        time.sleep(2.5)
        for s in idle:  # the server has hung up on each of them
            s.settimeout(5)
            assert s.recv(1) == b""
            s.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            assert json.loads(r.read()) == {"ok": True}
    finally:
        server.shutdown()
        server.server_close()


def test_idle_connections_do_not_hold_workers(gan_export):
    """More silent connections than workers: /healthz and API calls are still answered at once, not after the
    idle connections time out (they wait without a worker until they send something)."""
    import socket
    import time

    from t2i_tf.serve import web

    server = make_server(DemoApp(gan_export), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]  # 32 workers
        time.sleep(0.5)
        t = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as r:
            assert json.loads(r.read()) == {"ok": True}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/generate", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"text": CAPTIONS, "seed": 1}).encode())
        with urllib.request.urlopen(request, timeout=30) as r:
            assert len(json.loads(r.read())["images"]) == 2
        assert time.perf_counter() - t < web.SOCKET_TIMEOUT_S / 2
        for s in idle:  # still open: the server is not closing them early either
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
            s.close()
    finally:
        server.shutdown()
        server.server_close()


def _png_header_only(width, height):
    """A PNG that announces width x height pixels (a decompression bomb's header) with no real pixel data."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("payload, message", [
    ({"image": 5, "text": "make it red"}, "image must be a base64-encoded PNG or JPEG image (a string); got a number"),
    ({"image": {"a": 1}, "text": "make it red"}, "image must be a base64-encoded PNG or JPEG image (a string); got an object"),
    ({"image": None, "text": "make it red"}, "got null"),
    ({"image": [True], "text": "make it red"}, "image[0] must be a base64-encoded PNG or JPEG image (a string); got true/false"),
    ({"image": [], "text": "make it red"}, "image: give at least one image"),
    ({"image": base64.b64encode(_png_header_only(30000, 30000)).decode(), "text": "make it red"}, "pixels"),
])
def test_bad_images_get_400_with_the_reason(tirg_export, http, payload, message):
    call = http(DemoApp(*tirg_export))
    status, out = call("/api/retrieve", payload)
    assert status == 400 and message in out["error"], out


def test_rows_and_image_types_are_checked_before_anything_is_decoded(tirg_export, monkeypatch):
    from t2i_tf.serve import actions

    model = DemoModel(tirg_export[0])
    decoded = []
    monkeypatch.setattr(actions, "read_image", lambda *a, **k: decoded.append(a) or np.zeros((8, 8, 3), np.uint8))
    good = png_b64(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(UserError, match="same number of rows; got \\[2, 3\\]"):
        model.run("compose", {"image": [good] * 3, "text": ["a", "b"]})
    with pytest.raises(UserError, match="image\\[2\\] must be a base64-encoded"):
        model.run("embed_image", {"image": [good, good, 7]})
    assert decoded == []


def test_a_gallery_with_a_bomb_and_a_fifo_starts_and_skips_them(tirg_export, tmp_path):
    export, gallery = tirg_export
    copy = tmp_path / "gallery"
    shutil.copytree(gallery, copy)
    (copy / "bomb.png").write_bytes(_png_header_only(30000, 30000))
    os.mkfifo(copy / "fifo.png")  # reading it would block start-up forever
    gallery = DemoApp(export, str(copy)).gallery
    assert gallery.info()["images"] == 12 and gallery.info()["skipped"] == 3  # broken.png, bomb.png, fifo.png
    assert sorted(gallery.skipped) == ["bomb.png", "broken.png", "fifo.png"]


def test_image_rows_and_pixels_are_checked_before_decoding(gan_export):
    from t2i_tf.serve.actions import MAX_REQUEST_PIXELS

    model = DemoModel(gan_export)
    big = base64.b64encode(_png(Image.new("L", (2048, 2048)))).decode()  # small file, 4 MP each
    with pytest.raises(UserError, match=f"at most {MAX_REQUEST_PIXELS:,} per request"):
        model._check_pixel_budget([[big] * 5])
    model._check_pixel_budget([[big] * 4])  # 16 MP: within the budget


def _png(image):
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_pages_and_json_answer_only_this_servers_host(gan_export):
    """DNS rebinding: a page on another site cannot read the gallery, info or pages under a name it controls."""
    import http.client

    server = make_server(DemoApp(gan_export), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        for host, status in (("evil.example", 403), (f"127.0.0.1:{port}", 200), (f"localhost:{port}", 200)):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/api/info", headers={"Host": host})
            response = conn.getresponse()
            assert response.status == status, host
            response.read()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/gallery")
        response = conn.getresponse()
        assert response.status == 404 and "no gallery" in json.loads(response.read())["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_demo_actions_check_their_inputs(gan_export, http):
    call = http(DemoApp(gan_export))
    for body, message in [({"text": "a red circle", "num_samples": 0}, "num_samples must be an integer in 1..16; got 0"),
                          ({"text": ["a red circle"]}, "text must be the caption: one non-empty string"),
                          ({"text": "a" * 2001}, "at most 2000"),
                          ({"text": "a red circle", "seed": "1"}, "seed must be an integer"),
                          ({"text": "zzz"}, "no word of the text 'zzz'")]:
        status, out = call("/api/gan_cls/draw", body)
        assert status == 400 and message in out["error"], (body, out)
    status, out = call("/api/gan_cls/draw", {"text": CAPTIONS[0], "num_samples": 2, "seed": 1.0})
    direct = tf.saved_model.load(gan_export).signatures["generate"](
        text=tf.constant([CAPTIONS[0]] * 2), seed=tf.constant(1, tf.int64))["images"].numpy()
    assert status == 200 and np.array_equal(np.stack([decode(b) for b in out["images"]]), direct)
    assert call("/api/nope/draw", {"text": "x"})[0] == 404 and call("/demo/nope")[0] == 404
