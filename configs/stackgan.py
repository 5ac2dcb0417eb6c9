"""StackGAN defaults: the paper's hyperparameters plus presets for CPU runs and tests.

A preset only fills flags the user did not set on the command line. Keys shared with GAN-CLS (text
encoder, optimiser, data options) mean what they mean in configs/gan_cls.py.

PAPER follows hanzhanggit/StackGAN-Pytorch's CUB configs (cfg/birds_s1.yml, cfg/birds_s2.yml): Stage-I
64 px, Stage-II 256 px, batch 64 (Stage-II: 40 in their config, 64 kept here for one preset), Adam lr 2e-4
beta1 0.5 for G and D, halved every 20 epochs over 120 epochs, z 100, condition (CA) 128 from the 1024-d
char-CNN-RNN embedding, KL weight 2.0, GF_DIM 128, DF_DIM 64, 4 residual blocks in Stage-II, the
matching-aware D (real/right + (wrong/right + fake/right) / 2) with no GAN-INT. CUB: 8,855 train images,
ceil(8855 / 64) = 139 iterations per epoch: 16,680 iterations, decay every 2,780.
"""

from __future__ import annotations

from configs import gan_cls

PAPER = dict(
    gan_cls.PAPER,
    stage=1,  # 1: Stage-I (text -> image_size); 2: Stage-II (Stage-I image + text -> stage2_size)
    image_size=64,  # Stage-I's size (Stage-II reads it from the Stage-I run)
    stage2_size=256,
    stage1_workdir="runs/stackgan_stage1",  # Stage-II only: the trained Stage-I run
    num_iters=16_680,
    lr_decay=0.5,
    lr_decay_every=2_780,
    c_dim=128,
    ngf=128,
    ndf=64,
    kl_coef=2.0,
    num_residual=4,
    interp=False,
    random_crop=True,
)

# Captioned CSS on a laptop CPU: Stage-I at 32 px, Stage-II 32 -> 64 px, narrow nets, a small BiLSTM
# trained alongside Stage-I (Stage-II reuses it frozen). No flips (captions name left and right).
CPU = dict(
    PAPER,
    dataset="css_captions",
    image_size=32,
    stage2_size=64,
    text_encoder="auto",
    batch_size=32,
    num_iters=1_500,
    lr_decay_every=0,
    c_dim=64,
    ngf=16,
    ndf=16,
    num_residual=2,
    random_flip=False,
    max_text_len=32,
    text_dim=128,
    text_embed_dim=64,
    text_hidden_dim=64,
    encoder_width=16,
    encoder_learning_rate=1e-3,
    num_samples=16,
    eval_every=500,
    log_every=100,
    ckpt_every=500,
)

# Seconds-long runs for tests.
TEST = dict(
    CPU,
    image_size=16,
    stage2_size=32,
    batch_size=4,
    num_iters=2,
    ngf=4,
    ndf=4,
    c_dim=8,
    z_dim=8,
    num_residual=1,
    text_dim=8,
    text_embed_dim=8,
    text_hidden_dim=8,
    encoder_width=4,
    eval_batch_size=8,
    num_samples=4,
    eval_every=1_000_000,
    log_every=1,
    ckpt_every=1_000_000,
)

PRESETS = {"paper": PAPER, "cpu": CPU, "test": TEST}
DEFAULT_PRESET = "cpu"
