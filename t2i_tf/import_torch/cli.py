"""``python -m t2i_tf.import_torch``: an official PyTorch checkpoint -> a normal t2i_tf run directory.

Reads the ``.pth`` (restricted reader, nothing from the file is run) or an ``.npz`` of its state dict, builds the
model's Task with the paper preset and the sizes read from the tensors, assigns the weights into the task's models
through the mappings of this package, and writes what ``main.py`` expects in ``--workdir``: ``config.json``, the
vocabulary the task reads, and a checkpoint (step 0, or the file's own iteration such as TIRG's ``it``). Then
``python main.py --model=M --workdir=DIR --mode=eval|generate|export|retrieve`` use it as they are.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import struct
import sys
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from t2i_tf.errors import UserError

MODELS = ("tirg", "stackgan", "damsm", "attngan", "sg2im")
# A tensor each official file has, to tell a file of another model (or another StackGAN stage) apart.
SIGNATURES = {
    "tirg": "img_model.fc.0.weight",
    "stackgan Stage-I netG": "fc.0.weight",
    "stackgan Stage-II netG": "STAGE1_G.ca_net.fc.weight",
    "damsm text encoder": "rnn.weight_hh_l0",
    "damsm image encoder": "emb_cnn_code.weight",
    "attngan netG": "h_net1.fc.0.weight",
    "attngan netD": "COND_DNET.jointConv.0.weight",
    "stackgan netD": "encode_img.0.weight",
    "sg2im Sg2ImModel": "refinement_net.output_conv.0.weight",
}
INCEPTION_FILE = "inception_v3_from_image_encoder.pth"

HELP = __doc__ + """
  python -m t2i_tf.import_torch --model=tirg --checkpoint=latest_checkpoint.pth --data_dir=CSS_RECORDS \\
      [--texts_from=CSS_RAW_DIR|CSS_RECORDS|texts.txt] --workdir=runs/tirg_official
  python -m t2i_tf.import_torch --model=stackgan --stage=1 --checkpoint=netG_epoch_600.pth \\
      [--discriminator=netD_epoch_last.pth] --data_dir=CUB_RECORDS --workdir=runs/stackgan_stage1
  python -m t2i_tf.import_torch --model=stackgan --stage=2 --checkpoint=netG_epoch_600.pth \\
      [--discriminator=netD_epoch_last.pth] --data_dir=CUB_RECORDS_256 --stage1_workdir=runs/stackgan_stage1 \\
      --workdir=runs/stackgan_stage2
  python -m t2i_tf.import_torch --model=damsm --checkpoint=text_encoder200.pth --image_encoder=image_encoder200.pth \\
      --vocab=captions.pickle --workdir=runs/damsm
  python -m t2i_tf.import_torch --model=attngan --checkpoint=netG_epoch_600.pth \\
      [--discriminator=netD0.pth,netD1.pth,netD2.pth] --damsm_workdir=runs/damsm --data_dir=CUB_RECORDS \\
      --workdir=runs/attngan
  python -m t2i_tf.import_torch --model=sg2im --checkpoint=sg2im-models/vg64.pt [--vocab=vocab.json] \\
      --data_dir=VG_RECORDS --workdir=runs/sg2im_vg64

--data_dir (converted text-to-image / CSS records) is required for tirg, stackgan, attngan and sg2im: their tasks read
its info.json (image size, text embeddings, held-out split). Every failure is one line 'error: ...', exit code 2.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit code 2, as every other failure
        raise UserError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m t2i_tf.import_torch", description=HELP,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--checkpoint", required=True, help="the official .pth (or an .npz of its state dict): TIRG's "
                   "latest_checkpoint.pth, StackGAN's / AttnGAN's netG_epoch_*.pth, DAMSM's text_encoder*.pth")
    p.add_argument("--workdir", required=True, help="the run directory to write (must hold no checkpoint yet)")
    p.add_argument("--data_dir", default="", help="converted records the run reads (required: tirg, stackgan, attngan)")
    p.add_argument("--discriminator", default="", help="stackgan: netD_*.pth; attngan: netD0.pth[,netD1.pth,...] "
                   "in stage order (without it the discriminators keep their initial weights)")
    p.add_argument("--stage", type=int, default=1, choices=(1, 2), help="stackgan: which stage --checkpoint is")
    p.add_argument("--stage1_workdir", default="", help="stackgan --stage=2: where the Stage-I run embedded in the "
                   "Stage-II netG (STAGE1_G.*) is written")
    p.add_argument("--texts_from", default="", help="tirg: the training texts the official vocabulary is rebuilt "
                   "from: a CSS raw dir (css_toy_dataset_novel2_small.dup.npy), CSS records, or a text file (one "
                   "text per line); default --data_dir")
    p.add_argument("--image_encoder", default="", help="damsm: image_encoder*.pth")
    p.add_argument("--vocab", default="", help="damsm: the captions.pickle the encoders were trained with; sg2im: "
                   "a vocab.json (default: the checkpoint's model_kwargs['vocab'])")
    p.add_argument("--damsm_workdir", default="", help="attngan: an imported (or trained) damsm run")
    return p


# ------------------------------------------------------------------ reading
def read_file(path: str, key: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(state dict, other top-level entries) of a ``.pth`` or ``.npz``; ``key`` names a nested state dict."""
    from t2i_tf.import_torch import pth

    if not path or not os.path.isfile(path):
        raise UserError(f"checkpoint file {path!r} does not exist")
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: np.asarray(z[k]) for k in z.files}
        except Exception as e:  # noqa: BLE001 -- a corrupt or foreign file: name it, no traceback
            raise UserError(f"cannot read {path} as an .npz state dict ({type(e).__name__}: {e})") from None
        inner = {k[len(key) + 1:]: v for k, v in arrays.items() if key and k.startswith(key + ".")}
        meta = {k: v.item() for k, v in arrays.items() if k in ("it", "epoch") and v.ndim == 0}
        sd = inner or {k: v for k, v in arrays.items() if k not in meta}
        return sd, meta
    obj = pth.load_checkpoint(path)
    meta: dict[str, Any] = {}
    if isinstance(obj, dict) and not pth._is_state_dict(obj):
        meta = {k: v for k, v in obj.items() if isinstance(v, (int, float, str))}
    return pth.load_state_dict(path) if not isinstance(obj, dict) else _state_dict_of(obj, path, key), meta


def _state_dict_of(obj: dict, path: str, key: str | None) -> dict[str, np.ndarray]:
    from t2i_tf.import_torch import pth

    if pth._is_state_dict(obj):
        return dict(obj)
    for k in ([key] if key else []) + ["model_state_dict", "state_dict"]:
        if k in obj and pth._is_state_dict(obj[k]):
            return dict(obj[k])
    raise UserError(f"{path}: no state dict in it (top-level entries: {', '.join(map(repr, list(obj)[:10]))})")


def expect(sd: dict[str, np.ndarray], kind: str, path: str) -> None:
    """A UserError naming what ``path`` looks like when it is not a ``kind`` file."""
    if SIGNATURES[kind] in sd:
        return
    looks = [k for k, name in SIGNATURES.items() if name in sd]
    if kind == "stackgan Stage-I netG" and "stackgan Stage-II netG" in looks:
        looks = ["stackgan Stage-II netG (use --stage=2)"]
    if kind == "stackgan Stage-II netG" and SIGNATURES["stackgan Stage-I netG"] in sd:
        looks = ["stackgan Stage-I netG (use --stage=1)"]
    hint = f"it looks like a {looks[0]} checkpoint" if looks else f"it has {len(sd)} tensors, e.g. " + \
        ", ".join(sorted(sd)[:3])
    raise UserError(f"{path} is not a {kind} checkpoint (no tensor {SIGNATURES[kind]!r}): {hint}")


def _shape(sd: dict[str, np.ndarray], name: str, what: str) -> tuple[int, ...]:
    if name not in sd:
        raise UserError(f"{what}: tensor {name!r} is missing")
    return tuple(int(d) for d in np.shape(sd[name]))


def _require(value: str, flag: str, why: str) -> str:
    if not value:
        raise UserError(f"--{flag} is required: {why}")
    return value


def _records_info(data_dir: str, model: str) -> dict[str, Any]:
    from t2i_tf.data.records import read_info

    _require(data_dir, "data_dir", f"the {model} task reads the records' info.json (converted records)")
    return read_info(data_dir)


# ------------------------------------------------------------------ writing a run
def write_run(model: str, config: dict[str, Any], workdir: str, assign: Callable[[Any], None], step: int = 0,
              vocabulary: list[str] | None = None) -> Any:
    """Build ``model``'s Task for ``config`` in ``workdir``, ``assign(task)`` the weights and save config.json and a
    checkpoint at ``step`` exactly as the Trainer does (so restore_task and main.py read it as a trained run)."""
    from t2i_tf.data.text import save_vocabulary
    from t2i_tf.registry import lookup
    from t2i_tf.runs.config import save_run_config
    from t2i_tf.train.checkpoints import checkpoint_prefixes
    from t2i_tf.train.trainer import Trainer

    if checkpoint_prefixes(os.path.join(workdir, "checkpoints")):
        raise UserError(f"--workdir {workdir} already holds checkpoints: import into a new directory")
    os.makedirs(workdir, exist_ok=True)
    task = lookup(model)[1](config)
    if vocabulary is not None:  # before prepare(), which would otherwise build its own
        save_vocabulary(vocabulary, workdir)
    trainer = Trainer(task, workdir, num_iters=int(task.config.get("num_iters", 0)), strategy="default",
                      verbose=False, seed_global_rng=False)
    trainer.setup()
    assign(task)
    trainer.step.assign(int(step))
    trainer.manager.save(checkpoint_number=int(step))
    save_run_config(workdir, task.name, task.run_config())
    return task


# ------------------------------------------------------------------ TIRG

def _assign_gan(assign_g: Any, g_sd: dict, assign_d: Any, d_sd: dict | None) -> Any:
    """A ``write_run`` assigner: the generator's weights, and the discriminator's when a file was given."""
    def assign(task: Any) -> None:
        assign_g(task.generator, g_sd)
        if d_sd is not None:
            assign_d(task.discriminator, d_sd)
    return assign

def training_texts(source: str) -> list[str]:
    """CSS training texts from a raw CSS dir (the official ``mods[i]['to_str']`` of the train split), converted CSS
    records (their train queries) or a text file with one text per line."""
    if os.path.isfile(source):
        with open(source, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    from t2i_tf.datasets.css.generate import NPY_NAME

    npy = os.path.join(source, NPY_NAME)
    if os.path.isfile(npy):
        from t2i_tf.data.safe_pickle import load_npy
        from t2i_tf.datasets.css.convert import _field, _splits
        from t2i_tf.datasets.css.objects import text_value

        train = _splits(load_npy(npy), npy).get("train")
        if train is None:
            raise UserError(f"{npy} has no 'train' split")
        return [text_value(_field(m, "to_str", npy)) for m in _field(train, "mods", npy)]
    if os.path.isfile(os.path.join(source, "info.json")):
        from t2i_tf.data import css

        return [str(t) for t in css.read_queries(source, "train")["text"]]
    raise UserError(f"--texts_from={source}: not a text file, a raw CSS dir ({NPY_NAME}) or CSS records (info.json)")


def import_tirg_run(a: argparse.Namespace) -> str:
    from t2i_tf.import_torch.tirg import (
        config_for_state_dict,
        load_tirg_state_dict,
        official_vocabulary,
    )

    sd, meta = read_file(a.checkpoint, "model_state_dict")
    expect(sd, "tirg", a.checkpoint)
    info = _records_info(a.data_dir, "tirg")
    if info.get("dataset") != "css":
        raise UserError(f"--data_dir={a.data_dir} holds {info.get('dataset')!r}; TIRG needs converted CSS records")
    vocab = official_vocabulary(training_texts(a.texts_from or a.data_dir))
    rows = _shape(sd, "text_model.embedding_layer.weight", "TIRG checkpoint")[0]
    if rows != len(vocab) + 1:
        raise UserError(f"the checkpoint's embedding has {rows} rows; the texts of --texts_from="
                        f"{a.texts_from or a.data_dir} give {len(vocab)} words + <UNK> = {len(vocab) + 1}: "
                        "give the texts the official run trained on")
    config = config_for_state_dict(sd, data_dir=a.data_dir)
    step = int(meta.get("it", 0) or 0)
    write_run("tirg", config, a.workdir, lambda task: load_tirg_state_dict(task.model, sd), step, vocab)
    return (f"tirg ({config['composition']}, embed_dim {config['embed_dim']}, {len(vocab)} words) at step {step} "
            f"-> {a.workdir}")


# ------------------------------------------------------------------ StackGAN
def import_stackgan_run(a: argparse.Namespace) -> str:
    from configs import stackgan as cfg
    from t2i_tf.import_torch import stackgan as imp

    g_sd, _ = read_file(a.checkpoint)
    d_sd = read_file(a.discriminator)[0] if a.discriminator else None
    if d_sd is not None:
        expect(d_sd, "stackgan netD", a.discriminator)
    info = _records_info(a.data_dir, "stackgan")
    stage2 = a.stage == 2
    expect(g_sd, f"stackgan Stage-{'II' if stage2 else 'I'} netG", a.checkpoint)
    s1_sd, s2_sd = imp.split_stage2_generator(g_sd) if stage2 else (g_sd, None)
    what = "Stage-II netG (STAGE1_G.*)" if stage2 else "Stage-I netG"
    ca, fc = _shape(s1_sd, "ca_net.fc.weight", what), _shape(s1_sd, "fc.0.weight", what)
    c_dim, text_dim = ca[0] // 2, ca[1]
    emb = info.get("embedding_dim")
    if emb != text_dim:
        raise UserError(f"the checkpoint conditions on {text_dim}-d text embeddings (ca_net.fc.weight {ca}); "
                        f"--data_dir={a.data_dir} has {emb or 'no'} embeddings (embedding_dim in info.json)")
    config = dict(cfg.PAPER, data_dir=a.data_dir, text_encoder="pretrained_embeddings", c_dim=c_dim,
                  z_dim=fc[1] - c_dim, ngf=fc[0] // (8 * 16))
    if d_sd is not None and not stage2:
        config["ndf"] = _shape(d_sd, "encode_img.0.weight", "netD")[0]
    done = []
    if stage2:
        s1_dir = _require(a.stage1_workdir, "stage1_workdir", "a Stage-II netG embeds its Stage-I generator, which "
                          "is written as its own Stage-I run there")
        write_run("stackgan", config, s1_dir,
                  lambda task: imp.assign_stage1_generator(task.generator, s1_sd, what=what))
        done.append(f"Stage-I -> {s1_dir}")
        s2 = dict(config, stage=2, stage1_workdir=os.path.abspath(s1_dir), c_dim=_shape(s2_sd, "ca_net.fc.weight",
                  "Stage-II netG")[0] // 2, ngf=_shape(s2_sd, "encoder.0.weight", "Stage-II netG")[0],
                  num_residual=len({k.split(".")[1] for k in s2_sd if k.startswith("residual.")}))
        if d_sd is not None:
            s2["ndf"] = _shape(d_sd, "encode_img.0.weight", "netD")[0]

        write_run("stackgan", s2, a.workdir,
                  _assign_gan(imp.assign_stage2_generator, s2_sd, imp.assign_stage2_discriminator, d_sd))
        done.append(f"Stage-II -> {a.workdir}")
    else:
        write_run("stackgan", config, a.workdir,
                  _assign_gan(imp.assign_stage1_generator, g_sd, imp.assign_stage1_discriminator, d_sd))
        done.append(f"Stage-I -> {a.workdir}")
    if d_sd is None:
        done.append("no --discriminator: the discriminator keeps its initial weights")
    return "stackgan " + "; ".join(done)


# ------------------------------------------------------------------ DAMSM
def write_pth(path: str, tensors: dict[str, np.ndarray]) -> None:
    """A float32 state dict as a torch zip-format ``.pth`` (what torch.save writes; read by our pth reader)."""
    def text(s: str) -> bytes:
        b = s.encode()
        return pickle.BINUNICODE + struct.pack("<I", len(b)) + b

    def integer(n: int) -> bytes:
        return pickle.BININT + struct.pack("<i", n)

    def tup(*items: bytes) -> bytes:
        return pickle.MARK + b"".join(items) + pickle.TUPLE

    ordered = pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.EMPTY_TUPLE + pickle.REDUCE
    body = [pickle.PROTO + b"\x02", ordered]
    records: dict[str, bytes] = {}
    for i, (name, value) in enumerate(tensors.items()):
        v = np.ascontiguousarray(value, dtype="<f4")
        strides = tuple(int(s) // 4 for s in v.strides) if v.ndim else ()
        store = tup(text("storage"), pickle.GLOBAL + b"torch\nFloatStorage\n", text(str(i)), text("cpu"),
                    integer(v.size)) + pickle.BINPERSID
        tensor = (pickle.GLOBAL + b"torch._utils\n_rebuild_tensor_v2\n"
                  + tup(store, integer(0), tup(*map(integer, v.shape)), tup(*map(integer, strides)), pickle.NEWFALSE,
                        ordered) + pickle.REDUCE)
        body.append(text(name) + tensor + pickle.SETITEM)
        records[str(i)] = v.tobytes()
    body.append(pickle.STOP)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", b"".join(body))
        z.writestr("archive/byteorder", "little")
        for key, data in records.items():
            z.writestr(f"archive/data/{key}", data)
    with open(path + ".tmp", "wb") as f:
        f.write(buf.getvalue())
    os.replace(path + ".tmp", path)


def import_damsm_run(a: argparse.Namespace) -> str:
    from configs import damsm as cfg
    from t2i_tf.import_torch import attngan as imp

    text_sd, _ = read_file(a.checkpoint)
    expect(text_sd, "damsm text encoder", a.checkpoint)
    image_sd, _ = read_file(_require(a.image_encoder, "image_encoder", "--model=damsm imports the text AND the "
                                     "image encoder (image_encoder*.pth)"))
    expect(image_sd, "damsm image encoder", a.image_encoder)
    ixtoword, _ = imp.read_captions_pickle(_require(a.vocab, "vocab", "the word ids of text_encoder*.pth are "
                                                    "those of the captions.pickle it was trained with"))
    vocab = imp.vocabulary_from_ixtoword(ixtoword)
    emb = _shape(text_sd, "encoder.weight", "AttnGAN text encoder")
    if emb[0] != len(ixtoword):
        raise UserError(f"AttnGAN text encoder: 'encoder.weight' has {emb[0]} rows; --vocab={a.vocab} has "
                        f"{len(ixtoword)} ids: not the captions.pickle it was trained with")
    hidden = _shape(text_sd, "rnn.weight_hh_l0", "AttnGAN text encoder")[1]
    nef = _shape(image_sd, "emb_cnn_code.weight", "AttnGAN image encoder")[0]
    if nef != 2 * hidden:
        raise UserError(f"the image encoder gives {nef} features (emb_cnn_code.weight), the text encoder "
                        f"2 x {hidden}: not a pair of DAMSM encoders")
    # The task builds its Inception-v3 from a torchvision file; the image encoder holds that network (with the
    # batch statistics of pre-training), so its Inception part is written into the run for that.
    os.makedirs(a.workdir, exist_ok=True)
    inception = os.path.abspath(os.path.join(a.workdir, INCEPTION_FILE))
    write_pth(inception, {k: v for k, v in image_sd.items() if not k.startswith("emb_")
                          and not k.endswith("num_batches_tracked")})
    config = dict(cfg.PAPER, data_dir=a.data_dir or "", hidden_dim=hidden, text_embed_dim=emb[1],
                  inception_weights=inception)

    def assign(task):
        imp.import_damsm_text(text_sd, task.text_encoder)
        imp.import_damsm_image(image_sd, task.image_encoder)

    write_run("damsm", config, a.workdir, assign, 0, vocab)
    return f"damsm ({len(vocab)} words, {nef}-d features) -> {a.workdir}"


# ------------------------------------------------------------------ AttnGAN
def import_attngan_run(a: argparse.Namespace) -> str:
    from configs import attngan as cfg
    from t2i_tf.import_torch import attngan as imp
    from t2i_tf.runs.config import load_run_config

    g_sd, _ = read_file(a.checkpoint)
    expect(g_sd, "attngan netG", a.checkpoint)
    d_files = [f for f in a.discriminator.split(",") if f]
    d_sds = [read_file(f)[0] for f in d_files]
    for f, sd in zip(d_files, d_sds):
        expect(sd, "attngan netD", f)
    _records_info(a.data_dir, "attngan")
    damsm_dir = _require(a.damsm_workdir, "damsm_workdir", "AttnGAN's generator reads DAMSM's word features: import "
                         "the DAMSM encoders first (--model=damsm)")
    damsm = load_run_config(damsm_dir, "damsm") if os.path.isdir(damsm_dir) else None
    if damsm is None:
        raise UserError(f"--damsm_workdir={damsm_dir} has no damsm run (config.json): import it with --model=damsm")
    dims = imp.generator_dims(g_sd)
    feature = 2 * int(damsm["hidden_dim"])
    if dims["word_dim"] != feature or dims["sentence_dim"] != feature:
        raise UserError(f"the generator reads {dims['word_dim']}-d words and {dims['sentence_dim']}-d sentences; "
                        f"the DAMSM run in {damsm_dir} gives {feature}-d features")
    if d_sds and len(d_sds) != dims["num_stages"]:
        raise UserError(f"--discriminator: {len(d_sds)} file(s) for a {dims['num_stages']}-stage generator "
                        "(give netD0.pth,netD1.pth,... in stage order)")
    config = dict(cfg.PAPER, data_dir=a.data_dir, damsm_workdir=os.path.abspath(damsm_dir), base_size=64,
                  **{k: dims[k] for k in ("num_stages", "ngf", "z_dim", "c_dim", "num_residual")})
    if d_sds:
        config["ndf"] = imp.discriminator_dims(d_sds[0])["ndf"]

    def assign(task):
        imp.import_attngan_generator(g_sd, task.generator)
        if task.ema:  # the official netG file is its averaged generator (code/trainer.py:298-299)
            for e, w in zip(task.generator_ema.weights, task.generator.weights):
                e.assign(w)
        for sd, d in zip(d_sds, task.discriminators):
            imp.import_attngan_discriminator(sd, d)

    write_run("attngan", config, a.workdir, assign)
    return (f"attngan ({dims['num_stages']} stages, ngf {dims['ngf']}"
            f"{'' if d_sds else '; no --discriminator: initial discriminators'}) -> {a.workdir}")


# ------------------------------------------------------------------ sg2im
# google/sg2im scripts/train.py flags (the checkpoint's 'args') -> our config keys, kept when an import writes a run.
SG2IM_ARGS = {"batch_size": "batch_size", "learning_rate": "learning_rate", "mask_loss_weight": "mask_loss_weight",
              "l1_pixel_loss_weight": "pixel_loss_weight", "bbox_pred_loss_weight": "box_loss_weight",
              "discriminator_loss_weight": "gan_loss_weight", "d_obj_weight": "d_obj_weight",
              "d_img_weight": "d_img_weight", "ac_loss_weight": "ac_loss_weight", "d_obj_arch": "d_obj_arch",
              "d_img_arch": "d_img_arch", "crop_size": "crop_size", "d_normalization": "d_normalization"}


def import_sg2im_run(a: argparse.Namespace) -> str:
    import json

    from configs import sg2im as cfg
    from t2i_tf.data import scene_graph as sg
    from t2i_tf.import_torch import sg2im as imp

    sd, kwargs, train_args = imp.read_checkpoint(a.checkpoint)
    expect(sd, "sg2im Sg2ImModel", a.checkpoint)
    if a.vocab:
        try:
            with open(a.vocab, encoding="utf-8") as f:
                vocab = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f"--vocab={a.vocab}: not a readable JSON vocabulary ({type(e).__name__}: {e})") from None
        vocab = imp.check_vocab(vocab, a.vocab)
    else:
        if kwargs.get("vocab") is None:
            raise UserError(f"{a.checkpoint} has no model_kwargs['vocab']: give the vocab.json it was trained with "
                            "(--vocab)")
        vocab = imp.check_vocab(kwargs["vocab"], f"{a.checkpoint} model_kwargs['vocab']")
    info = _records_info(a.data_dir, "sg2im")
    names, predicates, dataset = sg.OBJECT_NAMES, sg.PREDICATES, "CSS scene-graph"
    try:  # Visual Genome / COCO-Stuff records carry their vocabulary (t2i_tf/data/scene_graph_records.py)
        from t2i_tf.data import scene_graph_records as sgr
    except ImportError:
        sgr = None
    if sgr is not None and sgr.is_scene_graph_dir(info):
        records_vocab = sgr.read_vocab(a.data_dir)
        names, predicates, dataset = records_vocab.object_names, records_vocab.predicates, records_vocab.dataset
    try:
        rows = imp.vocab_rows(vocab, names, predicates)
    except UserError as e:
        raise UserError(f"the checkpoint's vocabulary ({len(vocab['object_idx_to_name'])} objects, e.g. "
                        f"{', '.join(map(repr, vocab['object_idx_to_name'][1:4]))}) is not the {dataset} one of "
                        f"--data_dir={a.data_dir} ({e}); give the records of the dataset it was trained on") from None
    g = imp.generator_config(sd, kwargs)
    if abs(g["slope"] - 0.2) > 1e-9:
        raise UserError(f"model_kwargs activation {kwargs.get('activation')!r} (slope {g['slope']}): the sg2im task's "
                        "refinement network uses leaky ReLU 0.2 (activation 'leakyrelu-0.2', train.py:103)")
    config = dict(cfg.PAPER, data_dir=a.data_dir, image_size=g["image_size"], object_embedding_dim=g["embedding_dim"],
                  gconv_dim=g["gconv_dim"], gconv_hidden_dim=g["gconv_hidden_dim"], gconv_layers=g["gconv_layers"],
                  gconv_pooling=g["gconv_pooling"], refinement_dims=",".join(map(str, g["refinement_dims"])),
                  crn_normalization=g["normalization"], layout_noise_dim=g["layout_noise_dim"],
                  mask_size=g["mask_size"], box_net_final_relu=True)
    for official, ours in SG2IM_ARGS.items():
        if official in train_args and isinstance(train_args[official], (int, float, str)):
            config[ours] = type(cfg.PAPER[ours])(train_args[official])
    write_run("sg2im", config, a.workdir, lambda task: imp.assign_generator(task.generator, sd, *rows))
    return (f"sg2im generator ({g['image_size']} px, {g['gconv_layers']} graph convolutions, refinement "
            f"{config['refinement_dims']}; the discriminators keep their initial weights) -> {a.workdir}")


IMPORTERS = {"tirg": import_tirg_run, "stackgan": import_stackgan_run, "damsm": import_damsm_run,
             "attngan": import_attngan_run, "sg2im": import_sg2im_run}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the import; 0 on success, 2 with one line ``error: ...`` on stderr on any failure."""
    try:
        args = _parser().parse_args(argv)
        print(f"imported {IMPORTERS[args.model](args)}", flush=True)
        return 0
    except (UserError, OSError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
        return 2
