"""StackGAN (Zhang et al., ICCV 2017) as a Task for the one Trainer: Stage-I and Stage-II, trained in turn.

- ``stage=1``: text -> conditioning augmentation (CA) -> Stage-I image at ``image_size`` (64 in the paper).
- ``stage=2``: the trained Stage-I run (``stage1_workdir``, frozen) draws its image from the same text
  and noise; the Stage-II generator (its own CA) refines it to ``stage2_size`` (256 in the paper).

Losses as the paper: D is matching-aware (``real/right + (wrong/right + fake/right) / 2``) and sees the
text through the CA mean (``mu``, not back-propagated into G); Stage-II's D adds an unconditional score,
averaged with the conditional one for real and fake images; G gets the conditional (+ unconditional) BCE
plus ``kl_coef`` * KL(N(mu, sigma) || N(0, I)).

Text conditioning, data, evaluation and export come from :class:`GanClsTask` (the same record format, a
co-trained BiLSTM or precomputed embeddings); Stage-II reuses Stage-I's text encoder, frozen.
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from t2i_tf.errors import UserError
from t2i_tf.losses import gan as gan_losses
from t2i_tf.losses.kl import kl_divergence
from t2i_tf.models.stackgan import (StageIDiscriminator, StageIGenerator, StageIIDiscriminator, StageIIGenerator,
                                    check_stage_sizes)
from t2i_tf.tasks.conditioners import SentenceEncoderConditioner
from t2i_tf.tasks.gan_cls import GanClsTask
from t2i_tf.runs.restore import chained_run_config


class StackGanTask(GanClsTask):
    """Stage-I or Stage-II StackGAN on text-to-image records."""

    name = "stackgan"
    fixed_settings = {"gan_type": "gan", "interp": False, "feature_matching": False, "d_norm": "batch", "diter": 1}
    architecture_keys = ("stage", "image_size", "stage2_size", "ngf", "ndf", "z_dim", "c_dim", "ca_activation", "num_residual",
                         "text_encoder", "text_dim", "text_embed_dim", "text_hidden_dim", "encoder_width")

    @classmethod
    def default_workdir(cls, config: dict[str, Any]) -> str:
        """runs/stackgan_stage1 / runs/stackgan_stage2."""
        return f"runs/stackgan_stage{config['stage']}"

    @classmethod
    def records_image_size(cls, config: dict[str, Any]) -> int:
        """Stage-II trains on ``stage2_size`` images."""
        return int(config["stage2_size"]) if int(config.get("stage", 1)) == 2 else int(config["image_size"])

    def prepare(self, workdir: str) -> None:
        c = self.config
        self.stage = int(self.setting("stage"))
        self.stage1_config: dict[str, Any] | None = None
        if self.stage == 2:
            self.stage1_config = chained_run_config(c.get("stage1_workdir") or "", "stackgan", "stage1_workdir",
                                                    "Stage-I", "--stage=2", copy_vocabulary_to=workdir)
            if int(self.stage1_config.get("stage", 1)) != 1:
                raise UserError(f"--stage1_workdir={c['stage1_workdir']} is a Stage-{self.stage1_config['stage']} run, "
                                "not Stage-I")
            # Stage-II sees exactly Stage-I's text conditioning: its encoder kind, vocabulary and sizes.
            for key in ("image_size", "text_encoder", "max_text_len", "text_dim", "text_embed_dim", "text_hidden_dim",
                        "encoder_width", "z_dim"):
                c[key] = self.stage1_config[key]
        super().prepare(workdir)
        self.stage1_size = int(c["image_size"])
        try:
            check_stage_sizes(self.stage1_size, int(c["stage2_size"]) if self.stage == 2 else None)
        except ValueError as e:
            raise UserError(f"--image_size / --stage2_size: {e}") from None
        if self.stage == 2:
            self.image_size = int(c["stage2_size"])

    def trains_text_encoder(self) -> bool:
        """Stage-II conditions on Stage-I's BiLSTM, frozen."""
        return self.stage != 2

    # ------------------------------------------------------------------ models
    def _build_gan(self) -> None:
        c = self.config
        cd, emb = int(c["c_dim"]), self.cond_dim
        if self.stage == 1:
            self.generator = StageIGenerator(self.image_size, int(c["ngf"]), int(c["z_dim"]), cd,
                                             ca_activation=c["ca_activation"], name="generator")
            self.discriminator = StageIDiscriminator(self.image_size, int(c["ndf"]), cd, name="discriminator")
            self.generator((tf.zeros([2, int(c["z_dim"])]), tf.zeros([2, emb]), None))
        else:
            from t2i_tf.runs.restore import restore_task

            self.stage1, self.stage1_step = restore_task("stackgan", c["stage1_workdir"], strategy=self.strategy,
                                                         data_dir=c["data_dir"])
            if isinstance(self.conditioner, SentenceEncoderConditioner):
                self.conditioner.share(self.stage1.conditioner)  # Stage-I's encoders, frozen
            self.generator = StageIIGenerator(self.stage1_size, self.image_size, int(c["ngf"]), cd,
                                              int(c["num_residual"]), ca_activation=c["ca_activation"],
                                              name="generator")
            self.discriminator = StageIIDiscriminator(self.image_size, int(c["ndf"]), cd, name="discriminator")
            s1 = self.stage1_size
            self.generator((tf.zeros([2, s1, s1, 3]), tf.zeros([2, emb]), None))
        s = self.image_size
        self.discriminator((tf.zeros([2, s, s, 3]), tf.zeros([2, cd])))

    def serving_trackables(self) -> dict[str, Any]:
        return {"stage1_generator": self.stage1.generator} if self.stage == 2 else {}

    # ------------------------------------------------------------- forward
    def _ca_noise(self, n: tf.Tensor, training: bool) -> tf.Tensor | None:
        return self.rng.normal([n, int(self.config["c_dim"])]) if training else None

    def stacked_forward(self, z: tf.Tensor, cond: tf.Tensor, training: bool = False):
        """(images, mu, logvar) of this stage's generator; Stage-II first draws the frozen Stage-I image."""
        n = tf.shape(z)[0]
        if self.stage == 1:
            return self.generator((z, cond, self._ca_noise(n, training)), training=training)
        low, _, _ = self.stage1.generator((z, cond, self._ca_noise(n, training)), training=False)
        return self.generator((tf.stop_gradient(low), cond, self._ca_noise(n, training)), training=training)

    def fake_images(self, z: tf.Tensor, cond: tf.Tensor | None, training: bool = False) -> tf.Tensor:
        return self.stacked_forward(z, cond, training)[0]

    def d_condition(self, cond: tf.Tensor) -> tf.Tensor:
        """What D is conditioned on: this stage's CA mean of the text, not back-propagated."""
        return tf.stop_gradient(self.generator.ca(cond)[1])

    def d_outputs(self, images: tf.Tensor, cond: tf.Tensor | None, training: bool = False):
        out = self.discriminator((images, self.d_condition(cond)), training=training)
        return out["cond"], out["features"]

    def discriminator_terms(self, images, wrong_images, cond, fake, eps=None, training: bool = True):
        """GAN-CLS's matching-aware terms on the conditional score; Stage-II adds its unconditional score as
        StackGAN-Pytorch's compute_discriminator_loss (code/miscc/utils.py:55-58) does:
        ``(real + real_uncond) / 2 + (fake + wrong + fake_uncond) / 3``; the reported ``real`` / ``fake`` terms are
        the conditional and unconditional ones averaged (as its errD_real / errD_fake)."""
        terms = super().discriminator_terms(images, wrong_images, cond, fake, eps, training)
        if self.stage == 1:
            return terms
        dc = self.d_condition(cond)
        real_u = self.discriminator((images, dc), training=training)["uncond"]
        fake_u = self.discriminator((tf.stop_gradient(fake), dc), training=training)["uncond"]
        real = 0.5 * (terms["real"] + gan_losses.d_real_loss(real_u, "bce", self.label_smoothing))
        fake_u_loss = gan_losses.d_fake_loss(fake_u, "bce")
        if "wrong" in terms:
            total = real + (terms["fake"] + terms["wrong"] + fake_u_loss) / 3.0
        else:  # --nocls (not in the official code): real and fake each the mean of their two scores
            total = real + 0.5 * (terms["fake"] + fake_u_loss)
        terms.update(real=real, fake=0.5 * (terms["fake"] + fake_u_loss), total=total)
        return terms

    def _generator_update(self, images, cond) -> dict[str, tf.Tensor]:
        c = self.config
        n = tf.shape(images)[0]
        with tf.GradientTape() as tape:
            fake, mu, logvar = self.stacked_forward(self.rng.normal([n, int(c["z_dim"])]), cond, training=True)
            out = self.discriminator((fake, self.d_condition(cond)), training=True)
            per_example = gan_losses.generator_loss(out["cond"], "bce")
            if self.stage == 2:
                per_example += gan_losses.generator_loss(out["uncond"], "bce")
            kl = kl_divergence(mu, logvar)
            per_example += float(c["kl_coef"]) * kl
            if c["l1_loss"]:
                per_example += float(c["l1_coef"]) * gan_losses.l1_loss(fake, images)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"g_loss": tf.reduce_mean(per_example), "kl": kl}

    # ---------------------------------------------------------------- eval
    def matching_features(self, images: tf.Tensor, batch: dict[str, tf.Tensor]):
        """As GAN-CLS; Stage-II images are resized to Stage-I's size for Stage-I's matching encoders."""
        if self.stage == 2 and isinstance(self.conditioner, SentenceEncoderConditioner):
            images = tf.image.resize(images, [self.stage1_size, self.stage1_size], method="area")
        return super().matching_features(images, batch)

    def eval_protocol(self) -> dict[str, Any]:
        out = super().eval_protocol()
        out.update(model="stackgan", stage=self.stage, stage1_size=self.stage1_size)
        if self.stage == 2:
            out.update(stage1_workdir=os.path.abspath(self.config["stage1_workdir"]), stage1_step=int(self.stage1_step))
        return out
