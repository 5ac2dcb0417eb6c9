"""``python -m t2i_tf.import_torch --model=sg2im``: an official google/sg2im checkpoint (the small fixture written by
torch.save, see make_sg2im_fixtures.py) -> a run directory that main.py generates and exports from; bad files are
refused in one line. No PyTorch needed."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from tests.import_torch.test_sg2im import FIX, _css_inputs, _load, _nhwc, _rel


# ------------------------------------------------------------------ python -m t2i_tf.import_torch --model=sg2im
def _import(capsys, *argv: str) -> tuple[int, str]:
    from t2i_tf.import_torch.cli import main

    code = main(list(argv))
    return code, capsys.readouterr().err


def test_imported_checkpoint_generates_and_exports_through_main(captioned_css, tmp_path, capsys):
    from t2i_tf.data.pixels import to_uint8
    from t2i_tf.runs.restore import restore_task
    from t2i_tf.tasks.sg2im import layout_noise
    from tests.cli_runner import run_cli

    _, kwargs, io = _load("sg2im_small")
    workdir = str(tmp_path / "run")
    code, err = _import(capsys, "--model=sg2im", f"--checkpoint={os.path.join(FIX, 'sg2im_small.pt')}",
                        f"--data_dir={captioned_css[16]}", f"--workdir={workdir}")
    assert code == 0, err
    task, step = restore_task("sg2im", workdir)
    c = task.config
    assert step == 0 and c["box_net_final_relu"] and (c["gconv_layers"], c["refinement_dims"], c["mask_size"]) == \
        (3, "16,8", 4)
    assert (c["d_img_arch"], c["crop_size"], c["batch_size"]) == ("C3-8-2,C3-16-2", 8, 4)  # the checkpoint's args
    # the run's generator is the official model: the official boxes, masks and images from the same graphs and noise
    assert task.generator.box_net_final_relu
    objects, triples, where = _css_inputs(kwargs, io)
    at = tuple(where.T)
    out = task.generator({"objects": objects, "triples": triples, "noise": _nhwc(io["noise"])}, training=False)
    assert _rel(out["boxes"].numpy()[at], io["boxes"]) <= 1e-5
    assert _rel(tf.sigmoid(out["mask_logits"]).numpy()[at], io["masks"]) <= 1e-5
    assert _rel(out["images"], _nhwc(io["images"])) <= 1e-5

    graph = tmp_path / "g.json"
    official = json.loads(str(io["graphs_json"]))[0]  # the image is index len(objects) there, "image" here
    n = len(official["objects"])
    rels = [[s, p, "image" if o == n else o] for s, p, o in official["relationships"]]
    graph.write_text(json.dumps({"objects": official["objects"], "relationships": rels}))
    sheet = str(tmp_path / "sheet.png")
    result = run_cli("--model=sg2im", f"--workdir={workdir}", "--mode=generate", f"--text={graph}",
                     "--num_samples=2", f"--output={sheet}")
    assert os.path.getsize(sheet) > 0 and json.loads(result.stdout.strip().splitlines()[-1])["images"][:2] == [1, 2]
    export = str(tmp_path / "export")
    run_cli("--model=sg2im", f"--workdir={workdir}", "--mode=export", f"--export_dir={export}")
    module = tf.saved_model.load(export)
    seed = tf.constant(3, tf.int64)
    got = module.generate(tf.constant(objects), tf.constant(triples), seed)
    want = task.generator({"objects": objects, "triples": triples,
                           "noise": layout_noise(2, 16, 2, seed)}, training=False)
    np.testing.assert_array_equal(got["boxes"].numpy(), want["boxes"].numpy())
    np.testing.assert_array_equal(got["images"].numpy(), to_uint8(want["images"]).numpy())


def test_bad_sg2im_checkpoints_are_refused_in_one_line(captioned_css, tmp_path, capsys):
    from t2i_tf.import_torch.cli import write_pth
    from tests.import_torch.test_pth import call, glob, text, whole, write_zip

    sd, _, _ = _load("sg2im_small")
    base = [f"--data_dir={captioned_css[16]}", f"--workdir={tmp_path / 'run'}"]

    def refused(checkpoint: str, *extra: str) -> str:
        code, err = _import(capsys, "--model=sg2im", f"--checkpoint={checkpoint}", *base, *extra)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert not (tmp_path / "run" / "checkpoints").exists()
        return err

    flat = str(tmp_path / "state_only.pth")  # a bare state dict: no model_state / model_kwargs
    write_pth(flat, {k: v.astype(np.float32) for k, v in sd.items()})
    assert "no 'model_state' entry" in refused(flat)
    marker = tmp_path / "pwned"
    evil = write_zip(tmp_path / "evil.pt", whole(call(glob("os", "system"), text(f"touch {marker}"))), {})
    err = refused(str(evil))
    assert "os" in err and "system" in err and not marker.exists()
    vocab = tmp_path / "vg_vocab.json"
    names = ["__image__", "man", "window", "tree"]
    vocab.write_text(json.dumps({"object_idx_to_name": names, "object_name_to_idx": {n: i for i, n in
                                 enumerate(names)}, "pred_idx_to_name": ["__in_image__", "on"],
                                 "pred_name_to_idx": {"__in_image__": 0, "on": 1}}))
    err = refused(os.path.join(FIX, "sg2im_small.pt"), f"--vocab={vocab}")
    assert "not the CSS scene-graph one" in err and "'man'" in err
    err = refused(os.path.join(FIX, "sg2im_nomask.pt"))  # 'relu' = slope 0.01: not the task's refinement net
    assert "slope 0.01" in err


def test_import_into_scene_graph_records_maps_the_vocabulary_by_name(tmp_path, capsys):
    """--data_dir with Visual Genome-style scene-graph records: the run takes the records' vocab.json (here the
    checkpoint's own order, so our id = official id + 1) and draws the official images."""
    from PIL import Image

    from t2i_tf.datasets.scene_graph_writer import Graph, GraphItem, SceneGraphWriter
    from t2i_tf.import_torch.sg2im import padded_graphs
    from t2i_tf.runs.restore import restore_task

    _, kwargs, io = _load("sg2im_small")
    vocab = kwargs["vocab"]
    png = str(tmp_path / "im.png")
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(png)
    records = str(tmp_path / "records")
    writer = SceneGraphWriter(records, "toy_vg")
    writer.set_vocab(vocab["object_idx_to_name"], vocab["pred_idx_to_name"])
    graph = Graph(objects=[2, 3], boxes=np.array([[0.1, 0.1, 0.5, 0.5], [0.4, 0.4, 0.9, 0.9]], np.float32),
                  triples=[[0, 12, 1]])
    for split in ("train", "val"):
        assert writer.write(split, GraphItem("im.png", 1, png, lambda w, h: graph))
    writer.finish({}, {}, {"graph_sampling": "relationships", "graph_max_objects": 5, "graph_max_relations": 4}, {})
    workdir = str(tmp_path / "run")
    code, err = _import(capsys, "--model=sg2im", f"--checkpoint={os.path.join(FIX, 'sg2im_small.pt')}",
                        f"--data_dir={records}", f"--workdir={workdir}")
    assert code == 0, err
    task, _ = restore_task("sg2im", workdir)
    objects, triples, where = padded_graphs(io["objs"], io["triples"], io["obj_to_img"])
    out = task.generator({"objects": objects, "triples": triples, "noise": _nhwc(io["noise"])}, training=False)
    assert _rel(out["boxes"].numpy()[tuple(where.T)], io["boxes"]) <= 1e-5
    assert _rel(out["images"], _nhwc(io["images"])) <= 1e-5
