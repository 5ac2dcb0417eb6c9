"""StackGAN defaults: the paper's hyperparameters plus presets for CPU runs and tests.

Keys shared with GAN-CLS (text encoder, optimiser, data options) mean what they mean in configs/gan_cls.py;
StackGAN has no GAN-INT, WGAN, feature matching or minibatch discrimination, so it has none of their keys.

PAPER follows hanzhanggit/StackGAN-Pytorch's CUB configs (cfg/birds_s1.yml, cfg/birds_s2.yml): Stage-I
64 px, Stage-II 256 px, batch 64 (Stage-II: 40 in their config, 64 kept here for one preset), Adam lr 2e-4
beta1 0.5 for G and D, halved every 20 epochs over 120 epochs, z 100, condition (CA) 128 from the 1024-d
char-CNN-RNN embedding, KL weight 2.0, GF_DIM 128, DF_DIM 64, 4 residual blocks in Stage-II, the
matching-aware D (real/right + (wrong/right + fake/right) / 2) with no GAN-INT. CUB: 8,855 train images,
ceil(8855 / 64) = 139 iterations per epoch: 16,680 iterations, decay every 2,780.
"""

from __future__ import annotations

from configs import gan_cls
from configs.fields import RUN_DEFAULTS, checked, fields_of, restricted
from configs.schema import Schema, at_least



def _sentence_encoder(preset: str) -> dict:
    """GAN-CLS's sentence-encoder settings in ``preset`` (the same conditioner, configs/gan_cls.py)."""
    return {key: gan_cls.PRESETS[preset][key] for key in gan_cls.SENTENCE_ENCODER_KEYS}


PAPER = dict(
    RUN_DEFAULTS,
    dataset="cub",
    stage=1,  # 1: Stage-I (text -> image_size); 2: Stage-II (Stage-I image + text -> stage2_size)
    image_size=64,  # Stage-I's size (Stage-II reads it from the Stage-I run)
    stage2_size=256,
    stage1_workdir="runs/stackgan_stage1",  # Stage-II only: the trained Stage-I run
    text_encoder="pretrained_embeddings",
    batch_size=64,
    num_iters=16_680,
    optimizer="adam",
    learning_rate=2e-4,
    beta1=0.5,
    beta2=0.999,
    lr_decay=0.5,
    lr_decay_every=2_780,
    z_dim=100,
    c_dim=128,
    ca_activation="relu",  # code/model.py:50-54: nn.Linear(t_dim, c_dim * 2) + ReLU (GLU is StackGAN++)
    ngf=128,
    ndf=64,
    kl_coef=2.0,
    num_residual=4,
    cls=True,
    label_smoothing=0.0,
    l1_loss=False,
    l1_coef=50.0,
    random_flip=True,
    random_crop=True,
    # Sentence encoder (text_encoder=bilstm, only used when the records have no embeddings): GAN-CLS's.
    **_sentence_encoder("paper"),
    eval_batch_size=64,
    eval_images=1000,
    num_samples=64,
    eval_every=5_000,
    log_every=100,
    ckpt_every=2_000,
)

# Captioned CSS on a laptop CPU: Stage-I at 32 px, Stage-II 32 -> 64 px, narrow nets, a small BiLSTM
# trained alongside Stage-I (Stage-II reuses it frozen). No flips (captions name left and right).
CPU_CHANGES = dict(
    dataset="css_captions",
    image_size=32,
    stage2_size=64,
    text_encoder="auto",
    batch_size=32,
    num_iters=1_500,
    lr_decay_every=0,
    c_dim=64,
    ca_activation="glu",  # the CA of the measured CPU runs (README)
    ngf=16,
    ndf=16,
    num_residual=2,
    random_flip=False,
    **_sentence_encoder("cpu"),
    num_samples=16,
    eval_every=500,
    log_every=100,
    ckpt_every=500,
)

# Seconds-long runs for tests.
TEST_CHANGES = dict(
    image_size=16,
    stage2_size=32,
    batch_size=4,
    num_iters=2,
    ngf=4,
    ndf=4,
    c_dim=8,
    z_dim=8,
    num_residual=1,
    **_sentence_encoder("test"),
    eval_batch_size=8,
    eval_images=16,
    num_samples=4,
    eval_every=1_000_000,
    log_every=1,
    ckpt_every=1_000_000,
)

SCHEMA = Schema(
    "stackgan",
    fields_of(*(k for k in PAPER if k not in RUN_DEFAULTS),
              optimizer=restricted("optimizer", "adam", "rmsprop"), batch_size=checked("batch_size", at_least(2))),
    PAPER,
    {"cpu": ("paper", CPU_CHANGES), "test": ("cpu", TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
