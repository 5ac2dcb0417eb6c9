"""DAMSM pre-training defaults: the paper's hyperparameters plus presets for CPU runs and tests.

PAPER follows taoxugit/AttnGAN's cfg/DAMSM/bird.yml and pretrain_DAMSM.py: images at 299 through a frozen
ImageNet Inception-v3 (regions from Mixed_6e, 17x17), 256-d features (a BiLSTM of 2 x 128), 300-d word
embeddings, 18 words per caption, batch 48, Adam lr 2e-3 beta1 0.5, RNN gradients clipped to norm 0.25,
gamma1 4, gamma2 5, gamma3 10, 600 epochs (CUB: 8,855 images / 48 = 185 iterations per epoch: 111,000).
The Inception weights are read from ``inception_weights`` (nothing is downloaded).
"""

from __future__ import annotations

from configs.fields import RUN_DEFAULTS, fields_of
from configs.schema import Schema

PAPER = dict(
    dataset="cub",
    image_size=299,
    backbone="inception_v3",
    inception_weights="",
    width=32,  # backbone=cnn only
    hidden_dim=128,  # per direction: features are 2 * hidden_dim = 256
    text_embed_dim=300,
    text_dropout=0.5,
    max_text_len=18,
    batch_size=48,
    num_iters=111_000,
    learning_rate=2e-3,
    beta1=0.5,
    rnn_grad_clip=0.25,
    gamma1=4.0,
    gamma2=5.0,
    gamma3=10.0,
    relevance="code",  # AttnGAN code/miscc/losses.py:106-108: log sum exp(gamma2 cos), no 1/gamma2 (paper: with it)
    random_flip=True,
    random_crop=True,
    eval_batch_size=100,
    eval_images=1000,
    eval_every=5_000,
    log_every=100,
    ckpt_every=2_000,
)

# Captioned CSS on a laptop CPU: a small CNN image encoder trained from scratch at the generator's final size
# (the AttnGAN CPU preset's 32 px).
CPU_CHANGES = dict(
    dataset="css_captions",
    relevance="paper",  # the form the measured CPU runs (README) used
    image_size=32,
    backbone="cnn",
    width=32,
    text_embed_dim=64,
    hidden_dim=64,
    max_text_len=32,
    batch_size=32,
    num_iters=1_000,
    random_flip=False,
    random_crop=False,
    eval_every=500,
    ckpt_every=500,
)

TEST_CHANGES = dict(
    image_size=16,
    width=4,
    text_embed_dim=8,
    hidden_dim=8,
    batch_size=4,
    num_iters=2,
    eval_batch_size=8,
    eval_images=16,
    eval_every=1_000_000,
    log_every=1,
    ckpt_every=1_000_000,
)

SCHEMA = Schema(
    "damsm",
    fields_of("image_size", "backbone", "inception_weights", "width", "hidden_dim", "text_embed_dim",
              "text_dropout", "max_text_len", "learning_rate", "beta1", "rnn_grad_clip", "gamma1", "gamma2", "gamma3",
              "relevance", "random_flip", "random_crop", "eval_batch_size", "eval_images"),
    dict(RUN_DEFAULTS, **PAPER),
    {"cpu": ("paper", CPU_CHANGES), "test": ("cpu", TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
