"""GAN-CLS / GAN-INT defaults: the paper's hyperparameters plus presets for CPU runs and tests.

A preset only fills flags the user did not set on the command line; presets other than PAPER
are overrides of the preset named with them.

PAPER follows reedscot/icml2016 (main_cls_int.lua + scripts/train_cub.sh): batch 64, Adam lr 2e-4 with
beta1 0.5, nz 100, nt (text projection) 128, ngf 128, ndf 64, 1024-d char-CNN-RNN embeddings (the mean of
4 captions' embeddings), CLS weight 0.5 (D: real + 0.5 wrong + 0.5 fake), INT weight 1 with beta 0.5,
lr halved every 100 epochs for 600 epochs. With CUB's 8,855 train+val images that is
ceil(8855 / 64) = 139 iterations per epoch: 83,400 iterations, decay every 13,900.

WGAN types use the same Adam settings by default, as aelnouby/Text-to-Image-Synthesis (the source of the
gan | wgan | vanilla_gan | vanilla_wgan types, diter=5, clip 0.01, l1_coef 50, l2_coef 100) does;
``optimizer="rmsprop"`` with ``learning_rate=5e-5`` is Arjovsky et al.'s original WGAN recipe.
"""

from __future__ import annotations

from configs.fields import RUN_DEFAULTS, checked, fields_of, restricted
from configs.schema import Schema, at_least

# The co-trained BiLSTM sentence encoder's settings (text_encoder=bilstm): StackGAN conditions through the same one.
SENTENCE_ENCODER_KEYS = ("max_text_len", "text_dim", "text_embed_dim", "text_hidden_dim", "encoder_width",
                         "slot_grid", "encoder_learning_rate", "match_gamma", "swap_negatives", "swap_word_groups")

PAPER = dict(
    eval_images=1000,
    dataset="cub",
    image_size=64,
    gan_type="gan",
    text_encoder="pretrained_embeddings",
    batch_size=64,
    num_iters=83_400,
    optimizer="adam",
    learning_rate=2e-4,
    beta1=0.5,
    beta2=0.999,
    lr_decay=0.5,
    lr_decay_every=13_900,
    z_dim=100,
    ngf=128,
    ndf=64,
    proj_dim=128,
    reed_residual=True,  # main_cls_int.lua:114-150 (G: residual blocks at 4x4 and 8x8), :187-206 (D: block at 4x4,
    # no activation after its two last convs, BatchNorm on the text projection)
    cls=True,
    interp=True,
    interp_weight=1.0,
    interp_beta=0.5,
    label_smoothing=0.0,  # one-sided: D's real target is 1 - label_smoothing (bce types only)
    feature_matching=False,  # + l2_coef * ||mean D features(real) - mean D features(fake)||^2 for G
    l2_coef=100.0,
    l1_loss=False,  # + l1_coef * mean |G(z, t) - real image| for G
    l1_coef=50.0,
    diter=5,  # critic updates per generator update (wgan types; gan types always 1)
    clip_value=0.01,  # wgan / vanilla_wgan weight clipping
    gp_weight=10.0,  # wgan_gp lambda
    d_norm="auto",  # batch | layer | none; auto = layer for wgan_gp, else batch
    minibatch_discrimination=False,
    mbd_kernels=128,
    mbd_kernel_dim=16,
    random_flip=True,  # False for CSS (captions name left and right)
    random_crop=True,  # resize to 76/64 S + random S crop (Reed, StackGAN); False: the image resized to S
    # Sentence encoder (text_encoder=bilstm): only used when the records have no embeddings.
    max_text_len=48,
    text_dim=1024,
    text_embed_dim=300,
    text_hidden_dim=512,
    encoder_width=64,
    slot_grid=3,  # not in Reed et al.: text_encoder=word_slots only
    encoder_learning_rate=2e-4,
    match_gamma=10.0,
    swap_negatives=0,  # not in Reed et al.: swapped-word hard negative captions (t2i_tf/data/word_swaps.py)
    swap_word_groups="css",
    eval_batch_size=64,
    num_samples=64,
    eval_every=5_000,
    log_every=100,
    ckpt_every=2_000,
)

# Captioned CSS on a laptop CPU: 32 px scenes, narrow nets, a small BiLSTM trained alongside the GAN.
# No horizontal flips (CSS captions name left and right). Measured (docs/generator_quality.md): with the scene
# given exactly (oracle attribute embeddings) this generator reaches object F1 0.93 in 3,000 iterations once
# (1) the text projection is 256-d (64 squeezed out colour: F1 0.04), (2) an L1 term ties the image to its
# caption's scene (CSS captions fix the picture), (3) GAN-INT is off (interpolated CSS captions describe no scene)
# and (4) random crops are off (a crop moves objects off their cells, and L1 then targets a shifted image).
# With the mean-pooled BiLSTM the sentence vector was the limit (object F1 0.067): it codes colour-shape pairs
# jointly, and the held-out split pairs them anew. The word-slot encoder (text_encoder=word_slots: each word routed
# to one of 3 x 3 cells, a cell's vector the sum of its words' embeddings, so additive in the words) reaches object
# F1 0.949 on held-out captions in the same 3,000 iterations (docs/generator_quality.md). On CUB / Flowers / anime
# records the command line turns it back into auto (t2i_tf/cli.py CSS_LAYOUT_SETTINGS).
CPU_CHANGES = dict(
    dataset="css_captions",
    image_size=32,
    text_encoder="word_slots",
    batch_size=32,
    num_iters=3_000,
    lr_decay_every=0,
    ngf=32,
    ndf=32,
    proj_dim=256,
    reed_residual=False,  # the measured CPU runs (docs/generator_quality.md) are plain DCGAN blocks
    interp=False,
    l1_loss=True,
    l1_coef=100.0,
    random_flip=False,
    random_crop=False,
    max_text_len=56,  # captioned CSS captions run to 51 tokens (29% exceed 32): longer ones lost their last objects
    text_dim=288,  # 3 x 3 slots of 32
    text_embed_dim=64,
    text_hidden_dim=64,
    encoder_width=16,
    encoder_learning_rate=1e-3,
    num_samples=16,
    eval_every=1_000,
    log_every=100,
    ckpt_every=500,
)

# Seconds-long runs for tests.
TEST_CHANGES = dict(
    text_encoder="auto",  # the tests exercise both the BiLSTM and the embeddings; word_slots has its own tests
    interp=True,  # the tests exercise Reed's GAN-CLS/INT losses; the L1 term has its own test
    l1_loss=False,
    eval_images=16,
    image_size=16,
    batch_size=4,
    num_iters=2,
    ngf=8,
    ndf=8,
    proj_dim=8,
    z_dim=8,
    diter=2,
    mbd_kernels=4,
    mbd_kernel_dim=3,
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

SCHEMA = Schema(
    "gan_cls",
    fields_of("image_size", "gan_type", "text_encoder", "learning_rate", "beta1", "beta2", "lr_decay",
              "lr_decay_every", "z_dim", "ngf", "ndf", "proj_dim", "reed_residual", "cls", "interp", "interp_weight", "interp_beta",
              "label_smoothing", "feature_matching", "l2_coef", "l1_loss", "l1_coef", "diter", "clip_value",
              "gp_weight", "d_norm", "minibatch_discrimination", "mbd_kernels", "mbd_kernel_dim", "random_flip",
              "random_crop", "max_text_len", "text_dim", "text_embed_dim", "text_hidden_dim", "encoder_width",
              "slot_grid", "encoder_learning_rate", "match_gamma", "swap_negatives", "swap_word_groups", "eval_batch_size",
              "eval_images", "num_samples",
              optimizer=restricted("optimizer", "adam", "rmsprop"),
              batch_size=checked("batch_size", at_least(2))),
    dict(RUN_DEFAULTS, **PAPER),
    {"cpu": ("paper", CPU_CHANGES), "test": ("cpu", TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
