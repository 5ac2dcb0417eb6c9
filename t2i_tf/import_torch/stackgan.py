"""hanzhanggit/StackGAN-Pytorch checkpoints (``netG_epoch_*.pth`` / ``netD_epoch_*.pth``) -> our Keras StackGAN models.

The official state dicts use the module names of its ``code/model.py`` (``ca_net.fc.weight``,
``upsample1.1.weight``, ``encode_img.3.running_mean``, ...). They map one to one onto
:mod:`t2i_tf.models.stackgan` built with ``ca_activation="relu"`` at 64 px (Stage-I) and 64 -> 256 px
(Stage-II); only the layouts differ:

- conv kernels ``[O, I, kh, kw]`` -> ``[kh, kw, I, O]``; Linear weights ``[out, in]`` -> ``[in, out]``;
- BatchNorm ``weight, bias, running_mean, running_var`` -> ``gamma, beta, moving_mean, moving_variance``
  (``num_batches_tracked``, written by PyTorch >= 0.4, is read and dropped: Keras BN keeps no count);
- Stage-I's ``fc`` (Linear + BatchNorm1d over ``8 ngf * 4 * 4`` units) is viewed by torch as NCHW
  ``[N, 8 ngf, 4, 4]`` (unit ``ch * 16 + y * 4 + x``) and by us as NHWC ``[N, 4, 4, 8 ngf]`` (unit
  ``(y * 4 + x) * 8 ngf + ch``): its output units (Linear rows, BN vectors) are permuted accordingly;
- Stage-II's ``netG`` embeds the frozen Stage-I generator as ``STAGE1_G.*``: it is split off into its own
  :class:`StageIGenerator` (the Stage-I model of a Stage-II run).

Every tensor of a state dict must be consumed and every weight of the Keras model assigned: a missing or
left-over tensor, or a shape that does not fit, is a :class:`UserError` naming the tensor and both shapes.
State dicts are plain ``dict[str, np.ndarray]`` (from :mod:`t2i_tf.import_torch.pth` or ``np.load`` of an
``.npz``), so nothing here needs PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from t2i_tf.errors import UserError
from t2i_tf.models.stackgan import (ConvBlock, StageIDiscriminator, StageIGenerator, StageIIDiscriminator,
                                    StageIIGenerator)

STAGE1_PREFIX = "STAGE1_G."  # Stage-II netG's embedded Stage-I generator (code/model.py:197)
OFFICIAL_STAGE1_SIZE, OFFICIAL_STAGE2_SIZE = 64, 256  # code/model.py:126-136 (4 up-blocks), 230-239, 272-300


class _Tensors:
    """A state dict being consumed: ``take`` marks a tensor used; ``finish`` fails on any tensor left over."""

    def __init__(self, state_dict: Mapping[str, Any], what: str):
        if not isinstance(state_dict, Mapping):
            raise UserError(f"{what}: expected a state dict (name -> array); got {type(state_dict).__name__}")
        self.sd = {str(k): v for k, v in state_dict.items()}
        self.what = what
        self.used: set[str] = set()
        self.assigned: set[str] = set()  # paths of the Keras variables written

    def take(self, name: str, expected_torch_shape: tuple[int, ...] | None = None) -> np.ndarray:
        if name not in self.sd:
            want = f" (expected shape {tuple(expected_torch_shape)})" if expected_torch_shape is not None else ""
            raise UserError(f"{self.what}: missing tensor {name}{want}")
        self.used.add(name)
        value = np.asarray(self.sd[name])
        if expected_torch_shape is not None and tuple(value.shape) != tuple(expected_torch_shape):
            raise UserError(f"{self.what}: tensor {name} has shape {tuple(value.shape)}; the model expects "
                            f"{tuple(expected_torch_shape)}")
        return value

    def drop(self, name: str) -> None:
        """Consume ``name`` if present (BatchNorm's ``num_batches_tracked``)."""
        if name in self.sd:
            self.used.add(name)

    def finish(self, model) -> None:
        """Fail on a tensor left over, or a weight of ``model`` no tensor was written to."""
        unset = [v.path for v in model.weights if v.path not in self.assigned]
        if unset:
            raise UserError(f"{self.what}: no official tensor for {len(unset)} weight(s) of the model: "
                            f"{', '.join(unset[:8])}")
        left = sorted(set(self.sd) - self.used)
        if left:
            shapes = ", ".join(f"{k} {tuple(np.shape(self.sd[k]))}" for k in left[:8])
            more = f" and {len(left) - 8} more" if len(left) > 8 else ""
            raise UserError(f"{self.what}: {len(left)} tensor(s) the model has no place for: {shapes}{more}")


def _assign(var: tf.Variable, value: np.ndarray, t: _Tensors, name: str, torch_shape: tuple[int, ...]) -> None:
    if tuple(var.shape) != tuple(value.shape):
        raise UserError(f"{t.what}: tensor {name} has shape {torch_shape}; the model expects "
                        f"{tuple(var.shape)} for {var.path} (after the layout change)")
    var.assign(tf.convert_to_tensor(value, dtype=var.dtype))
    t.assigned.add(var.path)


def _conv(t: _Tensors, name: str, conv) -> None:
    """torch Conv2d ``name.weight`` [O, I, kh, kw] (+ ``name.bias``) -> Keras Conv2D kernel [kh, kw, I, O] (+ bias)."""
    k = conv.kernel
    kh, kw, i, o = (int(d) for d in k.shape)
    w = t.take(f"{name}.weight")
    if w.ndim != 4 or w.shape != (o, i, kh, kw):
        raise UserError(f"{t.what}: tensor {name}.weight has shape {tuple(w.shape)}; the model expects "
                        f"{(o, i, kh, kw)} (Keras {tuple(k.shape)} for {k.path})")
    _assign(k, np.transpose(w, (2, 3, 1, 0)), t, f"{name}.weight", tuple(w.shape))
    if conv.use_bias:
        b = t.take(f"{name}.bias", (o,))
        _assign(conv.bias, b, t, f"{name}.bias", tuple(b.shape))
    elif f"{name}.bias" in t.sd:
        raise UserError(f"{t.what}: tensor {name}.bias has shape {tuple(np.shape(t.sd[name + '.bias']))}; the model's "
                        f"{k.path.rsplit('/', 1)[0]} has no bias")


def _dense(t: _Tensors, name: str, dense, perm_out: np.ndarray | None = None) -> None:
    """torch Linear ``name.weight`` [out, in] (+ bias) -> Keras Dense kernel [in, out]; ``perm_out[j]`` = the torch
    output unit of Keras unit j."""
    k = dense.kernel
    i, o = (int(d) for d in k.shape)
    w = t.take(f"{name}.weight")
    if w.shape != (o, i):
        raise UserError(f"{t.what}: tensor {name}.weight has shape {tuple(w.shape)}; the model expects {(o, i)} "
                        f"(Keras {tuple(k.shape)} for {k.path})")
    if perm_out is not None:
        w = w[perm_out]
    _assign(k, w.T, t, f"{name}.weight", tuple(w.shape))
    if dense.use_bias:
        b = t.take(f"{name}.bias", (o,))
        _assign(dense.bias, b if perm_out is None else b[perm_out], t, f"{name}.bias", tuple(b.shape))
    elif f"{name}.bias" in t.sd:
        raise UserError(f"{t.what}: tensor {name}.bias has shape {tuple(np.shape(t.sd[name + '.bias']))}; the model's "
                        f"{k.path.rsplit('/', 1)[0]} has no bias")


def _bn(t: _Tensors, name: str, bn, perm: np.ndarray | None = None) -> None:
    """torch BatchNorm ``name.{weight,bias,running_mean,running_var}`` -> Keras gamma, beta, moving mean / variance."""
    n = int(bn.gamma.shape[0])
    for torch_key, var in (("weight", bn.gamma), ("bias", bn.beta), ("running_mean", bn.moving_mean),
                           ("running_var", bn.moving_variance)):
        v = t.take(f"{name}.{torch_key}", (n,))
        _assign(var, v if perm is None else v[perm], t, f"{name}.{torch_key}", tuple(v.shape))
    t.drop(f"{name}.num_batches_tracked")


def _block(t: _Tensors, conv_name: str, bn_name: str | None, block: ConvBlock) -> None:
    _conv(t, conv_name, block.conv)
    if (bn_name is None) != (block.norm is None):
        raise UserError(f"{t.what}: {conv_name} is {'not ' if bn_name is None else ''}followed by BatchNorm in the "
                        f"official model but {'is' if block.norm is not None else 'is not'} here")
    if bn_name is not None:
        _bn(t, bn_name, block.norm)


def _fc_permutation(channels: int) -> np.ndarray:
    """Keras unit j = (y * 4 + x) * C + ch of the 4x4xC map -> torch unit ch * 16 + y * 4 + x."""
    s, ch = np.divmod(np.arange(16 * channels), channels)
    return ch * 16 + s


def _check_ca(model, t: _Tensors) -> None:
    if model.ca.activation != "relu":
        raise UserError(f"{t.what}: StackGAN-Pytorch's conditioning augmentation is Linear + ReLU "
                        "(code/model.py:50-57): build the model with ca_activation='relu'")


def _check_sizes(what: str, got: tuple[int, ...], want: tuple[int, ...]) -> None:
    if got != want:
        raise UserError(f"{what}: StackGAN-Pytorch's networks are {' -> '.join(map(str, want))} px; "
                        f"this model is {' -> '.join(map(str, got))} px")


# ------------------------------------------------------------------ one network each
def assign_stage1_generator(model: StageIGenerator, state_dict: Mapping[str, Any], what: str = "Stage-I netG",
                            prefix: str = "") -> None:
    """Assign an official ``STAGE1_G`` state dict (``prefix`` + its names) to a built :class:`StageIGenerator`."""
    t = _Tensors({k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}, what)
    _check_ca(model, t)
    _check_sizes(what, (model.image_size,), (OFFICIAL_STAGE1_SIZE,))
    _dense(t, "ca_net.fc", model.ca.fc)
    perm = _fc_permutation(8 * model.ngf)
    _dense(t, "fc.0", model.fc, perm_out=perm)
    _bn(t, "fc.1", model.fc_bn, perm=perm)
    for k in range(model.num_ups):
        _block(t, f"upsample{k + 1}.1", f"upsample{k + 1}.2", getattr(model, f"up{k}"))
    _conv(t, "img.0", model.to_rgb)
    t.finish(model)


def assign_stage2_generator(model: StageIIGenerator, state_dict: Mapping[str, Any], what: str = "Stage-II netG") -> None:
    """Assign an official ``STAGE2_G`` state dict, less its ``STAGE1_G.*`` tensors, to a built :class:`StageIIGenerator`."""
    t = _Tensors({k: v for k, v in state_dict.items() if not k.startswith(STAGE1_PREFIX)}, what)
    _check_ca(model, t)
    _check_sizes(what, (model.stage1_size, model.image_size), (OFFICIAL_STAGE1_SIZE, OFFICIAL_STAGE2_SIZE))
    _dense(t, "ca_net.fc", model.ca.fc)
    _block(t, "encoder.0", None, model.enc0)
    _block(t, "encoder.2", "encoder.3", model.enc1)
    _block(t, "encoder.5", "encoder.6", model.enc2)
    _block(t, "hr_joint.0", "hr_joint.1", model.joint)
    for r in range(model.num_residual):
        res = getattr(model, f"res{r}")
        _block(t, f"residual.{r}.block.0", f"residual.{r}.block.1", res.block1)
        _block(t, f"residual.{r}.block.3", f"residual.{r}.block.4", res.block2)
    for j in range(model.num_ups):
        _block(t, f"upsample{j + 1}.1", f"upsample{j + 1}.2", getattr(model, f"up{j}"))
    _conv(t, "img.0", model.to_rgb)
    t.finish(model)


def _assign_discriminator(model, state_dict: Mapping[str, Any], what: str) -> None:
    t = _Tensors(state_dict, what)
    # encode_img: conv (no BN on the first), BN, LeakyReLU in threes after the first pair
    index = 0
    for i in range(model.num_downs):
        block = getattr(model, f"down{i}")
        _block(t, f"encode_img.{index}", None if i == 0 else f"encode_img.{index + 1}", block)
        index += 2 if i == 0 else 3
    for i in range(model.num_reduce):
        _block(t, f"encode_img.{index}", f"encode_img.{index + 1}", getattr(model, f"reduce{i}"))
        index += 3
    _block(t, "get_cond_logits.outlogits.0", "get_cond_logits.outlogits.1", model.joint)
    _conv(t, "get_cond_logits.outlogits.3", model.cond_logit)
    if model.uncond_logit is not None:
        _conv(t, "get_uncond_logits.outlogits.0", model.uncond_logit)
    t.finish(model)


def assign_stage1_discriminator(model: StageIDiscriminator, state_dict: Mapping[str, Any],
                                what: str = "Stage-I netD") -> None:
    """Assign an official ``STAGE1_D`` state dict to a built :class:`StageIDiscriminator`."""
    _check_sizes(what, (model.image_size,), (OFFICIAL_STAGE1_SIZE,))
    _assign_discriminator(model, state_dict, what)


def assign_stage2_discriminator(model: StageIIDiscriminator, state_dict: Mapping[str, Any],
                                what: str = "Stage-II netD") -> None:
    """Assign an official ``STAGE2_D`` state dict to a built :class:`StageIIDiscriminator`."""
    _check_sizes(what, (model.image_size,), (OFFICIAL_STAGE2_SIZE,))
    _assign_discriminator(model, state_dict, what)


# ------------------------------------------------------------------ whole stages
def _setting(config: Mapping[str, Any], key: str) -> int:
    if key not in config:
        raise UserError(f"StackGAN import: the config has no {key!r}")
    return int(config[key])


def _embedding_dim(g_sd: Mapping[str, Any], what: str, prefix: str = "") -> int:
    w = g_sd.get(prefix + "ca_net.fc.weight")
    if w is None or np.ndim(w) != 2:
        raise UserError(f"{what}: missing tensor {prefix}ca_net.fc.weight (expected shape (2 * c_dim, text dim))")
    return int(np.shape(w)[1])


def build_stage1(config: Mapping[str, Any], embedding_dim: int) -> tuple[StageIGenerator, StageIDiscriminator]:
    """Built (weights initialised) Stage-I G and D for ``config`` (image_size, ngf, ndf, z_dim, c_dim)."""
    if config.get("ca_activation", "relu") != "relu":
        raise UserError("StackGAN-Pytorch's conditioning augmentation is Linear + ReLU: import with "
                        f"ca_activation=relu (got {config['ca_activation']!r})")
    size, z, cd = _setting(config, "image_size"), _setting(config, "z_dim"), _setting(config, "c_dim")
    _check_sizes("StackGAN import --image_size", (size,), (OFFICIAL_STAGE1_SIZE,))
    g = StageIGenerator(size, _setting(config, "ngf"), z, cd, ca_activation="relu", name="generator")
    d = StageIDiscriminator(size, _setting(config, "ndf"), cd, name="discriminator")
    g((tf.zeros([1, z]), tf.zeros([1, embedding_dim]), None))
    d((tf.zeros([1, size, size, 3]), tf.zeros([1, cd])))
    return g, d


def build_stage2(config: Mapping[str, Any], embedding_dim: int) -> tuple[StageIIGenerator, StageIIDiscriminator]:
    """Built Stage-II G and D for ``config`` (image_size = Stage-I's, stage2_size, ngf, ndf, c_dim, num_residual)."""
    if config.get("ca_activation", "relu") != "relu":
        raise UserError("StackGAN-Pytorch's conditioning augmentation is Linear + ReLU: import with "
                        f"ca_activation=relu (got {config['ca_activation']!r})")
    s1, s2, cd = _setting(config, "image_size"), _setting(config, "stage2_size"), _setting(config, "c_dim")
    _check_sizes("StackGAN import --image_size / --stage2_size", (s1, s2), (OFFICIAL_STAGE1_SIZE, OFFICIAL_STAGE2_SIZE))
    g = StageIIGenerator(s1, s2, _setting(config, "ngf"), cd, _setting(config, "num_residual"), ca_activation="relu",
                         name="generator")
    d = StageIIDiscriminator(s2, _setting(config, "ndf"), cd, name="discriminator")
    g((tf.zeros([1, s1, s1, 3]), tf.zeros([1, embedding_dim]), None))
    d((tf.zeros([1, s2, s2, 3]), tf.zeros([1, cd])))
    return g, d


def split_stage2_generator(g_sd: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stage-II netG's state dict -> (its embedded Stage-I generator's, with ``STAGE1_G.`` removed; the rest)."""
    stage1 = {k[len(STAGE1_PREFIX):]: v for k, v in g_sd.items() if k.startswith(STAGE1_PREFIX)}
    rest = {k: v for k, v in g_sd.items() if not k.startswith(STAGE1_PREFIX)}
    if not stage1:
        raise UserError(f"Stage-II netG: no {STAGE1_PREFIX}* tensors (is this a Stage-I netG?)")
    return stage1, rest


def import_stage1(g_sd: Mapping[str, Any], d_sd: Mapping[str, Any] | None,
                  config: Mapping[str, Any]) -> tuple[StageIGenerator, StageIDiscriminator | None]:
    """Official Stage-I ``netG`` (and ``netD``, or None) state dicts -> our (generator, discriminator or None).

    ``config`` gives image_size (64), ngf (GAN.GF_DIM), ndf (GAN.DF_DIM), z_dim, c_dim (GAN.CONDITION_DIM); the
    text-embedding size is read from ``ca_net.fc.weight``.
    """
    g, d = build_stage1(config, _embedding_dim(g_sd, "Stage-I netG"))
    assign_stage1_generator(g, g_sd)
    if d_sd is not None:
        assign_stage1_discriminator(d, d_sd)
    return g, (d if d_sd is not None else None)


def import_stage2(g_sd: Mapping[str, Any], d_sd: Mapping[str, Any] | None, config: Mapping[str, Any]
                  ) -> tuple[StageIGenerator, StageIIGenerator, StageIIDiscriminator | None]:
    """Official Stage-II ``netG`` (with its ``STAGE1_G.*``) and ``netD`` (or None) state dicts -> our
    (Stage-I generator, Stage-II generator, Stage-II discriminator or None).

    ``config`` gives image_size (Stage-I's, 64), stage2_size (256), ngf, ndf, z_dim, c_dim, num_residual (GAN.R_NUM).
    The official Stage-I inside it shares GF_DIM, Z_DIM and CONDITION_DIM with Stage-II (one cfg), so the Stage-I
    generator is built from the same config. The returned Stage-I discriminator is not part of a Stage-II file.
    """
    stage1_sd, stage2_sd = split_stage2_generator(g_sd)
    emb = _embedding_dim(stage2_sd, "Stage-II netG")
    g1, _ = build_stage1(config, emb)
    assign_stage1_generator(g1, stage1_sd, what="Stage-II netG (STAGE1_G.*)")
    g2, d2 = build_stage2(config, emb)
    assign_stage2_generator(g2, stage2_sd)
    if d_sd is not None:
        assign_stage2_discriminator(d2, d_sd)
    return g1, g2, (d2 if d_sd is not None else None)
