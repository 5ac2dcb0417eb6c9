"""The draw-and-edit demo of geneva exports over HTTP (no browser): a real server on a free port in front of a tiny
(untrained) geneva export of the test preset. Two turns through ``POST /api/geneva/edit`` equal the SavedModel's
``edit`` / ``edit_with_state`` called directly; bad states and canvases are 400s with a message; the page has
its controls."""

import base64
import io
import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i_tf.serve.app import DemoApp

TURNS = ["add large red circle to top-left", "add small blue rectangle to bottom-right"]


def png_b64(image):
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def decode(b64):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


@pytest.fixture(scope="module")
def geneva(tmp_path_factory):
    """(export dir, records dir, gallery dir) of an untrained test-preset geneva run on 6 + 4 tiny episodes."""
    from configs import geneva as cfg
    from t2i_tf.data import edit_sequences as es
    from t2i_tf.datasets.css.edits import write_edit_sequences
    from t2i_tf.tasks.geneva import GenevaTask

    root = tmp_path_factory.mktemp("geneva_demo")
    records = str(root / "records")
    write_edit_sequences(records, seed=4, num_train=6, num_test=8, image_size=16)
    task = GenevaTask(dict(cfg.TEST, data_dir=records, seed=0, eval_classifier="", baseline_workdir=""))
    task.prepare(str(root / "run"))
    task.build(tf.distribute.get_strategy())
    task.export(str(root / "export"))
    gallery = root / "gallery"
    gallery.mkdir()
    batch = next(iter(es.held_out_sequences(records, "test", 16, 2, 2)))
    for i, image in enumerate(batch["images"][:, 0].numpy()):
        Image.fromarray(np.round((image + 1.0) * 127.5).astype(np.uint8)).save(gallery / f"scene_{i}.png")
    return str(root / "export"), records, str(gallery)


@pytest.fixture(scope="module")
def server(geneva):
    """(call(path, body=None) -> (status, body), the SavedModel loaded directly, the app)."""
    from t2i_tf.serve.web import make_server

    export, records, gallery = geneva
    app = DemoApp([export], gallery, records)
    srv = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"

    def call(path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=headers),
                                        timeout=60) as r:
                content, status, kind = r.read(), r.status, r.headers["Content-Type"]
        except urllib.error.HTTPError as e:
            content, status, kind = e.read(), e.code, e.headers["Content-Type"]
        return status, (content.decode() if kind.startswith("text/html") else json.loads(content))

    yield call, tf.saved_model.load(export), app
    srv.shutdown()
    srv.server_close()


def direct(model, name, image, text, seed, state=None):
    args = {"image": tf.constant(image), "text": tf.constant([text]), "seed": tf.constant(seed, tf.int64)}
    if state is not None:
        args["state"] = tf.constant(state)
    return {k: v.numpy() for k, v in model.signatures[name](**args).items()}


def test_two_turns_equal_the_saved_model_called_directly(server):
    call, model, app = server
    size = app.first.model.description["image_size"]
    status, first = call("/api/geneva/edit", {"blank": True, "text": TURNS[0], "seed": 3})
    assert status == 200, first
    want = direct(model, "edit", np.full([1, size, size, 3], 255, np.uint8), TURNS[0], 3)
    assert first["signature"] == "edit" and first["blank"] and first["known_words"] == int(want["known_words"][0]) > 0
    assert (decode(first["image"]) == want["images"][0]).all()
    assert np.array_equal(np.asarray(first["state"], np.float32), want["state"][0])  # exact through JSON
    assert len(first["state"]) == app.first.state_size == 8 and first["unknown_words"] == []

    status, second = call("/api/geneva/edit", {"image": first["image"], "state": first["state"], "text": TURNS[1],
                                               "seed": 3})
    assert status == 200, second
    want2 = direct(model, "edit_with_state", want["images"], TURNS[1], 3, want["state"])
    assert second["signature"] == "edit_with_state" and not second["blank"]
    assert (decode(second["image"]) == want2["images"][0]).all()
    assert np.array_equal(np.asarray(second["state"], np.float32), want2["state"][0])
    # the state matters: the same canvas and text from a zero state is the first-turn signature's answer
    status, fresh = call("/api/geneva/edit", {"image": first["image"], "text": TURNS[1], "seed": 3})
    assert status == 200 and fresh["signature"] == "edit"
    assert fresh["state"] != second["state"]


def test_a_gallery_canvas_is_edited_as_the_saved_model_edits_it(server, geneva):
    call, model, _ = server
    status, out = call("/api/geneva/edit", {"gallery_id": 1, "text": TURNS[0], "seed": 0})
    assert status == 200 and out["source_id"] == 1
    image = np.asarray(Image.open(f"{geneva[2]}/scene_1.png").convert("RGB"))[None]
    assert (decode(out["image"]) == direct(model, "edit", image, TURNS[0], 0)["images"][0]).all()


@pytest.mark.parametrize("state, message", [
    ([0.1] * 3, "state must be a list of 8 numbers"),
    ([[0.1] * 8], "state must be a list of 8 numbers"),
    ("0.1,0.2", "state must be a list of 8 numbers"),
    ([0.1] * 7 + ["x"], "state[7] must be a number"),
    ([0.1] * 7 + [True], "state[7] must be a number"),
    ([0.1] * 7 + [5.0], "state[7] is 5.0: a state of this model (a GRU's) lies in -1..1"),
    ([0.0] * 10_000, "got a list of 10000"),
])
def test_a_bad_state_is_a_400_with_a_message(server, state, message):
    call = server[0]
    status, out = call("/api/geneva/edit", {"blank": True, "text": TURNS[0], "state": state, "seed": 0})
    assert status == 400 and message in out["error"], out


@pytest.mark.parametrize("body, message", [
    ({"text": TURNS[0]}, "exactly one of blank: true"),
    ({"blank": True, "gallery_id": 0, "text": TURNS[0]}, "got gallery_id and blank"),
    ({"blank": "yes", "text": TURNS[0]}, "blank must be true or false"),
    ({"gallery_id": 99, "text": TURNS[0]}, "gallery_id must be a gallery image id in 0..1"),
    ({"image": "not base64!", "text": TURNS[0]}, "not base64-encoded"),
    ({"blank": True, "text": "zzz qqq"}, "no word of the text 'zzz qqq' is in the model's vocabulary"),
    ({"blank": True, "text": "  "}, "text must be the instruction"),
    ({"blank": True, "text": TURNS[0], "seed": 1.5}, "seed must be an integer"),
])
def test_bad_canvases_and_texts_are_400s_with_a_message(server, body, message):
    status, out = server[0]("/api/geneva/edit", body)
    assert status == 400 and message in out["error"], out


def test_unknown_words_are_named_when_others_are_known(server):
    status, out = server[0]("/api/geneva/edit", {"blank": True, "text": "add large red zzzblob to top-left"})
    assert status == 200 and out["unknown_words"] == ["zzzblob"] and out["known_words"] >= 3


def test_info_has_the_held_out_episodes_and_the_page_its_controls(server, geneva):
    from t2i_tf.serve.examples import held_out_episodes

    call = server[0]
    status, info = call("/api/geneva/info")
    assert status == 200 and info["kind"] == "draw_edit" and info["state_size"] == 8
    assert info["actions"].count("edit") == 1 and "edit_with_state" in info["actions"]
    episodes = held_out_episodes(geneva[1])
    assert episodes and info["example_episodes"] == episodes and info["examples"] == [t for e in episodes for t in e]
    assert all(e[0].startswith("add ") for e in episodes)  # a blank canvas starts with an add
    status, page = call("/")
    assert status == 200 and 'data-kind="draw_edit"' in page
    for control in ('id="blank"', 'id="canvas"', 'id="text"', 'id="submit"', 'id="start-over"', 'id="history"',
                    'id="seed"', 'id="state"', 'id="gallery"', 'id="upload"', 'id="examples"', 'id="error"',
                    '"/api/" + KEY + "/" + action', 'run("edit"'):
        assert control in page, control
