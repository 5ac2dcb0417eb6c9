"""GeNeVA-GAN defaults: the official Maluuba/GeNeVA i-CLEVR settings, a CPU preset on CSS edit sequences, a test preset.

PAPER is example_args/iclevr-d-subtract.args of Maluuba/GeNeVA (file:line at its HEAD) on this project's CSS edit
sequences: batch 32 (:5), 200 epochs (:7; 25,000 iterations of the default 4,000 train sequences), generator Adam
lr 1e-4, betas (0, 0.9) (:14-16), discriminator lr 4e-4, same betas (:19-21), hinge loss (:26), projection
discriminator (:25) with spectral norm (:48) that subtracts the previous image's features (:47, use_fd :57), leaky
ReLU (:28, PyTorch's slope 0.01), turn GRU of 1,024 over 1,024-d projected instructions (:29-30, :42) with Adam lr
3e-4 (:32), instruction GRU 1,024-d (:10, :36) lr 3e-3 (:34), feature encoders lr 6e-3 (:35), gradient clipping
50 (:45), R1 penalty 1 (:37), conditioning augmentation 256-d (:11) with KL weight 1 (:38), noise 100 (:12),
auxiliary object detector weight 5 (:41), previous-image encoder convs to 512 channels (:43, :46) concatenated
into the generator (:54, use_fg :56), wrong/fake ratio 0.5 (:53), teacher forcing (:55). The generator's and
discriminator's channels are geneva/models/networks/generator_factory.py:44-82 and discriminator_factory.py:41-75
(128 x 128 images), the image encoder geneva/models/image_encoder.py:37-48.

Not carried over (docs/geneva.md): GloVe vectors (word embeddings are learned: nothing is downloaded); one D and
one G update per batch of sequences from one forward pass over all turns (the official code steps D and G at
every turn and the recurrent parts at the end of the sequence); the auxiliary target of D is the set of object
types in the image, for D and G alike (the official D uses the objects added at that turn).

CPU: 32 px, narrow networks, a larger learning rate, the previous image joined at 16 x 16, an L1 term to the target
canvas (``l1_coef``, not in GeNeVA) and the instruction encoders also trained by the generator's losses, so a
run of minutes learns to keep the canvas and apply the edit. Measured in docs/geneva.md.
"""

from __future__ import annotations

from configs.fields import RUN_DEFAULTS, fields_of, restricted
from configs.schema import Schema

PAPER = dict(
    dataset="css_edits",
    image_size=128,
    batch_size=32,
    num_iters=25_000,
    learning_rate=1e-4,
    d_learning_rate=4e-4,
    beta1=0.0,
    beta2=0.9,
    rnn_learning_rate=3e-4,
    sentence_learning_rate=3e-3,
    encoder_learning_rate=6e-3,
    rnn_grad_clip=50.0,
    word_dim=300,
    sentence_dim=1024,
    hidden_dim=1024,
    max_text_len=16,
    z_dim=100,
    c_dim=256,
    kl_coef=1.0,
    generator_dims="1024,1024,512,256,128,64",
    image_encoder_dims="64,128,512",
    discriminator_dims="64,128,256,512,1024,1024",
    d_fusion_block=3,
    spectral_norm=True,
    gp_weight=1.0,
    aux_weight=5.0,
    wrong_fake_ratio=0.5,
    l1_coef=0.0,
    text_grads_from="discriminator",
    eval_classifier="runs/css_classifier",
    baseline_workdir="runs/stackgan_tirg",
    eval_batch_size=32,
    eval_images=500,
    num_samples=8,
    log_every=100,
    eval_every=5_000,
    ckpt_every=500,  # save_rate (:52)
    **RUN_DEFAULTS,
)

CPU_CHANGES = dict(
    image_size=32,
    batch_size=16,
    num_iters=1_200,
    learning_rate=5e-4,
    d_learning_rate=5e-4,
    rnn_learning_rate=1e-3,
    encoder_learning_rate=1e-3,
    word_dim=32,
    sentence_dim=64,
    hidden_dim=64,
    max_text_len=8,
    z_dim=16,
    c_dim=16,
    generator_dims="64,64,32,16",
    image_encoder_dims="32",
    discriminator_dims="16,32,64,64",
    d_fusion_block=2,
    l1_coef=10.0,
    text_grads_from="both",
    eval_batch_size=50,
    log_every=100,
    eval_every=600,
    ckpt_every=200,
)

TEST_CHANGES = dict(
    image_size=16,
    max_text_len=6,
    batch_size=4,
    num_iters=2,
    word_dim=8,
    sentence_dim=8,
    hidden_dim=8,
    z_dim=4,
    c_dim=4,
    generator_dims="16,16,8",
    image_encoder_dims="8",
    discriminator_dims="8,16,16",
    d_fusion_block=1,
    eval_batch_size=4,
    eval_images=8,
    num_samples=2,
    log_every=1,
    eval_every=1_000_000,
    ckpt_every=1_000_000,
)

SCHEMA = Schema(
    "geneva",
    fields_of("image_size", "learning_rate", "d_learning_rate", "beta1", "beta2", "rnn_learning_rate",
              "sentence_learning_rate", "encoder_learning_rate", "rnn_grad_clip", "word_dim", "sentence_dim",
              "hidden_dim", "max_text_len", "z_dim", "c_dim", "kl_coef", "generator_dims", "image_encoder_dims",
              "discriminator_dims", "d_fusion_block", "spectral_norm", "gp_weight", "aux_weight", "wrong_fake_ratio",
              "l1_coef", "text_grads_from", "eval_classifier", "baseline_workdir", "eval_batch_size", "eval_images",
              "num_samples", dataset=restricted("dataset", "css_edits")),
    PAPER,
    {"cpu": ("paper", CPU_CHANGES), "test": ("cpu", TEST_CHANGES)},
)
PRESETS = SCHEMA.presets
PAPER, CPU, TEST = PRESETS["paper"], PRESETS["cpu"], PRESETS["test"]
DEFAULT_PRESET = SCHEMA.default_preset
