"""SRCNN defaults: the paper's hyperparameters plus presets for CPU runs and tests.

A preset only fills flags the user did not set on the command line; presets other than PAPER
are overrides of the preset named with them.

PAPER follows Dong et al., "Image Super-Resolution Using Deep Convolutional Networks" (TPAMI 2016; ECCV
2014): the 9-1-5 network with n1=64, n2=32 filters; weights drawn from N(0, 0.001^2), biases 0
(``init="paper"``); direct image regression (``residual=False``); plain SGD with momentum 0.9 and learning
rate 1e-4 for the first two layers, 1e-5 for the last (``last_layer_lr_scale=0.1``), no decay; MSE loss;
low-resolution inputs made by blurring/downsampling and bicubic upscaling back (MATLAB imresize, i.e.
antialiased bicubic: ``downscale_method="bicubic"``). What differs, and why:

- scale 4, not the paper's headline 3 (it also reports 2 and 4): this model upscales GAN samples
  64 -> 256 (and 32 -> 128 on CPU);
- RGB rather than the Y channel (the paper's Section 4.5 trains on RGB too): we make colour images;
- whole ``image_size`` images (``patch_size=0``) with 'same' padding instead of the paper's random
  33x33 sub-images with 'valid' convolutions (``patch_size=33`` restores the sub-image sampling);
- data: the text-to-image records (CUB at 256 px here) instead of the 91-image set / ImageNet;
- batch 128 as in the authors' released Caffe training files (the paper's text gives none); num_iters is
  a budget, not the paper's (its convergence curves span hundreds of millions of sub-image backprops).

CPU is our recipe for a laptop: residual learning on the bicubic input, He init with a near-zero last
layer (the model starts at bicubic quality), Adam, a narrower net (n1=32, n2=16, the paper's Section
4.3 "fewer filters" setting), random 64 px patches of the 128 px scenes, and 32 -> 128 on captioned CSS,
the x4 of the CPU GAN's 32 px samples.
"""

from __future__ import annotations

from configs.fields import RUN_DEFAULTS, fields_of, restricted
from configs.schema import Schema

PAPER = dict(
    dataset="cub",
    image_size=256,  # the HIGH-resolution size: trains image_size / scale -> image_size
    scale=4,
    n1=64,
    n2=32,
    f1=9,
    f2=1,
    f3=5,
    residual=False,  # True: predict HR - bicubic and add it to the input (trains much faster)
    init="paper",  # paper: N(0, 0.001^2) everywhere; he: he_normal hidden layers, N(0, 0.001^2) last
    downscale_method="bicubic",  # bicubic | area, both antialiased
    hr_sampling="auto",  # native | crop | auto (see t2i_tf/tasks/srcnn.py)
    patch_size=0,  # 0: whole images; else a random patch_size crop of HR and input (paper: 33)
    random_flip=True,  # captions play no part, so flips are fine even for CSS
    shuffle_buffer=256,  # decoded images (hr_sampling=native)
    batch_size=128,
    num_iters=100_000,
    optimizer="sgd",  # sgd (the paper) | adam
    learning_rate=1e-4,  # first two layers
    last_layer_lr_scale=0.1,  # the last layer's rate = learning_rate * this (paper: 1e-5 / 1e-4)
    momentum=0.9,  # sgd
    beta1=0.9,  # adam
    beta2=0.999,
    lr_decay=1.0,
    lr_decay_every=0,  # steps; 0: constant
    eval_batches=4,
    eval_batch_size=32,
    num_samples=8,
    upscale_batch_size=16,
    eval_every=5_000,
    log_every=100,
    ckpt_every=5_000,
)

# Captioned CSS at 128 px on a 2-core CPU in a few minutes: x4 (32 -> 128). Measured (2 shared cores, 6m12s
# for 800 steps): 128 test-split images, PSNR 28.69 dB vs bicubic 24.81 dB (+3.88; +2.46 at step 200).
CPU_CHANGES = dict(
    dataset="css_captions",
    image_size=128,
    n1=32,
    n2=16,
    residual=True,
    init="he",
    patch_size=64,  # random 64 px windows of the 128 px scenes: 4x cheaper steps, still mostly edges
    batch_size=16,
    num_iters=800,
    optimizer="adam",
    learning_rate=1e-3,
    last_layer_lr_scale=1.0,
    lr_decay=0.5,
    lr_decay_every=400,
    eval_batches=4,
    eval_batch_size=32,
    num_samples=6,
    eval_every=200,
    log_every=50,
    ckpt_every=200,
)

# Seconds-long runs for tests.
TEST_CHANGES = dict(
    image_size=16,
    n1=8,
    n2=4,
    patch_size=0,
    batch_size=4,
    num_iters=2,
    shuffle_buffer=16,
    eval_batches=2,
    eval_batch_size=8,
    num_samples=4,
    upscale_batch_size=4,
    eval_every=1_000_000,
    log_every=1,
    ckpt_every=1_000_000,
)

SCHEMA = Schema(
    "srcnn",
    fields_of("image_size", "scale", "n1", "n2", "f1", "f2", "f3", "residual", "init", "downscale_method",
              "hr_sampling", "patch_size", "random_flip", "shuffle_buffer", "learning_rate", "last_layer_lr_scale",
              "momentum", "beta1", "beta2", "lr_decay", "lr_decay_every", "eval_batches", "eval_batch_size",
              "num_samples", "upscale_batch_size", optimizer=restricted("optimizer", "adam", "sgd")),
    dict(RUN_DEFAULTS, **PAPER),
    {"cpu": ("paper", CPU_CHANGES), "test": ("cpu", TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
