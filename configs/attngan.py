"""AttnGAN defaults: the paper's hyperparameters plus presets for CPU runs and tests.

PAPER follows taoxugit/AttnGAN's cfg/bird_attn2.yml: three stages 64/128/256 px (BRANCH_NUM 3), GF_DIM 32,
DF_DIM 64, Z_DIM 100, CONDITION_DIM 100, R_NUM 2, batch 20, Adam lr 2e-4 (beta1 0.5) for G and every D,
600 epochs, the DAMSM loss weighted by LAMBDA = 5 with gamma1 4, gamma2 5, gamma3 10, KL weight 1. CUB:
8,855 images / 20 = 443 iterations per epoch: 265,800 iterations. The DAMSM encoders come from a
``--model=damsm`` run (``damsm_workdir``), frozen.

The official code keeps a 0.999 moving average of G's weights and saves it as netG (``ema_decay``, used for
evaluation, generation and export; ours warms up as tf.train.ExponentialMovingAverage does, which only matters
for short runs), and its word relevance is ``log sum exp(gamma2 cos)`` without the paper's 1/gamma2
(``relevance="code"``). The modern options (all off in PAPER): ``spectral_norm`` in the discriminators,
``self_attention`` in G and D, ``rgb_skip`` (multi-scale skip connections of the stage images).
"""

from __future__ import annotations

from configs.fields import RUN_DEFAULTS, checked, fields_of
from configs.schema import Schema, at_least, power_of_two

PAPER = dict(
    eval_images=1000,
    dataset="cub",
    damsm_workdir="runs/damsm",
    num_stages=3,
    base_size=64,
    ngf=32,
    ndf=64,
    z_dim=100,
    c_dim=100,
    num_residual=2,
    batch_size=20,
    num_iters=265_800,
    learning_rate=2e-4,
    beta1=0.5,
    beta2=0.999,
    damsm_weight=5.0,
    kl_coef=1.0,
    l1_loss=False,  # not in AttnGAN: + l1_coef * sum over stages of mean |G(z, t) - real image| for G
    l1_coef=100.0,
    gamma1=4.0,
    gamma2=5.0,
    gamma3=10.0,
    relevance="code",  # code/miscc/losses.py:106-108: log sum exp(gamma2 cos), no 1/gamma2 (the paper's Eq. 10 has it)
    spectral_norm=False,
    self_attention=False,
    rgb_skip=False,
    ema_decay=0.999,  # code/trainer.py:298-299: avg_p.mul_(0.999).add_(0.001, p); saved and evaluated as netG
    random_flip=True,
    random_crop=True,
    eval_batch_size=50,
    num_samples=16,
    eval_every=5_000,
    log_every=100,
    ckpt_every=2_000,
)

# Captioned CSS on a laptop CPU: two stages 16 -> 32 px, narrow nets, the 32 px DAMSM of configs/damsm.py,
# a generator EMA.
# Measured on held-out captions (docs/generator_quality.md, object F1), on the word-slot DAMSM of configs/damsm.py's
# cpu preset: 0.041 as before (c_dim 32, KL weight 1, 1,500 its), 0.206 with L1 x100 and a 256-d CA at KL weight 0.1
# once the DAMSM layout sentence has unit-size components (at its raw scale the CA's noise drowned it), 0.357 with
# KL weight 0.01 and 3,000 its, 0.550 at 6,000 its, 0.604 at 9,000 and 0.632 at 12,000 (scene accuracy 0.072 ->
# 0.183 -> 0.218 -> 0.258), and no more at 15,000 (0.632 / 0.250): at ngf 16 it had stopped rising, with colour the
# factor it got wrong. A generator twice as wide (ngf 32, this preset) draws colours better at every length: 0.457 /
# 0.610 / 0.650 at 3,000 / 6,000 / 9,000 its (scene accuracy 0.132 / 0.245 / 0.287), at about 2/3 of the step rate,
# so 9,000 its is what fits the 45-minute CPU budget with the DAMSM pre-training. Still rising there: it learned too
# slowly. Fresh runs at 3,000 / 6,000 / 9,000 its, object F1 (scene accuracy): learning rate 4e-4 for G and D
# 0.578 / 0.679 / 0.693 (0.205 / 0.320 / 0.316); 8e-4 (this preset) 0.661 / 0.728 / 0.761 (0.299 / 0.375 /
# 0.423). The DAMSM weight was not the lever (at 3,000 its, 2e-4: weight 1 0.468 (0.132), as 5; 20 0.345 (0.066)).
CPU_CHANGES = dict(
    dataset="css_captions",
    relevance="paper",  # the form the measured CPU runs (README) used
    num_stages=2,
    base_size=16,
    ngf=32,
    ndf=16,
    z_dim=64,
    c_dim=256,
    kl_coef=0.01,
    learning_rate=8e-4,  # 2e-4 was still rising at the end of the budget; 4x gets there by 3,000 its (above)
    l1_loss=True,  # + 100 x each stage's mean |G(z, t) - real image|: a CSS caption fixes its picture
    batch_size=32,
    num_iters=9_000,
    ema_decay=0.999,
    random_flip=False,
    random_crop=False,
    eval_batch_size=100,
    eval_every=500,
    ckpt_every=500,
)

TEST_CHANGES = dict(
    l1_loss=False,  # the L1 term has its own test (tests/tasks/test_word_slots.py)
    eval_images=16,
    num_stages=2,
    base_size=8,
    ngf=4,
    ndf=4,
    z_dim=8,
    c_dim=8,
    num_residual=1,
    batch_size=4,
    num_iters=2,
    ema_decay=0.5,
    eval_batch_size=8,
    num_samples=4,
    eval_every=1_000_000,
    log_every=1,
    ckpt_every=1_000_000,
)

# Anime faces from tags (t2i_tf/datasets/anime, docs/anime.md), as deep_t2i trains its GAN (cwza/deep_t2i
# nbs/20b_Train_Anime_Heads_GAN.ipynb, deep_t2i/trainer_GAN.py, deep_t2i/model.py): 64 px, word attention in the
# 32 and 64 px stages (Anime_G: G_General_Attn at 32 and 64 -> base 16, 3 stages here), spectral norm in D (its
# spectral_conv2d), self-attention (SelfAttention), multi-scale RGB skips (MSG-GAN's, its to_rgb/from_rgb per
# scale), a 0.999 EMA of G (ema_decay), batch 48, Adam lr 2e-4 for G and D with betas (0, 0.999), noise 512
# (noise_sz), the DAMSM loss weighted 2 (smooth_lambda), horizontal flips only (after_batch_tfm: random_hflip). The
# exported model is its checkpoint after 18 + 20 epochs of 765 iterations (load_checkpoint('1-4.pt'), saved every
# 5 epochs of the second 30-epoch run): 29,070 iterations. Differences: deep_t2i has no conditioning augmentation
# (the sentence goes straight in; ours keeps AttnGAN's CA and KL), draws from 4 px up (ours from 16 px), and
# uses BatchNorm with spectral norm in G.
ANIME_CHANGES = dict(
    dataset="anime",
    num_stages=3,
    base_size=16,
    z_dim=512,
    batch_size=48,
    num_iters=29_070,
    learning_rate=2e-4,
    beta1=0.0,
    beta2=0.999,
    damsm_weight=2.0,
    spectral_norm=True,
    self_attention=True,
    rgb_skip=True,
    ema_decay=0.999,
    random_flip=True,
    random_crop=False,
    eval_every=765 * 5,
    ckpt_every=765,
)

# The anime preset on a laptop CPU (docs/anime.md: 2,000 generated faces, on the anime_cpu DAMSM): narrow nets.
ANIME_CPU_CHANGES = dict(
    ngf=16,
    ndf=16,
    z_dim=64,
    c_dim=32,
    num_residual=1,
    batch_size=32,
    num_iters=900,
    eval_batch_size=100,
    eval_images=400,
    num_samples=16,
    eval_every=450,
    ckpt_every=450,
)

ANIME_TEST_CHANGES = dict(TEST_CHANGES, num_stages=2, base_size=8, ema_decay=0.5)

SCHEMA = Schema(
    "attngan",
    fields_of("damsm_workdir", "num_stages", "ngf", "ndf", "z_dim", "c_dim", "num_residual", "learning_rate",
              "beta1", "beta2", "damsm_weight", "kl_coef", "l1_loss", "l1_coef", "gamma1", "gamma2", "gamma3", "relevance", "spectral_norm",
              "self_attention", "rgb_skip", "ema_decay", "random_flip", "random_crop", "eval_batch_size",
              "eval_images", "num_samples", base_size=checked("base_size", power_of_two(8)),
              batch_size=checked("batch_size", at_least(2))),
    dict(RUN_DEFAULTS, **PAPER),
    {"cpu": ("paper", CPU_CHANGES), "test": ("cpu", TEST_CHANGES), "anime": ("paper", ANIME_CHANGES),
     "anime_cpu": ("anime", ANIME_CPU_CHANGES), "anime_test": ("anime_cpu", ANIME_TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
