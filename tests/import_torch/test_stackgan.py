"""Official StackGAN-Pytorch weights (small fixtures, see make_stackgan_fixtures.py) through our Keras models.

The fixtures hold the official networks' state dicts, inputs and outputs (NCHW); no PyTorch is needed here.
Agreement is measured as max |ours - official| / max |official| per tensor: <= 1e-4 in eval mode, <= 2e-4 in
train mode (batch statistics of a batch of 2 through up to 12 BatchNorms; measured 1.0e-5 .. 9.6e-5).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.errors import UserError
from t2i_tf.import_torch import stackgan as imp

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "stackgan")
# The fixtures' official cfg: TEXT.DIMENSION 16, Z_DIM 8, CONDITION_DIM 4, GF_DIM 4, DF_DIM 2 (Stage I) / 1 (Stage II).
CONFIG1 = dict(image_size=64, ngf=4, ndf=2, z_dim=8, c_dim=4, ca_activation="relu")
CONFIG2 = dict(CONFIG1, ndf=1, stage2_size=256, num_residual=2)


def _load(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    z = np.load(os.path.join(FIXTURES, f"{name}.npz"))
    sd = {k[3:]: z[k] for k in z.files if k.startswith("sd/")}
    return sd, {k: z[k] for k in z.files if not k.startswith("sd/")}


def _nhwc(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 2, 3, 1))


def _rel(ours, ref) -> float:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-12))


def _sub(images: np.ndarray) -> dict[str, np.ndarray]:
    """The fixtures' samples of a 256 px NCHW image batch (as make_stackgan_fixtures.py)."""
    return {"sub8": images[:, :, ::8, ::8], "top_left16": images[:, :, :16, :16],
            "bottom_right16": images[:, :, -16:, -16:]}


def _d_images() -> np.ndarray:
    return np.random.default_rng(2).uniform(-1.0, 1.0, (2, 256, 256, 3)).astype(np.float32)


def test_stage1_generator_and_discriminator_match_official_eval_mode():
    g_sd, g_io = _load("stage1_g")
    d_sd, d_io = _load("stage1_d")
    g, d = imp.import_stage1(g_sd, d_sd, CONFIG1)
    images, mu, logvar = g((g_io["noise"], g_io["text"], g_io["eps"]), training=False)
    assert _rel(mu, g_io["mu"]) <= 1e-4
    assert _rel(logvar, g_io["logvar"]) <= 1e-4
    assert _rel(images, _nhwc(g_io["images"])) <= 1e-4
    out = d((_nhwc(d_io["images"]), d_io["c_code"]), training=False)
    assert _rel(out["cond"], d_io["cond_logits"]) <= 1e-4
    assert _rel(tf.sigmoid(out["cond"]), d_io["cond_probs"]) <= 1e-4


def test_stage1_generator_train_mode_matches_official_batch_statistics_and_running_stats():
    """training=True is torch's train(): batch statistics, and running mean updated with momentum 0.1. The running
    variance differs by the documented factor: torch stores the unbiased batch variance, Keras the biased one."""
    g_sd, g_io = _load("stage1_g")
    _, t_io = _load("stage1_g_train")
    g, _ = imp.import_stage1(g_sd, None, CONFIG1)
    images, _, _ = g((g_io["noise"], g_io["text"], t_io["eps"]), training=True)
    assert _rel(images.numpy()[:, ::4, ::4], _nhwc(t_io["images_sub4"])) <= 2e-4
    perm = imp._fc_permutation(8 * CONFIG1["ngf"])
    assert _rel(g.fc_bn.moving_mean.numpy(), t_io["after/fc.1.running_mean"][perm]) <= 2e-4
    assert _rel(g.up0.norm.moving_mean.numpy(), t_io["after/upsample1.2.running_mean"]) <= 2e-4
    # fc.1 is BatchNorm1d over a batch of 2: torch's running_var = 0.9 v0 + 0.1 * (2 / 1) * biased var
    v0 = g_sd["fc.1.running_var"][perm]
    torch_batch_var = (t_io["after/fc.1.running_var"][perm] - 0.9 * v0) / 0.1
    keras_batch_var = (g.fc_bn.moving_variance.numpy() - 0.9 * v0) / 0.1
    assert _rel(keras_batch_var * 2.0, torch_batch_var) <= 2e-4


def test_stage2_generator_matches_official_eval_mode_with_its_stage1_split_off():
    g_sd, io = _load("stage2_g")
    d_sd, d_io = _load("stage2_d")
    g1, g2, d2 = imp.import_stage2(g_sd, d_sd, CONFIG2)
    low, _, _ = g1((io["noise"], io["text"], io["eps_stage1"]), training=False)
    assert _rel(low, _nhwc(io["stage1_images"])) <= 1e-4
    images, mu, logvar = g2((low, io["text"], io["eps"]), training=False)
    assert _rel(mu, io["mu"]) <= 1e-4
    assert _rel(logvar, io["logvar"]) <= 1e-4
    ours = _sub(np.transpose(images.numpy(), (0, 3, 1, 2)))
    for key, value in ours.items():
        assert _rel(value, io[f"images_{key}"]) <= 1e-4, key
    np.testing.assert_array_equal(_d_images().reshape(-1)[:8], d_io["images_first"])
    out = d2((_d_images(), d_io["c_code"]), training=False)
    assert _rel(out["cond"], d_io["cond_logits"]) <= 1e-4
    assert _rel(out["uncond"], d_io["uncond_logits"]) <= 1e-4
    assert _rel(tf.sigmoid(out["uncond"]), d_io["uncond_probs"]) <= 1e-4


def test_stage2_train_mode_runs_the_frozen_stage1_on_batch_statistics_as_official():
    """The official netG.train() puts its STAGE1_G in train mode: our Stage-I model with training=True matches it
    (images and updated running means); Stage-II's output from that image matches too."""
    g_sd, io = _load("stage2_g")
    _, t_io = _load("stage2_g_train")
    g1, g2, _ = imp.import_stage2(g_sd, None, CONFIG2)
    low, _, _ = g1((io["noise"], io["text"], t_io["eps_stage1"]), training=True)
    assert _rel(low.numpy()[:, ::4, ::4], _nhwc(t_io["stage1_images_sub4"])) <= 2e-4
    assert _rel(g1.up1.norm.moving_mean.numpy(), t_io["after/STAGE1_G.upsample2.2.running_mean"]) <= 2e-4
    assert not np.allclose(g1.up1.norm.moving_mean.numpy(), g_sd["STAGE1_G.upsample2.2.running_mean"])
    images, _, _ = g2((low, io["text"], t_io["eps"]), training=True)
    ours = _sub(np.transpose(images.numpy(), (0, 3, 1, 2)))
    for key, value in ours.items():
        assert _rel(value, t_io[f"images_{key}"]) <= 2e-4, key
    assert _rel(g2.joint.norm.moving_mean.numpy(), t_io["after/hr_joint.1.running_mean"]) <= 2e-4


def test_fc_layout_permutation_is_needed():
    """Without the NCHW -> NHWC permutation of Stage-I's fc the image differs: the mapping is not vacuous."""
    g_sd, g_io = _load("stage1_g")
    g, _ = imp.import_stage1(g_sd, None, CONFIG1)
    perm = imp._fc_permutation(8 * CONFIG1["ngf"])
    g.fc.kernel.assign(g.fc.kernel.numpy()[:, np.argsort(perm)])
    images, _, _ = g((g_io["noise"], g_io["text"], g_io["eps"]), training=False)
    assert _rel(images, _nhwc(g_io["images"])) > 0.1


def test_missing_extra_and_misshapen_tensors_are_user_errors_naming_them():
    g_sd, _ = _load("stage1_g")
    d_sd, _ = _load("stage1_d")
    missing = {k: v for k, v in g_sd.items() if k != "upsample3.2.running_var"}
    with pytest.raises(UserError, match=r"missing tensor upsample3\.2\.running_var"):
        imp.import_stage1(missing, None, CONFIG1)
    with pytest.raises(UserError, match=r"extra\.weight \(3,\)"):
        imp.import_stage1({**g_sd, "extra.weight": np.zeros(3, np.float32)}, None, CONFIG1)
    bad = dict(d_sd, **{"encode_img.2.weight": np.zeros((4, 2, 3, 3), np.float32)})
    with pytest.raises(UserError, match=r"encode_img\.2\.weight has shape \(4, 2, 3, 3\).*\(4, 2, 4, 4\)"):
        imp.import_stage1(g_sd, bad, CONFIG1)
    with pytest.raises(UserError, match=r"ca_net\.fc.*ca_activation|ca_activation=relu"):
        imp.import_stage1(g_sd, None, dict(CONFIG1, ca_activation="glu"))
    with pytest.raises(UserError, match=r"fc\.0\.weight has shape \(512, 12\)"):
        imp.import_stage1(g_sd, None, dict(CONFIG1, ngf=8))
    with pytest.raises(UserError, match="64"):
        imp.import_stage1(g_sd, None, dict(CONFIG1, image_size=32))


def test_stage2_file_needs_its_stage1_tensors_and_a_stage1_file_is_not_one():
    g_sd, _ = _load("stage2_g")
    g1_sd, _ = _load("stage1_g")
    with pytest.raises(UserError, match="STAGE1_G"):
        imp.import_stage2(g1_sd, None, CONFIG2)
    too_few = dict(CONFIG2, num_residual=1)
    with pytest.raises(UserError, match=r"residual\.1\.block"):
        imp.import_stage2(g_sd, None, too_few)
