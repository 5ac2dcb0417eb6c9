"""TIRG defaults: the paper's hyperparameters plus presets for CPU runs and tests.

A preset only fills flags the user did not set on the command line; presets other than PAPER
are overrides of the preset named with them.
"""

from __future__ import annotations

from configs.fields import RUN_DEFAULTS, checked, fields_of, restricted
from configs.schema import Schema, even_pairs

# The paper / google/tirg defaults (CSS): ResNet-18 from scratch, 512-d embeddings,
# SGD momentum 0.9, lr 1e-2, weight decay 1e-6, batch 32, soft triplet loss.
PAPER = dict(
    dataset="css",
    composition="tirg",
    loss="soft_triplet",
    batch_size=32,
    num_iters=160_000,
    learning_rate=1e-2,
    momentum=0.9,
    weight_decay=1e-6,
    lr_decay_every=0,  # no decay on CSS: google/tirg main.py:48-49 (default 9999999) and its README's CSS commands
    lr_decay_factor=0.1,
    embed_dim=512,
    image_width=64,
    image_blocks="2,2,2,2",
    image_stem="imagenet",
    image_pool="avg",
    text_embed_dim=512,
    text_hidden_dim=512,
    text_dropout=0.1,
    max_text_len=16,
    normalize_scale=4.0,
    image_size=64,
    eval_every=10_000,
    log_every=100,
    ckpt_every=2_000,
    train_eval_queries=2_000,
)

# Learns CSS fast on a laptop CPU: a narrow ResNet (one block per stage) with a
# gentle stem that keeps 32x32 maps at stage 1 (CSS objects are 8-16 px wide),
# and a flattened (not averaged) last map, so the embedding knows where objects are.
# Measured here (README): batch_based_classification learns CSS ~3x faster per
# iteration than soft_triplet, so the CPU preset uses it.
CPU_CHANGES = dict(
    loss="batch_based_classification",
    num_iters=3_000,
    lr_decay_every=2_400,
    embed_dim=256,
    image_width=16,
    image_blocks="1,1,1,1",
    image_stem="small",
    image_pool="flatten",
    text_embed_dim=128,
    text_hidden_dim=256,
    eval_every=1_500,
    log_every=100,
    ckpt_every=500,
    train_eval_queries=1_000,
)

# Seconds-long runs for tests.
TEST_CHANGES = dict(
    num_iters=4,
    lr_decay_every=1_000_000,
    embed_dim=16,
    image_width=4,
    image_blocks="1,1,1,1",
    text_embed_dim=8,
    text_hidden_dim=16,
    batch_size=8,
    eval_every=1_000_000,
    log_every=2,
    ckpt_every=2,
    train_eval_queries=16,
)

SCHEMA = Schema(
    "tirg",
    fields_of("composition", "loss", "learning_rate", "momentum", "weight_decay", "lr_decay_every", "lr_decay_factor",
              "embed_dim", "image_width", "image_blocks", "image_stem", "image_pool", "text_embed_dim",
              "text_hidden_dim", "text_dropout", "max_text_len", "normalize_scale", "image_size",
              "train_eval_queries", dataset=restricted("dataset", "css"), batch_size=checked("batch_size", even_pairs())),
    dict(RUN_DEFAULTS, **PAPER),
    {"cpu": ("paper", CPU_CHANGES), "test": ("cpu", TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
