"""StackGAN conditioned on TIRG composed features (``--model=stackgan_tirg``): presets.

The generator and discriminator are StackGAN's Stage-I (configs/stackgan.py has the paper's values); the
condition is a frozen TIRG run's composed feature (512-d in TIRG's presets), so ``tirg_workdir`` must hold a
trained ``--model=tirg`` run whose records (CSS, 64 px) this run reads too. ``source_skip`` (the cpu preset; off in
the paper preset, which stays StackGAN on the composed feature alone) lets the generator read the source image too.
"""

from __future__ import annotations

from configs import stackgan
from configs.fields import RUN_DEFAULTS, checked, fields_of, restricted
from configs.schema import Schema, even_pairs

# StackGAN Stage-I's keys, less those of text and of Stage-II (the condition is TIRG's, the data CSS).
KEYS = ("dataset", "tirg_workdir", "source_skip", "edit_l1", "image_size", "batch_size", "num_iters", "optimizer", "learning_rate", "beta1",
        "beta2", "lr_decay", "lr_decay_every", "z_dim", "c_dim", "ca_activation", "ngf", "ndf", "kl_coef", "cls", "label_smoothing",
        "l1_loss", "l1_coef", "eval_batch_size", "eval_images", "num_samples", "eval_every", "log_every", "ckpt_every",
        *RUN_DEFAULTS)


def _own(preset: dict) -> dict:
    return {k: v for k, v in preset.items() if k in KEYS}


PAPER = dict(_own(stackgan.PAPER), dataset="css", tirg_workdir="runs/tirg", source_skip=False, edit_l1=0.0,
             image_size=64)

# CPU: 32 px targets (the 64 px CSS scenes area-averaged), narrow nets; the generator reads the source image too
# (U-Net skips and a mask composite: t2i_tf/models/stackgan_tirg.py) and an extra L1 on the edited pixels weighs the
# one changed object as much as the whole image. Measured (README "StackGAN on TIRG queries"), 3,000 its in 11.5 min
# on 2 shared cores: held-out object F1 0.722 (copying the source: 0.834), on the edited cells 0.140 (at 1,500 its
# 0.630 / 0.117; without edit_l1 at 1,500 its 0.817 / 0.019: a copy that follows only "remove").
CPU_CHANGES = dict(_own(stackgan.CPU), dataset="css", image_size=32, num_iters=3_000, source_skip=True, edit_l1=1.0)

TEST_CHANGES = dict(_own(stackgan.TEST), dataset="css", image_size=16)

SCHEMA = Schema(
    "stackgan_tirg",
    fields_of(*(k for k in KEYS if k not in RUN_DEFAULTS), dataset=restricted("dataset", "css"),
              optimizer=restricted("optimizer", "adam", "rmsprop"), batch_size=checked("batch_size", even_pairs())),
    PAPER,
    {"cpu": ("paper", CPU_CHANGES), "test": ("cpu", TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
