"""TIRG defaults: the paper's hyperparameters plus presets for CPU runs and tests.

A preset only fills flags the user did not set on the command line; presets other than PAPER
are overrides of the preset named with them.
"""

from __future__ import annotations

from configs.fields import RUN_DEFAULTS, checked, fields_of, restricted
from configs.schema import Schema, even_pairs

# The paper = google/tirg's code on CSS (file:line of google/tirg at the mirrored HEAD; README.md:70-71 is the
# CSS command: --dataset=css3d --num_iters=160000 --model=tirg --loss=soft_triplet).
# docs/official_tirg.md lists every remaining difference and how parity was measured.
PAPER = dict(
    dataset="css",
    composition="tirg",  # main.py:45 (--model=tirg)
    loss="soft_triplet",  # main.py:53
    triplet_negatives=3,  # img_text_composition_models.py:80-81 (shuffle, keep 3) + torch_functions.py:80-102
    batch_size=32,  # main.py:50
    num_iters=160_000,  # README.md:70 (main.py:52's default is 210000)
    learning_rate=1e-2,  # main.py:47
    momentum=0.9,  # main.py:173
    weight_decay=1e-6,  # main.py:51
    weight_decay_mode="coupled",  # main.py:172-173: torch.optim.SGD's weight_decay is L2 added to the gradient
    lr_decay_every=0,  # main.py:48-49 (9999999 = never in 160k iterations); rule main.py:271-273 = our staircase
    lr_decay_factor=0.1,  # main.py:273
    embed_dim=512,  # main.py:46
    image_width=64,  # torchvision resnet18 (img_text_composition_models.py:99)
    image_blocks="2,2,2,2",  # resnet18
    image_stem="imagenet",  # resnet18: 7x7/2 conv + 3x3/2 max-pool
    image_pool="avg",  # img_text_composition_models.py:101-106 (adaptive average pool)
    image_padding="torch",  # torchvision's symmetric padding (conv1 pad 3, maxpool pad 1, 3x3 convs pad 1)
    image_input_norm="imagenet",  # main.py:66-70 (ToTensor + Normalize(ImageNet mean, std))
    weight_init="torch",  # PyTorch / torchvision initialisers (torchvision resnet.py, torch.nn defaults)
    image_weights="",  # google/tirg loads ImageNet weights (pretrained=True, :99): give them with --image_weights
    text_embed_dim=512,  # img_text_composition_models.py:111-114 (word_embed_dim = embed_dim)
    text_hidden_dim=512,  # img_text_composition_models.py:111-114 (lstm_hidden_dim = embed_dim)
    text_dropout=0.1,  # text_model.py:82
    max_text_len=16,  # the official has no limit; CSS texts have at most 7 words
    normalize_scale=4.0,  # img_text_composition_models.py:41-42
    image_size=64,  # datasets.py:153 (CSS images are 64x64)
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
# Padding, input normalisation and weight decay stay as the README's CPU numbers were measured with.
CPU_CHANGES = dict(
    loss="batch_based_classification",
    image_padding="same",
    image_input_norm="none",
    weight_init="keras",
    weight_decay_mode="decoupled",
    triplet_negatives=0,
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
              "train_eval_queries", "image_padding", "image_input_norm", "image_weights", "triplet_negatives",
              "weight_decay_mode", "weight_init", dataset=restricted("dataset", "css"), batch_size=checked("batch_size", even_pairs())),
    dict(RUN_DEFAULTS, **PAPER),
    {"cpu": ("paper", CPU_CHANGES), "test": ("cpu", TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
