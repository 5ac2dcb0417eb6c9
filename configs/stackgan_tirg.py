"""StackGAN conditioned on TIRG composed features (``--model=stackgan_tirg``): presets.

The generator and discriminator are StackGAN's Stage-I (configs/stackgan.py has the paper's values); the
condition is a frozen TIRG run's composed feature (512-d in TIRG's presets), so ``tirg_workdir`` must hold a
trained ``--model=tirg`` run whose records (CSS, 64 px) this run reads too.
"""

from __future__ import annotations

from configs import stackgan

PAPER = dict(
    stackgan.PAPER,
    dataset="css",
    tirg_workdir="runs/tirg_tirg",
    image_size=64,
    random_flip=False,
    random_crop=False,
)

# CPU: 32 px targets (the 64 px CSS scenes area-averaged), narrow nets.
CPU = dict(
    stackgan.CPU,
    dataset="css",
    tirg_workdir="runs/tirg_tirg",
    image_size=32,
    random_crop=False,
    num_iters=1_500,
)

TEST = dict(
    stackgan.TEST,
    dataset="css",
    tirg_workdir="runs/tirg_tirg",
    image_size=16,
    random_crop=False,
)

PRESETS = {"paper": PAPER, "cpu": CPU, "test": TEST}
DEFAULT_PRESET = "cpu"
