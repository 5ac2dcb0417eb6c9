r"""DAMSM pre-training defaults: the paper's hyperparameters plus presets for CPU runs and tests.

PAPER follows taoxugit/AttnGAN's code/cfg/DAMSM/bird.yml and code/pretrain_DAMSM.py: images at 299 through a
frozen ImageNet Inception-v3 (torchvision's network, reproduced exactly: t2i_tf/models/inception_v3.py; regions
from Mixed_6e, 17x17), 256-d features (a BiLSTM of 2 x 128), 300-d word embeddings, 18 words per caption, batch
48, Adam lr 2e-3 beta1 0.5, RNN gradients clipped to norm 0.25, gamma1 4, gamma2 5, gamma3 10. An epoch of CUB's
8,855 train images is floor(8855 / 48) = 184 iterations (DataLoader drop_last=True, pretrain_DAMSM.py:247-248).
After each epoch the lr is multiplied by 0.98 while it is above lr0 / 10 (pretrain_DAMSM.py:283-284: 114 decays,
then 0.0999 lr0) and Adam is re-created (pretrain_DAMSM.py:270: moments and bias correction restart), so
``lr_decay_every`` = ``optimizer_reset_every`` = 184. bird.yml's MAX_EPOCH is 600, but AttnGAN loads the
epoch-200 snapshot (cfg/bird_attn2.yml NET_E text_encoder200.pth, saved after epoch index 200 =
201 epochs, pretrain_DAMSM.py:286-291): 201 x 184 = 36,984 iterations, the encoders the AttnGAN preset expects.
The frozen Inception's BatchNorms run in training mode (batch statistics) during pre-training
(``cnn_model.train()``, pretrain_DAMSM.py:51): ``backbone_batch_stats``. The Inception weights are read from
``inception_weights`` (torchvision's inception_v3_google-*.pth; nothing is downloaded).

Known remaining differences: Keras Adam's epsilon (1e-7, added to sqrt(v) before the bias correction of alpha)
vs torch's 1e-8 after it; Keras BatchNorm updates its running variance with the biased batch variance (torch
unbiased); captions longer than 18 words are truncated (the reference keeps a random ordered subset of 18,
datasets.py get_caption); the tokenizer strips punctuation where the reference splits on ``\w+``.
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
    num_iters=36_984,  # 201 epochs (the text_encoder200.pth AttnGAN loads, cfg/bird_attn2.yml) x 184
    learning_rate=2e-3,  # cfg/DAMSM/bird.yml ENCODER_LR
    lr_decay=0.98,  # pretrain_DAMSM.py:283-284
    lr_decay_every=184,  # one epoch: floor(8855 / 48), drop_last=True (pretrain_DAMSM.py:247-248)
    lr_decay_until=0.1,  # pretrain_DAMSM.py:283: while lr > ENCODER_LR / 10
    optimizer_reset_every=184,  # pretrain_DAMSM.py:270: optim.Adam re-created every epoch
    backbone_batch_stats=True,  # pretrain_DAMSM.py:51: cnn_model.train() (BN layers of the frozen Inception)
    beta1=0.5,
    rnn_grad_clip=0.25,
    gamma1=4.0,
    gamma2=5.0,
    gamma3=10.0,
    relevance="code",  # AttnGAN code/miscc/losses.py:106-108: log sum exp(gamma2 cos), no 1/gamma2 (paper: with it)
    swap_negatives=0,  # not in AttnGAN: swapped-word hard negative captions (t2i_tf/data/word_swaps.py)
    swap_word_groups="css",
    sentence_encoder="last_state",  # AttnGAN code/model.py RNN_ENCODER: the BiLSTM's final hidden states
    slot_grid=3,  # sentence_encoder=word_slots only
    slot_dim=32,  # sentence_encoder=word_slots only
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
    lr_decay=1.0,
    lr_decay_every=0,
    lr_decay_until=0.0,
    optimizer_reset_every=0,
    backbone_batch_stats=False,
    width=32,
    text_embed_dim=64,
    hidden_dim=64,
    max_text_len=56,  # captioned CSS captions run to 51 tokens; at 32, 29% lost their last objects (R-precision
    # on real held-out images 0.763 at 56 tokens, README)
    # The sentence as a layout (sentence_encoder=word_slots, t2i_tf/models/damsm.py): real R-precision on held-out
    # images 0.983 at step 500, where the BiLSTM's final states gave 0.883 at 500 and 0.763 at 1,000: those code
    # colour-shape pairs jointly and the held-out split pairs them anew (docs/generator_quality.md). On CUB / Flowers
    # / anime records the command line turns it back into last_state (t2i_tf/cli.py CSS_LAYOUT_SETTINGS).
    sentence_encoder="word_slots",
    batch_size=32,
    num_iters=1_000,
    random_flip=False,
    random_crop=False,
    eval_every=500,
    ckpt_every=500,
)

TEST_CHANGES = dict(
    sentence_encoder="last_state",  # AttnGAN's tests need its feature sizes; word_slots has its own tests
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

# Anime faces from tags (t2i_tf/datasets/anime, docs/anime.md), as deep_t2i trains its DAMSM (cwza/deep_t2i
# nbs/20a_Train_Anime_Heads_DAMSM.ipynb and deep_t2i/trainer_DAMSM.py): 64 px faces through the frozen Inception-v3
# (its CnnEncoder, resized to 229/299; AnimeHeadsTrainer.after_batch_tfm flips only, no crop), emb_sz 10 (a 10-d
# text/image space: 2 x 5 here), dropout 0.5, batch 48, Adam lr 2e-3 betas (0.5, 0.999) with ExponentialLR 0.98
# per epoch while above lr0/10 and no re-created optimizer, RNN gradients clipped to 0.25, gamma1/2/3 4/5/10, 30
# epochs of 765 iterations (the notebook's printed step_per_epoch: 36,740 images, valid_pct=0, drop_last). Tags are
# 4 words ("aqua hair aqua eyes"; deep_t2i's own tokenizer makes them 2 tag tokens): 8 tokens leave room for more
# tags. Differences: a 1-layer BiLSTM (deep_t2i: a 2-layer BiGRU); pairs with the same tags are masked as negatives
# (deep_t2i contrasts every other image of the batch).
ANIME_CHANGES = dict(
    dataset="anime",
    image_size=64,
    text_embed_dim=10,
    hidden_dim=5,
    text_dropout=0.5,
    max_text_len=8,
    batch_size=48,
    num_iters=22_950,  # 30 epochs x 765 (nbs/20a: trainer.train(step_per_epoch*30))
    learning_rate=2e-3,
    lr_decay=0.98,
    lr_decay_every=765,
    lr_decay_until=0.1,
    optimizer_reset_every=0,
    backbone_batch_stats=False,
    random_flip=True,
    random_crop=False,
    eval_every=765 * 5,
    ckpt_every=765,
)

# The anime preset on a laptop CPU (docs/anime.md: 2,000 generated faces, 1,602 for training): the small CNN image
# encoder trained from scratch at 64 px, a wider text space than deep_t2i's 10-d one, deep_t2i's dropout and its
# per-epoch decay (an epoch: 50 iterations of 32). Without the decay, Adam at 2e-3 blew the loss up from 0.05 to 3
# after 1,400 iterations (real R-precision 1.00 at 1,000, 0.12 at 1,500).
ANIME_CPU_CHANGES = dict(
    backbone="cnn",
    width=32,
    text_embed_dim=32,
    hidden_dim=32,
    batch_size=32,
    num_iters=600,
    lr_decay_every=50,
    eval_batch_size=100,
    eval_images=400,
    eval_every=200,
    ckpt_every=200,
)

ANIME_TEST_CHANGES = dict(TEST_CHANGES, image_size=16)

SCHEMA = Schema(
    "damsm",
    fields_of("image_size", "backbone", "inception_weights", "backbone_batch_stats", "lr_decay", "lr_decay_every",
              "lr_decay_until", "optimizer_reset_every", "width", "hidden_dim", "text_embed_dim",
              "text_dropout", "max_text_len", "learning_rate", "beta1", "rnn_grad_clip", "gamma1", "gamma2", "gamma3",
              "relevance", "swap_negatives", "swap_word_groups", "sentence_encoder", "slot_grid", "slot_dim",
              "random_flip", "random_crop", "eval_batch_size",
              "eval_images"),
    dict(RUN_DEFAULTS, **PAPER),
    {"cpu": ("paper", CPU_CHANGES), "test": ("cpu", TEST_CHANGES), "anime": ("paper", ANIME_CHANGES),
     "anime_cpu": ("anime", ANIME_CPU_CHANGES), "anime_test": ("anime_cpu", ANIME_TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
