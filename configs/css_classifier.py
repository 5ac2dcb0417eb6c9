"""CSS semantic classifier defaults (t2i_tf/tasks/css_classifier.py).

There is no paper for this model: it is the project's own measuring instrument for CSS text-to-image
and image-editing results (per-cell accuracy, GeNeVA-style object F1, a domain FID), so PAPER is the CPU
preset. CPU trains on the embedded captioned CSS (64 px) in a few minutes on 2 cores.
"""

from __future__ import annotations

from configs.fields import RUN_DEFAULTS, checked, fields_of
from configs.schema import Schema, in_range

PAPER = dict(  # no paper: this is also the cpu preset
    dataset="css_captions",
    image_size=64,  # the model's input size; other sizes are resized to it
    width=16,  # channels of the first conv (then 2x, 4x)
    hidden_dim=128,  # the shared per-cell MLP
    batch_size=32,
    num_iters=1_000,
    learning_rate=3e-3,  # Adam, cosine-decayed to lr_min_ratio * learning_rate at num_iters
    lr_min_ratio=0.01,
    random_crop=False,  # True: t2i_dataset's 76/64 resize + random crop (every object stays in its cell)
    rescale_prob=0.5,  # this fraction of train batches is shrunk to a random size in [rescale_min_size, image_size]
    rescale_min_size=32,  # and resized back: the classifier also reads 32 px GAN images resized to 64
    eval_batch_size=256,
    eval_max_examples=0,  # 0 = the whole test split
    log_every=100,
    eval_every=500,
    ckpt_every=500,
)


# Seconds-long runs for tests.
TEST_CHANGES = dict(
    image_size=16,
    width=4,
    hidden_dim=16,
    batch_size=8,
    num_iters=2,
    eval_batch_size=16,
    eval_max_examples=32,
    log_every=1,
    eval_every=1_000_000,
    ckpt_every=1_000_000,
)

SCHEMA = Schema(
    "css_classifier",
    fields_of("width", "hidden_dim", "learning_rate", "lr_min_ratio", "random_crop", "rescale_prob",
              "eval_batch_size", "eval_max_examples",
              image_size=checked("image_size", in_range(16, 256)),
              rescale_min_size=checked("rescale_min_size", in_range(16, 256))),
    dict(RUN_DEFAULTS, **PAPER),
    {"cpu": ("paper", {}), "test": ("cpu", TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
