"""``python -m t2i_tf.import_torch``: official state dicts (rebuilt from the parity fixtures) -> run directories that
restore_task loads and that give the official outputs. No PyTorch needed."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i_tf.import_torch.cli import main, write_pth
from t2i_tf.runs.restore import restore_task

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def _rel(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


# ------------------------------------------------------------------ TIRG
def test_tirg_npz_to_run_gives_official_composed_features(tiny_css, tmp_path, capsys):
    from t2i_tf.data.text import load_vocabulary
    from tests.import_torch.make_tirg_fixtures import synthetic_state_dict

    with open(os.path.join(FIX, "tirg", "state_dicts.json")) as f:
        shapes = json.load(f)["tirg"]
    inputs = np.load(os.path.join(FIX, "tirg", "inputs.npz"))
    ckpt = str(tmp_path / "latest_checkpoint.npz")
    np.savez(ckpt, it=np.int64(1234), **{f"model_state_dict.{k}": v for k, v in synthetic_state_dict(shapes).items()})
    texts = tmp_path / "train_texts.txt"
    texts.write_text("\n".join(str(t) for t in inputs["vocab_texts"]) + "\n")
    workdir = str(tmp_path / "run")
    code, err = _run(capsys, "--model=tirg", f"--checkpoint={ckpt}", f"--data_dir={tiny_css[1]}",
                     f"--texts_from={texts}", f"--workdir={workdir}")
    assert code == 0, err
    assert len(load_vocabulary(workdir)) == 24
    task, step = restore_task("tirg", workdir)
    assert step == 1234 and task.config["composition"] == "tirg" and task.config["embed_dim"] == 32
    x = tf.constant(inputs["images"].astype(np.float32) / 127.5 - 1.0)
    composed = task.model.compose(x, task.tokenizer(tf.constant([str(t) for t in inputs["texts"]])), training=False)
    assert _rel(composed, np.load(os.path.join(FIX, "tirg", "tirg.npz"))["composed_norm"]) <= 1e-4

    # the CSS texts of --data_dir are not the official run's: the embedding rows say so, one line, exit 2
    code, err = _run(capsys, "--model=tirg", f"--checkpoint={ckpt}", f"--data_dir={tiny_css[1]}",
                     f"--workdir={tmp_path / 'other'}")
    assert code == 2 and err.startswith("error: the checkpoint's embedding has 25 rows") and err.count("\n") == 1


# ------------------------------------------------------------------ StackGAN
def _stackgan(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    z = np.load(os.path.join(FIX, "stackgan", f"{name}.npz"))
    return {k[3:]: z[k] for k in z.files if k.startswith("sd/")}, {k: z[k] for k in z.files if not k.startswith("sd/")}


@pytest.fixture(scope="module")
def embedded_records(tmp_path_factory):
    """64 px text-to-image records with 16-d text embeddings (the fixtures' TEXT.DIMENSION)."""
    from t2i_tf.datasets.t2i_common import Item, T2IWriter

    out = str(tmp_path_factory.mktemp("emb16") / "records")
    rng = np.random.default_rng(0)

    def item(i: int) -> Item:
        png = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(png, format="PNG")
        return Item(name=f"im{i}", class_id=1 + i % 2, image_bytes=png.getvalue(), captions=[f"a bird {i}"],
                    embeddings=rng.normal(size=(1, 16)).astype(np.float32))

    writer = T2IWriter(out, "toy", max_side=0)
    for split in ("train", "test"):
        writer.write_split(split, [item(i) for i in range(4)], embeddings=lambda it, s: it.embeddings)
    writer.finish("toy", {})
    return out


def test_stackgan_stage1_pth_and_stage2_npz_to_runs_give_official_images(embedded_records, tmp_path, capsys):
    g_sd, g_io = _stackgan("stage1_g")
    d_sd, d_io = _stackgan("stage1_d")
    g_file, d_file = str(tmp_path / "netG_epoch_600.pth"), str(tmp_path / "netD_epoch_last.pth")
    write_pth(g_file, g_sd)  # torch's zip layout, read back through the restricted reader
    write_pth(d_file, {k: v.astype(np.float32) for k, v in d_sd.items()})
    s1 = str(tmp_path / "stage1")
    code, err = _run(capsys, "--model=stackgan", f"--checkpoint={g_file}", f"--discriminator={d_file}",
                     f"--data_dir={embedded_records}", f"--workdir={s1}")
    assert code == 0, err
    task, step = restore_task("stackgan", s1)
    assert step == 0 and task.config["ngf"] == 4 and task.config["ndf"] == 2 and task.config["z_dim"] == 8
    images, mu, _ = task.generator((g_io["noise"], g_io["text"], g_io["eps"]), training=False)
    assert _rel(mu, g_io["mu"]) <= 1e-4
    assert _rel(images, np.transpose(g_io["images"], (0, 2, 3, 1))) <= 1e-4
    out = task.discriminator((np.transpose(d_io["images"], (0, 2, 3, 1)), d_io["c_code"]), training=False)
    assert _rel(out["cond"], d_io["cond_logits"]) <= 1e-4

    g2_sd, io2 = _stackgan("stage2_g")
    g2_file = str(tmp_path / "stage2_netG.npz")
    np.savez(g2_file, **g2_sd)
    s2, s2_s1 = str(tmp_path / "stage2"), str(tmp_path / "stage2_stage1")
    code, err = _run(capsys, "--model=stackgan", "--stage=2", f"--checkpoint={g2_file}",
                     f"--data_dir={embedded_records}", f"--stage1_workdir={s2_s1}", f"--workdir={s2}")
    assert code == 0, err
    task2, _ = restore_task("stackgan", s2)
    assert task2.stage == 2 and task2.config["num_residual"] == 2
    low, _, _ = task2.stage1.generator((io2["noise"], io2["text"], io2["eps_stage1"]), training=False)
    assert _rel(low, np.transpose(io2["stage1_images"], (0, 2, 3, 1))) <= 1e-4
    high, _, _ = task2.generator((low, io2["text"], io2["eps"]), training=False)
    assert _rel(np.transpose(high.numpy(), (0, 3, 1, 2))[:, :, ::8, ::8], io2["images_sub8"]) <= 1e-4

    # a Stage-II file given as Stage-I, and a misshapen tensor: one line each, exit 2, naming the problem
    code, err = _run(capsys, "--model=stackgan", f"--checkpoint={g2_file}", f"--data_dir={embedded_records}",
                     f"--workdir={tmp_path / 'x'}")
    assert code == 2 and "use --stage=2" in err and err.count("\n") == 1
    bad = str(tmp_path / "bad.npz")
    np.savez(bad, **dict(g_sd, **{"upsample2.1.weight": np.zeros((4, 16, 3, 3), np.float32)}))
    code, err = _run(capsys, "--model=stackgan", f"--checkpoint={bad}", f"--data_dir={embedded_records}",
                     f"--workdir={tmp_path / 'y'}")
    assert code == 2 and "upsample2.1.weight has shape (4, 16, 3, 3)" in err and err.count("\n") == 1
    assert "Traceback" not in err


# ------------------------------------------------------------------ refusals
def test_malicious_pth_is_refused_in_one_line_and_nothing_runs(tmp_path, capsys):
    from tests.import_torch.test_pth import call, glob, text, whole, write_zip

    marker = tmp_path / "pwned"
    evil = write_zip(tmp_path / "evil.pth", whole(call(glob("os", "system"), text(f"touch {marker}"))), {})
    code, err = _run(capsys, "--model=tirg", f"--checkpoint={evil}", f"--data_dir={tmp_path}",
                     f"--workdir={tmp_path / 'run'}")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "os" in err and "system" in err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_wrong_model_missing_file_and_missing_flags_are_one_line_errors(tmp_path, capsys):
    g_sd, _ = _stackgan("stage1_g")
    f = str(tmp_path / "netG.npz")
    np.savez(f, **g_sd)
    code, err = _run(capsys, "--model=tirg", f"--checkpoint={f}", f"--workdir={tmp_path / 'r'}")
    assert code == 2 and "not a tirg checkpoint" in err and "stackgan Stage-I netG" in err and err.count("\n") == 1
    code, err = _run(capsys, "--model=stackgan", f"--checkpoint={f}", f"--workdir={tmp_path / 'r'}")
    assert code == 2 and "--data_dir is required" in err
    code, err = _run(capsys, "--model=damsm", f"--checkpoint={tmp_path / 'nope.pth'}", f"--workdir={tmp_path / 'r'}")
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    code, err = _run(capsys, "--model=vgg", "--checkpoint=x", "--workdir=y")
    assert code == 2 and err.startswith("error: argument --model") and err.count("\n") == 1


# ------------------------------------------------------------------ DAMSM + AttnGAN
def test_damsm_and_attngan_to_runs_give_official_outputs(embedded_records, tmp_path, capsys):
    import pickle

    from t2i_tf.import_torch.attngan import official_to_our_ids
    from tests.import_torch.make_attngan_fixtures import SEEDS, seeded_weights

    def official(key):
        with open(os.path.join(FIX, "attngan", f"{key}_shapes.json")) as f:
            shapes = json.load(f)
        return seeded_weights(shapes, SEEDS[key]), dict(np.load(os.path.join(FIX, "attngan", f"{key}.npz")))

    (rnn, rnn_io), (cnn, _), (g, g_io) = official("rnn"), official("cnn"), official("g")
    for name, sd in (("text_encoder200", rnn), ("image_encoder200", cnn), ("netG_epoch_600", g)):
        np.savez(tmp_path / f"{name}.npz", **sd)
    ixtoword = {0: "<end>", **{i: f"w{i}" for i in range(1, 20)}}
    with open(tmp_path / "captions.pickle", "wb") as f:
        pickle.dump([[], [], ixtoword, {w: i for i, w in ixtoword.items()}], f, protocol=2)
    damsm_dir, attngan_dir = str(tmp_path / "damsm"), str(tmp_path / "attngan")
    code, err = _run(capsys, "--model=damsm", f"--checkpoint={tmp_path / 'text_encoder200.npz'}",
                     f"--image_encoder={tmp_path / 'image_encoder200.npz'}", f"--vocab={tmp_path / 'captions.pickle'}",
                     f"--workdir={damsm_dir}")
    assert code == 0, err
    code, err = _run(capsys, "--model=attngan", f"--checkpoint={tmp_path / 'netG_epoch_600.npz'}",
                     f"--damsm_workdir={damsm_dir}", f"--data_dir={embedded_records}", f"--workdir={attngan_dir}")
    assert code == 0, err
    task, step = restore_task("attngan", attngan_dir)  # restores the DAMSM run it names, too
    assert step == 0 and task.config["num_stages"] == 3 and task.tokenizer.vocabulary[0] == "w1"
    _, sentence = task.damsm.text_encoder(tf.constant(official_to_our_ids(rnn_io["captions"])), training=False)
    assert _rel(sentence, rnn_io["sent_emb"]) <= 1e-4
    inputs = (tf.constant(g_io["z"]), tf.constant(g_io["sent_emb"]), tf.constant(np.transpose(g_io["words_emb"],
              (0, 2, 1))), tf.constant(~g_io["mask"]), tf.constant(g_io["eps"]))
    out = task.sampling_generator(inputs, training=False)
    assert _rel(out["images"][2].numpy()[:, ::4, ::4], np.transpose(g_io["image256_s4"], (0, 2, 3, 1))) <= 1e-4
