"""taoxugit/AttnGAN checkpoints -> our Keras DAMSM encoders, AttnGAN generator and discriminators.

Official files (state dicts of its ``code/model.py`` modules; read them with
:func:`t2i_tf.import_torch.pth.load_state_dict`, nothing here needs PyTorch):

- ``text_encoder*.pth`` (RNN_ENCODER) -> :class:`~t2i_tf.models.damsm.DamsmTextEncoder`
  (:func:`import_damsm_text`). ``encoder.weight`` [ntoken, ninput] is the word embedding indexed by the official
  ``captions.pickle`` ids (0 = ``'<end>'``, used as padding; words from 1). Our :class:`~t2i_tf.data.text.Tokenizer`
  has 0 = padding, 1 = out of vocabulary, words from 2, and its vocabulary is the official ``ixtoword[1:]`` in id
  order (:func:`vocabulary_from_ixtoword`), so **our id = official id + 1** for every word: our row 0 = official
  row 0, our row 1 (OOV) = zeros (the official code has no OOV id: ``datasets.py`` drops unknown words), our row
  ``k + 1`` = official row ``k``. LSTM ``rnn.weight_ih_l0`` [4H, in] / ``weight_hh_l0`` [4H, H] are transposed
  (torch's gate order i, f, g, o is Keras' i, f, c, o), ``bias_ih + bias_hh`` is Keras' one bias; ``*_reverse``
  go to the backward LSTM.
- ``image_encoder*.pth`` (CNN_ENCODER) -> :class:`~t2i_tf.models.damsm.DamsmImageEncoder` with
  ``backbone="inception_v3"`` (:func:`import_damsm_image`): torchvision module names map to the attributes of
  :class:`~t2i_tf.models.inception_v3.TorchInceptionV3`; ``emb_features.weight`` [nef, 768, 1, 1] -> the 1x1
  ``region_proj``; ``emb_cnn_code`` (Linear) -> ``global_proj``.
- ``netG_epoch_*.pth`` (G_NET) -> :class:`~t2i_tf.models.attngan.AttnGanGenerator` (base 64, up to 3 stages,
  no spectral norm / self-attention / rgb skip) (:func:`import_attngan_generator`).
- ``netD*.pth`` (D_NET64 / 128 / 256) -> :class:`~t2i_tf.models.attngan.AttnGanDiscriminator`
  (:func:`import_attngan_discriminator`; the official trainer saves one file per discriminator, ``netD0.pth``..).

Layouts: conv kernels ``[O, I, kh, kw]`` -> ``[kh, kw, I, O]``; Linear ``[out, in]`` -> ``[in, out]``; BatchNorm
``weight, bias, running_mean, running_var`` -> ``gamma, beta, moving_mean, moving_variance``
(``num_batches_tracked`` is read and dropped). INIT_STAGE_G's ``fc`` (Linear + BatchNorm1d, ``2 * 16 C0`` units,
then GLU, then ``view(-1, C0, 4, 4)``) has its units permuted within each GLU half from torch's NCHW order
(``c * 16 + y * 4 + x``) to our NHWC reshape order (``(y * 4 + x) * C0 + c``). GLU takes the first channel half
times the sigmoid of the second in both. Every tensor must be consumed and every Keras weight assigned: a
missing or left-over tensor or a shape mismatch is a :class:`UserError` naming the tensor and both shapes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from t2i_tf.errors import UserError
from t2i_tf.models.attngan import AttnGanDiscriminator, AttnGanGenerator
from t2i_tf.models.damsm import DamsmImageEncoder, DamsmTextEncoder
from t2i_tf.models.inception_v3 import BLOCKS, STEM, TorchInceptionV3

OFFICIAL_BASE_SIZE = 64  # INIT_STAGE_G always has 4 up-blocks (code/model.py:287-303): 4 -> 64 px


class _Tensors:
    """A state dict being consumed; ``finish`` fails on left-over tensors or unassigned Keras weights."""

    def __init__(self, state_dict: Mapping[str, Any], what: str, model):
        self.sd = {k: np.asarray(v) for k, v in state_dict.items()}
        self.what = what
        self.used: set[str] = set()
        self.model = model
        self.assigned: set[int] = set()

    def take(self, key: str) -> np.ndarray:
        if key not in self.sd:
            raise UserError(f"{self.what}: tensor {key!r} is missing from the state dict")
        self.used.add(key)
        return self.sd[key]

    def assign(self, var, value: np.ndarray, key: str) -> None:
        value = np.asarray(value, np.float32)
        if tuple(var.shape) != value.shape:
            raise UserError(f"{self.what}: tensor {key!r} has shape {value.shape} after conversion, but the Keras "
                            f"weight {var.path} has shape {tuple(var.shape)}")
        var.assign(value)
        self.assigned.add(id(var))

    def conv(self, layer, key: str, bias: bool = False) -> None:
        w = self.take(f"{key}.weight")
        if w.ndim != 4:
            raise UserError(f"{self.what}: tensor {key + '.weight'!r} should be a conv kernel [O, I, kh, kw]; "
                            f"got shape {w.shape}")
        self.assign(layer.kernel, np.transpose(w, (2, 3, 1, 0)), f"{key}.weight")
        if bias:
            self.assign(layer.bias, self.take(f"{key}.bias"), f"{key}.bias")

    def linear(self, layer, key: str, bias: bool = True, rows: np.ndarray | None = None) -> None:
        w = self.take(f"{key}.weight")
        if w.ndim != 2:
            raise UserError(f"{self.what}: tensor {key + '.weight'!r} should be a Linear weight [out, in]; "
                            f"got shape {w.shape}")
        if rows is not None:
            w = w[rows] if len(rows) == w.shape[0] else w
        self.assign(layer.kernel, w.T, f"{key}.weight")
        if bias:
            b = self.take(f"{key}.bias")
            self.assign(layer.bias, b[rows] if rows is not None and len(rows) == b.shape[0] else b, f"{key}.bias")

    def bn(self, layer, key: str, perm: np.ndarray | None = None) -> None:
        for torch_name, var in (("weight", layer.gamma), ("bias", layer.beta), ("running_mean", layer.moving_mean),
                                ("running_var", layer.moving_variance)):
            v = self.take(f"{key}.{torch_name}")
            if perm is not None and v.shape == perm.shape:
                v = v[perm]
            self.assign(var, v, f"{key}.{torch_name}")
        if f"{key}.num_batches_tracked" in self.sd:
            self.used.add(f"{key}.num_batches_tracked")

    def finish(self) -> None:
        left = sorted(set(self.sd) - self.used)
        if left:
            raise UserError(f"{self.what}: {len(left)} tensor(s) of the state dict were not used: "
                            f"{', '.join(left[:8])}{' ...' if len(left) > 8 else ''}")
        missing = [w.path for w in self.model.weights if id(w) not in self.assigned]
        if missing:
            raise UserError(f"{self.what}: {len(missing)} Keras weight(s) got no tensor: "
                            f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")


# ---------------------------------------------------------------------------------------------- vocabulary
def read_captions_pickle(path: str | os.PathLike) -> tuple[dict[int, str], dict[str, int]]:
    """``(ixtoword, wordtoix)`` of an official ``captions.pickle`` ([train, test, ixtoword, wordtoix], protocol 2),
    read with the restricted unpickler."""
    from t2i_tf.data.safe_pickle import load_pickle

    obj = load_pickle(path)
    if not isinstance(obj, (list, tuple)) or len(obj) != 4 or not all(isinstance(x, dict) for x in obj[2:]):
        raise UserError(f"{os.fspath(path)} is not an AttnGAN captions.pickle: expected a list "
                        "[train_captions, test_captions, ixtoword, wordtoix]")
    ixtoword = {int(k): (v.decode("utf-8") if isinstance(v, bytes) else str(v)) for k, v in obj[2].items()}
    wordtoix = {(k.decode("utf-8") if isinstance(k, bytes) else str(k)): int(v) for k, v in obj[3].items()}
    return ixtoword, wordtoix


def vocabulary_from_ixtoword(ixtoword: Mapping[int, str]) -> list[str]:
    """Our tokenizer vocabulary from the official id -> word map: ``[ixtoword[1], ixtoword[2], ...]``, so that our
    token id = official id + 1 (ours: 0 padding, 1 OOV, words from 2; official: 0 '<end>', words from 1)."""
    n = len(ixtoword)
    if sorted(ixtoword) != list(range(n)) or n < 2:
        raise UserError(f"ixtoword must map the ids 0..{n - 1} with at least one word; got ids "
                        f"{sorted(ixtoword)[:5]}...")
    words = [ixtoword[i] for i in range(1, n)]
    if len(set(words)) != len(words):
        raise UserError("ixtoword holds a word twice")
    return words


def official_to_our_ids(official_ids: np.ndarray) -> np.ndarray:
    """Official caption ids (0 = '<end>' / padding) -> our token ids (0 = padding): ``id + 1`` where ``id > 0``."""
    ids = np.asarray(official_ids, np.int64)
    return np.where(ids > 0, ids + 1, 0)


# ---------------------------------------------------------------------------------------------- DAMSM
def import_damsm_text(state_dict: Mapping[str, Any], encoder: DamsmTextEncoder) -> None:
    """Loads a ``text_encoder*.pth`` (RNN_ENCODER) into a built ``encoder`` whose vocabulary is
    :func:`vocabulary_from_ixtoword` of the same ``captions.pickle`` (vocab_size = official ntoken + 1)."""
    t = _Tensors(state_dict, "AttnGAN text encoder", encoder)
    emb = t.take("encoder.weight")
    want = (encoder.vocab_size - 1, encoder.embed_dim)
    if emb.shape != want:
        raise UserError(f"AttnGAN text encoder: tensor 'encoder.weight' has shape {emb.shape}; the encoder "
                        f"(vocab_size {encoder.vocab_size} = official ntoken + 1) needs {want}")
    table = np.concatenate([emb[:1], np.zeros((1, emb.shape[1]), emb.dtype), emb[1:]], axis=0)
    t.assign(encoder.embedding.embeddings, table, "encoder.weight")
    for suffix, layer in (("", encoder.bilstm.forward_layer), ("_reverse", encoder.bilstm.backward_layer)):
        cell = layer.cell
        t.assign(cell.kernel, t.take(f"rnn.weight_ih_l0{suffix}").T, f"rnn.weight_ih_l0{suffix}")
        t.assign(cell.recurrent_kernel, t.take(f"rnn.weight_hh_l0{suffix}").T, f"rnn.weight_hh_l0{suffix}")
        t.assign(cell.bias, t.take(f"rnn.bias_ih_l0{suffix}") + t.take(f"rnn.bias_hh_l0{suffix}"),
                 f"rnn.bias_ih_l0{suffix} + rnn.bias_hh_l0{suffix}")
    t.finish()


def _load_inception_into(t: _Tensors, net: TorchInceptionV3, prefix: str = "") -> None:
    for name, *_ in STEM:
        block = getattr(net, name)
        t.conv(block.conv, f"{prefix}{name}.conv")
        t.bn(block.bn, f"{prefix}{name}.bn")
    for name, *_ in BLOCKS:
        mixed = getattr(net, name)
        for branch in mixed.branch_names:
            basic = getattr(mixed, branch)
            t.conv(basic.conv, f"{prefix}{name}.{branch}.conv")
            t.bn(basic.bn, f"{prefix}{name}.{branch}.bn")


def load_inception(net: TorchInceptionV3, state_dict: Mapping[str, Any]) -> None:
    """Loads torchvision's ImageNet Inception-v3 (``inception_v3_google-*.pth``, the file the official CNN_ENCODER
    downloads) into a built ``net``; the classifier (``fc``) and ``AuxLogits`` tensors are ignored."""
    sd = {k: v for k, v in state_dict.items() if not (k.startswith("fc.") or k.startswith("AuxLogits."))}
    t = _Tensors(sd, "torchvision Inception-v3", net)
    _load_inception_into(t, net)
    t.finish()


def import_damsm_image(state_dict: Mapping[str, Any], encoder: DamsmImageEncoder) -> None:
    """Loads an ``image_encoder*.pth`` (CNN_ENCODER) into a built ``encoder`` (backbone ``inception_v3``)."""
    if encoder.backbone != "inception_v3":
        raise UserError(f"an AttnGAN image encoder needs backbone='inception_v3'; got {encoder.backbone!r}")
    t = _Tensors(state_dict, "AttnGAN image encoder", encoder)
    _load_inception_into(t, encoder.inception)
    w = t.take("emb_features.weight")
    if w.ndim != 4:
        raise UserError(f"AttnGAN image encoder: tensor 'emb_features.weight' should be [nef, 768, 1, 1]; "
                        f"got shape {w.shape}")
    t.assign(encoder.region_proj.kernel, np.transpose(w, (2, 3, 1, 0)), "emb_features.weight")
    t.linear(encoder.global_proj, "emb_cnn_code")
    t.finish()


def import_damsm(text_sd: Mapping[str, Any], image_sd: Mapping[str, Any], ixtoword: Mapping[int, str],
                 text_dropout: float = 0.5, batch_stats: bool = False
                 ) -> tuple[list[str], DamsmTextEncoder, DamsmImageEncoder]:
    """Builds and loads both DAMSM encoders from official state dicts and ``ixtoword`` (of captions.pickle).

    Sizes come from the tensors (ninput, nhidden, nef). Returns ``(vocabulary, text_encoder, image_encoder)``;
    the vocabulary is what our Tokenizer (and ``vocab.txt``) needs.
    """
    import tensorflow as tf

    vocabulary = vocabulary_from_ixtoword(ixtoword)
    emb = np.asarray(text_sd.get("encoder.weight", np.zeros((0, 0))))
    if emb.ndim != 2 or emb.shape[0] != len(ixtoword):
        raise UserError(f"AttnGAN text encoder: 'encoder.weight' has shape {emb.shape}; captions.pickle has "
                        f"{len(ixtoword)} ids")
    hh = np.asarray(text_sd.get("rnn.weight_hh_l0", np.zeros((0, 0))))
    text = DamsmTextEncoder(len(vocabulary) + 2, emb.shape[1], hh.shape[1], text_dropout, name="damsm_text")
    text(tf.ones([1, 2], tf.int64))
    import_damsm_text(text_sd, text)
    nef = int(np.asarray(image_sd["emb_cnn_code.weight"]).shape[0]) if "emb_cnn_code.weight" in image_sd else 0
    if nef != text.out_dim:
        raise UserError(f"AttnGAN image encoder: 'emb_cnn_code.weight' gives {nef} features, the text encoder "
                        f"{text.out_dim}")
    image = DamsmImageEncoder(299, nef, "inception_v3", batch_stats=batch_stats, name="damsm_image")
    image(tf.zeros([1, 299, 299, 3]))
    import_damsm_image(image_sd, image)
    return vocabulary, text, image


# ---------------------------------------------------------------------------------------------- GAN
def generator_dims(state_dict: Mapping[str, Any]) -> dict[str, int]:
    """``num_stages, ngf, z_dim, c_dim, word_dim, sentence_dim, num_residual`` of an official G_NET state dict."""
    sd = state_dict
    try:
        ca = np.asarray(sd["ca_net.fc.weight"]).shape  # [4 c, t]
        fc = np.asarray(sd["h_net1.fc.0.weight"]).shape  # [2 * 16 * 16 ngf, z + c]
        ngf = int(np.asarray(sd["img_net1.img.0.weight"]).shape[1])
    except KeyError as exc:
        raise UserError(f"AttnGAN generator: tensor {exc.args[0]!r} is missing from the state dict") from exc
    stages = 1 + sum(1 for i in (2, 3) if f"img_net{i}.img.0.weight" in sd)
    word_dim = int(np.asarray(sd["h_net2.att.conv_context.weight"]).shape[1]) if stages > 1 else int(ca[1])
    residual = len({k.split(".")[2] for k in sd if k.startswith("h_net2.residual.")})
    return {"num_stages": stages, "ngf": ngf, "z_dim": int(fc[1] - ca[0] // 4), "c_dim": int(ca[0] // 4),
            "word_dim": word_dim, "sentence_dim": int(ca[1]), "num_residual": residual}


def _fc_permutation(c0: int) -> np.ndarray:
    """Our unit u -> torch unit, for INIT_STAGE_G's fc (2 GLU halves of 16 c0 units, NCHW vs NHWC)."""
    half = 16 * c0
    v = np.arange(half)
    yx, c = v // c0, v % c0
    torch_half = c * 16 + yx
    return np.concatenate([torch_half, half + torch_half])


def import_attngan_generator(state_dict: Mapping[str, Any], generator: AttnGanGenerator) -> None:
    """Loads a ``netG_epoch_*.pth`` (G_NET) into a built ``generator`` (base_size 64, sizes of
    :func:`generator_dims`, no spectral norm / self-attention / rgb_skip)."""
    g = generator
    if g.base_size != OFFICIAL_BASE_SIZE or g.num_stages > 3:
        raise UserError(f"an AttnGAN G_NET is base_size 64 with at most 3 stages; got base_size {g.base_size}, "
                        f"{g.num_stages} stages")
    if g.rgb_skip or g.init_self_attention is not None:
        raise UserError("an AttnGAN G_NET has no rgb_skip or self-attention")
    t = _Tensors(state_dict, "AttnGAN generator", g)
    t.linear(g.ca.fc, "ca_net.fc")
    init = g.init_stage
    perm = _fc_permutation(init.channels[0])
    t.linear(init.fc, "h_net1.fc.0", bias=False, rows=perm)
    t.bn(init.fc_bn, "h_net1.fc.1", perm=perm)
    for j in range(init.num_ups):
        up = getattr(init, f"up{j}")
        t.conv(up.conv, f"h_net1.upsample{j + 1}.1")
        t.bn(up.bn, f"h_net1.upsample{j + 1}.2")
    for i in range(g.num_stages):
        t.conv(getattr(g, f"to_rgb{i}"), f"img_net{i + 1}.img.0")
        if i == 0:
            continue
        stage, key = getattr(g, f"stage{i}"), f"h_net{i + 1}"
        if stage.self_attention is not None:
            raise UserError("an AttnGAN G_NET has no self-attention")
        w = t.take(f"{key}.att.conv_context.weight")
        t.assign(stage.word_attention.project.kernel, w[:, :, 0, 0].T if w.ndim == 4 else w,
                 f"{key}.att.conv_context.weight")
        for r in range(stage.num_residual):
            res, rk = getattr(stage, f"res{r}"), f"{key}.residual.{r}.block"
            t.conv(res.conv1, f"{rk}.0")
            t.bn(res.bn1, f"{rk}.1")
            t.conv(res.conv2, f"{rk}.3")
            t.bn(res.bn2, f"{rk}.4")
        t.conv(stage.up.conv, f"{key}.upsample.1")
        t.bn(stage.up.bn, f"{key}.upsample.2")
    t.finish()


def discriminator_dims(state_dict: Mapping[str, Any]) -> dict[str, int]:
    """``image_size, ndf, sentence_dim`` of an official D_NET64/128/256 state dict."""
    sd = state_dict
    try:
        ndf = int(np.asarray(sd["img_code_s16.0.weight"]).shape[0])
        joint = int(np.asarray(sd["COND_DNET.jointConv.0.weight"]).shape[1])
    except KeyError as exc:
        raise UserError(f"AttnGAN discriminator: tensor {exc.args[0]!r} is missing from the state dict") from exc
    size = 256 if "img_code_s64.0.weight" in sd else 128 if "img_code_s32.0.weight" in sd else 64
    return {"image_size": size, "ndf": ndf, "sentence_dim": joint - 8 * ndf}


def import_attngan_discriminator(state_dict: Mapping[str, Any], discriminator: AttnGanDiscriminator) -> None:
    """Loads a D_NET64 / D_NET128 / D_NET256 state dict into a built ``discriminator`` of that image size."""
    d = discriminator
    if d.image_size not in (64, 128, 256) or d.spectral_norm or d.self_attention is not None:
        raise UserError(f"an AttnGAN D_NET is 64, 128 or 256 px without spectral norm or self-attention; got "
                        f"image_size {d.image_size}")
    t = _Tensors(state_dict, f"AttnGAN discriminator {d.image_size}", d)
    s16 = [(0, None), (2, 3), (5, 6), (8, 9)]  # encode_image_by_16times: conv index, BN index
    downs = [(f"img_code_s16.{c}", None if b is None else f"img_code_s16.{b}") for c, b in s16]
    downs += [("img_code_s32.0", "img_code_s32.1"), ("img_code_s64.0", "img_code_s64.1")][: d.num_downs - 4]
    squeezes = {64: [], 128: ["img_code_s32_1"], 256: ["img_code_s64_1", "img_code_s64_2"]}[d.image_size]
    if len(downs) != d.num_downs or len(squeezes) != d.num_squeezes:
        raise UserError(f"AttnGAN discriminator {d.image_size}: layer counts do not match the official D_NET")
    for j, (conv, bn) in enumerate(downs):
        t.conv(getattr(d, f"down{j}"), conv)
        if bn is not None:
            t.bn(getattr(d, f"down{j}_bn"), bn)
    for s, key in enumerate(squeezes):
        t.conv(getattr(d, f"squeeze{s}"), f"{key}.0")
        t.bn(getattr(d, f"squeeze{s}_bn"), f"{key}.1")
    t.conv(d.joint, "COND_DNET.jointConv.0")
    t.bn(d.joint_bn, "COND_DNET.jointConv.1")
    t.conv(d.cond_logits, "COND_DNET.outlogits.0", bias=True)
    t.conv(d.uncond_logits, "UNCOND_DNET.outlogits.0", bias=True)
    t.finish()
