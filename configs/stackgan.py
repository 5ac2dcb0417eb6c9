"""StackGAN defaults: the paper's hyperparameters plus presets for CPU runs and tests.

Keys shared with GAN-CLS (text encoder, optimiser, data options) mean what they mean in configs/gan_cls.py;
StackGAN has no GAN-INT, WGAN, feature matching or minibatch discrimination, so it has none of their keys.

PAPER is hanzhanggit/StackGAN-Pytorch (the official code; file:line below is in its ``code/`` directory) on
CUB birds. That repository ships only COCO configs (cfg/coco_s1.yml, coco_s2.yml); for CUB its defaults
(miscc/config.py, DATASET_NAME 'birds') hold the sizes, and the schedule is the paper's (Sec. 4: each stage
600 epochs, batch 64, Adam lr 2e-4, halved every 100 epochs), which is hanzhanggit/StackGAN's (TF)
stageII/cfg/birds.yml:12-18 too. Other sources' schedules: miscc/config.py:35,39 says 600 epochs and
LR_DECAY_EPOCH 600 (no decay within 600 epochs, trainer.py:148); the TF stageI/cfg/birds.yml:17 halves every 50.

Epochs -> iterations: the official loader drops the last partial batch (main.py:68-70 ``drop_last=True``), so an
epoch of CUB's 8,855 train images is floor(8855 / 64) = 138 iterations: 600 epochs = 82,800 iterations, a halving
every 100 epochs = every 13,800 (the TF Stage-II config starts from Stage-I's model_82000.ckpt, consistent with
this). Stage-II uses the same values (one preset; the COCO config's Stage-II batch 40 is COCO's).
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
    dataset="cub",  # miscc/config.py:13 DATASET_NAME = 'birds'
    stage=1,  # 1: Stage-I (text -> image_size); 2: Stage-II (Stage-I image + text -> stage2_size); config.py:28
    image_size=64,  # config.py:27 IMSIZE (Stage-I); Stage-II reads it from the Stage-I run
    stage2_size=256,  # model.py:242-261: STAGE2_G draws 256 px from the 64 px Stage-I image (coco_s2.yml:10)
    stage1_workdir="runs/stackgan_stage1",  # Stage-II only: the trained Stage-I run (config.py:22 STAGE1_G)
    stage2_residual=False,  # model.py:259 STAGE2_G.forward: fake_img = self.img(h_code) redraws the image (no skip)
    stage1_mode="train",  # trainer.py:172-173: the frozen STAGE1_G runs inside netG, which is in train mode
    text_encoder="pretrained_embeddings",  # config.py:14,54: char-CNN-RNN embeddings, TEXT.DIMENSION 1024
    caption_embeddings=1,  # datasets.py:144-145: one random caption's embedding per image and epoch
    batch_size=64,  # config.py:34
    num_iters=82_800,  # 600 epochs (config.py:35; paper Sec. 4) x 138 iterations (main.py:68-70, drop_last)
    optimizer="adam",  # trainer.py:135-144
    learning_rate=2e-4,  # config.py:40-41 (G and D)
    beta1=0.5,  # trainer.py:137,144
    beta2=0.999,
    lr_decay=0.5,  # trainer.py:148-154
    lr_decay_every=13_800,  # every 100 epochs (paper Sec. 4; TF stageII/cfg/birds.yml:18) x 138
    z_dim=100,  # config.py:26
    c_dim=128,  # config.py:48 GAN.CONDITION_DIM
    ca_activation="relu",  # model.py:50-57: nn.Linear(t_dim, c_dim * 2) + ReLU (GLU is StackGAN++)
    ngf=128,  # config.py:50 GAN.GF_DIM
    ndf=64,  # config.py:49 GAN.DF_DIM
    kl_coef=2.0,  # config.py:44 TRAIN.COEFF.KL; trainer.py:192
    num_residual=4,  # config.py:51 GAN.R_NUM
    cls=True,  # miscc/utils.py:35-39: the wrong (mismatched) pairs in D's loss
    wrong_pairs="text",  # utils.py:36-39: real_features[:B-1] with cond[1:]
    reuse_fakes=True,  # trainer.py:170-194: one netG forward; D's and G's losses on the same fake_imgs
    label_smoothing=0.0,  # trainer.py:126-127: labels 1 and 0
    l1_loss=False,
    l1_coef=50.0,
    random_flip=True,  # main.py:61 RandomHorizontalFlip
    random_crop=True,  # datasets.py:52-53 resize to 76/64 of IMSIZE, main.py:60 RandomCrop(IMSIZE)
    # Sentence encoder (text_encoder=bilstm, only used when the records have no embeddings): GAN-CLS's.
    **_sentence_encoder("paper"),
    eval_batch_size=64,
    eval_images=1000,
    num_samples=64,
    eval_every=5_000,
    log_every=100,
    ckpt_every=2_000,
)

# Captioned CSS on a laptop CPU: Stage-I at 32 px, Stage-II 32 -> 64 px, narrow nets, a small text encoder
# trained alongside Stage-I (Stage-II reuses it frozen). No flips (captions name left and right). Measured on
# held-out captions (docs/generator_quality.md, Stage-I object F1): 0.026 with the word-slot encoder alone (1,500 its),
# 0.037 + L1 x100 and no random crops (as GAN-CLS's preset), 0.169 + a 256-d CA at KL weight 0.1 (the 64-d CA
# at weight 2 let almost no text through its noise), 0.447 with KL weight 0.01 and 3,000 its (this preset).
# Stage-II on that Stage-I: 0.220 at 1,500 its and 0.296 at 4,500 redrawing the picture (StackGAN's Stage-II), 0.520
# at 3,000 its with stage2_residual (it corrects the up-sampled Stage-I image, so Stage-I's colours survive).
CPU_CHANGES = dict(
    dataset="css_captions",
    image_size=32,
    stage2_size=64,
    text_encoder="word_slots",  # as GAN-CLS's CPU preset (configs/gan_cls.py): words routed to 3 x 3 cells
    batch_size=32,
    num_iters=3_000,
    lr_decay_every=0,
    c_dim=256,
    kl_coef=0.01,
    l1_loss=True,
    l1_coef=100.0,
    random_crop=False,  # a crop moves objects off their cells (CSS captions fix the picture)
    ca_activation="glu",  # the CA of the measured CPU runs (README)
    stage1_mode="inference",  # as the measured CPU runs (README)
    stage2_residual=True,  # Stage-II corrects Stage-I's picture instead of redrawing it (docs/generator_quality.md)
    caption_embeddings=4,
    wrong_pairs="image",
    reuse_fakes=False,
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
    text_encoder="auto",  # the tests exercise the BiLSTM and the embeddings; word_slots has its own tests
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
