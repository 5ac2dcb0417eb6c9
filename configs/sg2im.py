"""sg2im defaults: the official google/sg2im training defaults, a CPU preset on captioned CSS and a test preset.

PAPER is scripts/train.py's argparse defaults (the settings of the released COCO / VG models at 64 x 64; file:line
of google/sg2im at its HEAD): batch 32 (train.py:51), 1,000,000 iterations (:52), Adam lr 1e-4 with torch's
default betas (:53, :426), 64 x 64 images (:59), mask size 16 (:95), embeddings 128 (:96), graph convolutions
128-d with 512 hidden, 5 layers, no MLP normalisation (:97-100), refinement dims 1024,512,256,128,64 (:101)
with batch norm and leaky ReLU 0.2 (:102-103), 32 layout noise channels (:104); losses: mask 0 (:108),
L1 pixel 1.0 (:109), box 10 (:110) as MSE (:399, the paper writes L1), GAN weight 0.01 (:114) times 1 for each
discriminator (:125, :131), auxiliary classification 0.1 (:126); discriminators with batch norm, valid padding,
leaky ReLU 0.2 (:117-119), both C4-64-2,C4-128-2,C4-256-2 (:122-123, :129-130), object crops 32 px (:124); the
object discriminator's fully connected layer is 1024 (sg2im/discriminators.py:62). Graph convolutions average
(sg2im/model.py:32). The box net ends in a ReLU (``box_net_final_relu``: build_mlp's default final nonlinearity,
sg2im/model.py:76-78, sg2im/layers.py:216-229). These are the sizes of the released 64 px models too: their
``model_kwargs`` are train.py's defaults (build_model, train.py:173-186; README "Pretrained Models"), which an
imported checkpoint reproduces (docs/sg2im.md "Parity with google/sg2im"). VG keeps at most 10 objects per image
(train.py:71) and COCO 8 (sg2im/data/coco.py:37); CSS scenes have at most 9 (one per cell), plus the image node.

Not carried over: ``eval_mode_after`` (train.py:56: the generator's BatchNorms switch to running statistics
after 100,000 iterations and Adam restarts); training here keeps batch statistics throughout and uses the
running ones for evaluation, generation and export. The ``paper`` preset reads captioned CSS: a Visual Genome /
COCO-Stuff scene-graph converter is not written yet (docs/sg2im.md).

CPU: 32 px captioned CSS, narrow networks; the mask loss is on (weight 1, CSS masks are the shapes and a
class of their own), the learning rate higher (5e-4) for a run of minutes, and 20% of the place triples /
relations are dropped in training, so graphs that leave places or relations out (JSON graphs) are not new to it.
Its box net is linear (``box_net_final_relu=False``): with the official final ReLU a box coordinate whose
pre-activation goes negative for every graph gets no gradient again and stays 0; the CSS boxes have x0 / y0 near 0
for the left / top cells, exactly where that happens.
Measured (docs/sg2im.md): 1,000 iterations in 6 min 47 s on 2 shared cores; object F1 0.210 of the generated
images (CSS classifier) vs 0.032 for the same generator drawing another scene's graph; box centres in the right
cell 97.8%.
"""

from __future__ import annotations

from configs.fields import RUN_DEFAULTS, checked, fields_of, restricted
from configs.schema import Schema, at_least

PAPER = dict(
    dataset="css_captions",
    image_size=64,
    batch_size=32,
    num_iters=1_000_000,
    learning_rate=1e-4,
    beta1=0.9,
    beta2=0.999,
    object_embedding_dim=128,
    gconv_dim=128,
    gconv_hidden_dim=512,
    gconv_layers=5,
    gconv_pooling="avg",
    box_net_final_relu=True,  # model.py:76-78 build_mlp(..., final_nonlinearity=True by default, layers.py:217)
    refinement_dims="1024,512,256,128,64",
    crn_normalization="batch",
    layout_noise_dim=32,
    mask_size=16,
    d_img_arch="C4-64-2,C4-128-2,C4-256-2",
    d_obj_arch="C4-64-2,C4-128-2,C4-256-2",
    d_obj_dim=1024,
    d_normalization="batch",
    crop_size=32,
    box_loss="mse",
    box_loss_weight=10.0,
    mask_loss_weight=0.0,
    pixel_loss_weight=1.0,
    gan_loss_weight=0.01,
    d_img_weight=1.0,
    d_obj_weight=1.0,
    ac_loss_weight=0.1,
    triple_dropout=0.0,  # not in the official code: its graphs are the datasets' (COCO: one random relation per object)
    eval_graph="true",
    eval_batch_size=64,
    eval_images=1024,  # train.py:61 num_val_samples
    num_samples=16,
    log_every=10,  # train.py:134
    eval_every=10_000,  # train.py:136 (checkpoint_every: the official check_model runs then)
    ckpt_every=10_000,
)

CPU_CHANGES = dict(
    image_size=32,
    num_iters=1_000,
    learning_rate=5e-4,
    object_embedding_dim=64,
    gconv_dim=64,
    gconv_hidden_dim=128,
    gconv_layers=3,
    box_net_final_relu=False,  # linear box coordinates: a final ReLU can zero one for good (docstring)
    refinement_dims="128,64,32,16",
    layout_noise_dim=8,
    mask_size=8,
    d_img_arch="C4-32-2,C4-64-2",
    d_obj_arch="C3-32-2,C3-64-2",
    d_obj_dim=128,
    crop_size=16,
    mask_loss_weight=1.0,
    triple_dropout=0.2,
    eval_images=1000,
    log_every=100,
    eval_every=500,
    ckpt_every=500,
)

TEST_CHANGES = dict(
    image_size=16,
    batch_size=4,
    num_iters=2,
    object_embedding_dim=16,
    gconv_dim=16,
    gconv_hidden_dim=16,
    gconv_layers=2,
    refinement_dims="16,8",
    layout_noise_dim=2,
    mask_size=4,
    d_img_arch="C3-8-2,C3-16-2",
    d_obj_arch="C3-8-2,C3-16-2",
    d_obj_dim=16,
    crop_size=8,
    eval_images=16,
    eval_batch_size=8,
    num_samples=4,
    log_every=1,
    eval_every=1_000_000,
    ckpt_every=1_000_000,
)

SCHEMA = Schema(
    "sg2im",
    fields_of("image_size", "learning_rate", "beta1", "beta2", "object_embedding_dim", "gconv_dim",
              "gconv_hidden_dim", "gconv_layers", "gconv_pooling", "refinement_dims", "crn_normalization",
              "layout_noise_dim", "mask_size", "d_img_arch", "d_obj_arch", "d_obj_dim", "d_normalization",
              "crop_size", "box_loss", "box_loss_weight", "mask_loss_weight", "pixel_loss_weight", "gan_loss_weight",
              "d_img_weight", "d_obj_weight", "ac_loss_weight", "triple_dropout", "eval_graph", "eval_batch_size",
              "eval_images",
              "num_samples", "box_net_final_relu",
              dataset=restricted("dataset", "css_captions"),
              batch_size=checked("batch_size", at_least(2))),
    dict(RUN_DEFAULTS, **PAPER),
    {"cpu": ("paper", CPU_CHANGES), "test": ("cpu", TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
