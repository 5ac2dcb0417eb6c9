"""StackGAN (Zhang et al., ICCV 2017) as a Task for the one Trainer: Stage-I and Stage-II, trained in turn.

- ``stage=1``: text -> conditioning augmentation (CA) -> Stage-I image at ``image_size`` (64 in the paper).
- ``stage=2``: the trained Stage-I run (``stage1_workdir``, frozen) draws its image from the same text
  and noise; the Stage-II generator (its own CA) refines it to ``stage2_size`` (256 in the paper). With
  ``stage1_mode=train`` (the paper preset) the frozen Stage-I generator runs in training mode while Stage-II
  trains, as in StackGAN-Pytorch (its STAGE1_G is a submodule of the Stage-II netG, which trains in
  ``train()`` mode: BatchNorm on batch statistics, running statistics updated; code/model.py:192-201,242-244,
  code/trainer.py:172-173); its weights stay frozen, its moving statistics are saved with the Stage-II run.
  ``stage1_mode=inference`` runs it on its moving statistics, unchanged.

Losses as StackGAN-Pytorch (code/miscc/utils.py:14-78): D is matching-aware (Stage I:
``real/right + (wrong + fake/right) / 2``; Stage II adds an unconditional score:
``(real + real_uncond) / 2 + (fake + wrong + fake_uncond) / 3``) and sees the text through the CA mean (``mu``,
not back-propagated into G); G gets the conditional (+ unconditional) BCE plus ``kl_coef`` * KL(N(mu, sigma) ||
N(0, I)). The wrong pairs: ``wrong_pairs=text`` (paper preset) pairs the real images' codes with the next
example's text, as the official code; ``image`` takes a separately drawn image of another class with the right
text (GAN-CLS). ``reuse_fakes`` (paper preset): one generator forward per step serves the D update and then the
G update, as the official iteration (code/trainer.py:170-194); off, the G update draws new fakes (GAN-CLS).
``caption_embeddings``: the training embedding is one random caption's (1, paper preset: the official
datasets.py:144-145) or the mean of several (4: Reed et al. / StackGAN-TF). docs/official_stackgan.md lists
what is the same as the official code, what differs, and how official checkpoints are imported.

Text conditioning, data, evaluation and export come from :class:`GanClsTask` (the same record format, a
co-trained BiLSTM or precomputed embeddings); Stage-II reuses Stage-I's text encoder, frozen.
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from t2i_tf.data.pixels import area_resize, to_uint8
from t2i_tf.data.text import KNOWN_WORDS_RULE, known_word_counts
from t2i_tf.errors import UserError
from t2i_tf.export.description import write_export_description
from t2i_tf.losses import gan as gan_losses
from t2i_tf.losses.kl import kl_divergence
from t2i_tf.models.noise import NOISE_RULE
from t2i_tf.models.sentence_encoder import normalize_sentence
from t2i_tf.models.stackgan import (StageIDiscriminator, StageIGenerator, StageIIDiscriminator, StageIIGenerator,
                                    check_stage_sizes)
from t2i_tf.data.t2i import EMBEDDINGS_SAMPLED
from t2i_tf.tasks.conditioners import SentenceEncoderConditioner
from t2i_tf.tasks.gan_cls import GanClsServing, GanClsTask
from t2i_tf.runs.restore import chained_run_config


class StackGanTask(GanClsTask):
    """Stage-I or Stage-II StackGAN on text-to-image records."""

    name = "stackgan"
    fixed_settings = {"gan_type": "gan", "interp": False, "feature_matching": False, "d_norm": "batch", "diter": 1}
    architecture_keys = ("stage", "image_size", "stage2_size", "ngf", "ndf", "z_dim", "c_dim", "ca_activation", "num_residual",
                         "stage2_residual", "text_encoder", "text_dim", "text_embed_dim", "text_hidden_dim",
                         "encoder_width", "slot_grid", "optimizer", "lr_decay_every")  # the last two: other optimizer variables (slots, lr)

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
                        "encoder_width", "slot_grid", "z_dim"):
                if key in self.stage1_config:  # slot_grid: runs from before word_slots have none (bilstm)
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
        if self._use_cls() and c.get("wrong_pairs", "image") == "text" and self.global_batch_size < 2 * self.num_replicas:
            raise UserError(f"--wrong_pairs=text pairs each replica's images with the next example's text: "
                            f"--batch_size {self.global_batch_size} gives {self.num_replicas} replica(s) fewer than 2")
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
                                              residual=bool(c["stage2_residual"]), name="generator")
            self.discriminator = StageIIDiscriminator(self.image_size, int(c["ndf"]), cd, name="discriminator")
            s1 = self.stage1_size
            self.generator((tf.zeros([2, s1, s1, 3]), tf.zeros([2, emb]), None))
        s = self.image_size
        self.discriminator((tf.zeros([2, s, s, 3]), tf.zeros([2, cd])))

    def serving_trackables(self) -> dict[str, Any]:
        return {"stage1_generator": self.stage1.generator} if self.stage == 2 else {}

    def _stage1_trains_bn(self) -> bool:
        """Stage-II with ``stage1_mode=train``: the frozen Stage-I generator's BatchNorm runs on batch statistics."""
        return self.stage == 2 and self.config.get("stage1_mode", "inference") == "train"

    def checkpoint_items(self) -> dict[str, Any]:
        """GAN-CLS's, plus (``stage1_mode=train``) the Stage-I generator, whose moving statistics change here."""
        items = super().checkpoint_items()
        if self._stage1_trains_bn():
            items["stage1_generator"] = self.stage1.generator
        return items

    def _reader_kwargs(self) -> dict[str, Any]:
        """GAN-CLS's, plus how many captions' embeddings a training embedding averages (``caption_embeddings``)."""
        return {**super()._reader_kwargs(),
                "embeddings_sampled": int(self.config.get("caption_embeddings", EMBEDDINGS_SAMPLED))}

    # ------------------------------------------------------------- forward
    def _ca_noise(self, n: tf.Tensor, training: bool) -> tf.Tensor | None:
        return self.rng.normal([n, int(self.config["c_dim"])]) if training else None

    def stacked_forward(self, z: tf.Tensor, cond: tf.Tensor, training: bool = False):
        """(images, mu, logvar) of this stage's generator; Stage-II first draws the frozen Stage-I image."""
        n = tf.shape(z)[0]
        if self.stage == 1:
            return self.generator((z, cond, self._ca_noise(n, training)), training=training)
        low, _, _ = self.stage1.generator((z, cond, self._ca_noise(n, training)),
                                          training=training and self._stage1_trains_bn())
        return self.generator((tf.stop_gradient(low), cond, self._ca_noise(n, training)), training=training)

    def fake_images(self, z: tf.Tensor, cond: tf.Tensor | None, training: bool = False) -> tf.Tensor:
        return self.stacked_forward(z, cond, training)[0]

    def stage_images(self, z: tf.Tensor, cond: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Stage-II runs: (Stage-I image, Stage-II image) of the same noise and text, float [-1, 1], inference."""
        low, _, _ = self.stage1.generator((z, cond, None), training=False)
        return low, self.generator((low, cond, None), training=False)[0]

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
        the conditional and unconditional ones averaged (as its errD_real / errD_fake). ``wrong_pairs=text``: see
        :meth:`_text_pair_terms` (``wrong_images`` is then unused)."""
        if self._use_cls() and self.config.get("wrong_pairs", "image") == "text":
            return self._text_pair_terms(images, cond, fake, training)
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

    def _text_pair_terms(self, images, cond, fake, training: bool):
        """StackGAN-Pytorch's D loss (code/miscc/utils.py:22-61): the real and fake images are encoded once; the
        wrong pairs are the real codes of examples 0..B-2 with the texts of 1..B-1 (``real_features[:B-1]``,
        ``cond[1:]``); Stage I: ``real + (fake + wrong) / 2``, Stage II as :meth:`discriminator_terms`.

        Per example, the B-1 wrong losses are padded with a 0 and scaled by B / (B-1), so the batch mean is the
        reference's mean over B-1 pairs (under a strategy the pairs are shifted within each replica's batch)."""
        d, ls = self.discriminator, self.label_smoothing
        dc = self.d_condition(cond)
        real_f = d.encode(images, training=training)
        fake_f = d.encode(tf.stop_gradient(fake), training=training)
        real_s = d.cond_logits(real_f, dc, training=training)
        wrong_s = d.cond_logits(real_f[:-1], dc[1:], training=training)
        fake_s = d.cond_logits(fake_f, dc, training=training)
        real = gan_losses.d_real_loss(real_s, "bce", ls)
        fake_l = gan_losses.d_fake_loss(fake_s, "bce")
        wrong_l = gan_losses.d_fake_loss(wrong_s, "bce")
        n = tf.cast(tf.shape(real)[0], real.dtype)
        wrong = tf.concat([wrong_l, tf.zeros([1], wrong_l.dtype)], axis=0) * (n / (n - 1.0))
        terms = {"real_score": real_s, "fake_score": fake_s, "wrong_score": wrong_s, "wrong": wrong}
        if self.stage == 1:
            terms.update(real=real, fake=fake_l, total=real + 0.5 * (fake_l + wrong))
            return terms
        real_u = gan_losses.d_real_loss(d.uncond_logits(real_f), "bce", ls)
        fake_u = gan_losses.d_fake_loss(d.uncond_logits(fake_f), "bce")
        real = 0.5 * (real + real_u)
        terms.update(real=real, fake=0.5 * (fake_l + fake_u), total=real + (fake_l + wrong + fake_u) / 3.0)
        return terms

    def _generator_loss(self, fake, mu, logvar, images, cond) -> tuple[tf.Tensor, tf.Tensor]:
        """Per-example G loss on (already drawn) fakes: BCE of D's conditional (+ Stage-II unconditional) logits
        + kl_coef * KL (+ L1); and the KL."""
        c = self.config
        out = self.discriminator((fake, self.d_condition(cond)), training=True)
        per_example = gan_losses.generator_loss(out["cond"], "bce")
        if self.stage == 2:
            per_example += gan_losses.generator_loss(out["uncond"], "bce")
        kl = kl_divergence(mu, logvar)
        per_example += float(c["kl_coef"]) * kl
        if c["l1_loss"]:
            per_example += float(c["l1_coef"]) * gan_losses.l1_loss(fake, images)
        return per_example, kl

    def _generator_update(self, images, cond) -> dict[str, tf.Tensor]:
        n = tf.shape(images)[0]
        with tf.GradientTape() as tape:
            fake, mu, logvar = self.stacked_forward(self.rng.normal([n, int(self.config["z_dim"])]), cond, training=True)
            per_example, kl = self._generator_loss(fake, mu, logvar, images, cond)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"g_loss": tf.reduce_mean(per_example), "kl": kl}

    @tf.autograph.experimental.do_not_convert
    def _step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """``reuse_fakes``: StackGAN-Pytorch's iteration (code/trainer.py:170-194): ONE generator forward (so its
        BatchNorm statistics move once per step), a D update on those fakes (detached), then the G update scoring
        the same fakes with the updated D. Otherwise GAN-CLS's step (the G update draws new fakes)."""
        if not self.config.get("reuse_fakes", False):
            return super()._step(batch)
        images, wrong = batch["image"], batch["wrong_image"]
        cond, metrics = self.conditioner.train_update(batch, images, self.global_batch_size)
        n = tf.shape(images)[0]
        with tf.GradientTape() as tape:
            fake, mu, logvar = self.stacked_forward(self.rng.normal([n, int(self.config["z_dim"])]), cond, training=True)
            with tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    terms = self.discriminator_terms(images, wrong, cond, fake, training=True)
                    d_loss = tf.nn.compute_average_loss(terms["total"], global_batch_size=self.global_batch_size)
                d_vars = self.discriminator.trainable_variables
                self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))
            per_example, kl = self._generator_loss(fake, mu, logvar, images, cond)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, g_vars), g_vars))
        metrics = dict(metrics)
        metrics.update(d_loss=tf.reduce_mean(terms["total"]), g_loss=tf.reduce_mean(per_example),
                       d_real=self._score_metric(terms["real_score"]), d_fake=self._score_metric(terms["fake_score"]),
                       kl=tf.reduce_mean(kl))
        if "wrong_score" in terms:
            metrics["d_wrong"] = self._score_metric(terms["wrong_score"])
        return metrics

    # ---------------------------------------------------------------- eval
    def matching_features(self, images: tf.Tensor, batch: dict[str, tf.Tensor]):
        """As GAN-CLS; Stage-II images are resized to Stage-I's size for Stage-I's matching encoders."""
        if self.stage == 2 and isinstance(self.conditioner, SentenceEncoderConditioner):
            images = area_resize(images, self.stage1_size)
        return super().matching_features(images, batch)

    def eval_protocol(self) -> dict[str, Any]:
        out = super().eval_protocol()
        out.update(model="stackgan", stage=self.stage, stage1_size=self.stage1_size)
        if self.stage == 2:
            out.update(stage1_workdir=os.path.abspath(self.config["stage1_workdir"]), stage1_step=int(self.stage1_step))
        return out


    # ------------------------------------------------------------------ export
    def export(self, path: str) -> dict[str, Any]:
        """GAN-CLS's export; a Stage-II run on raw text adds ``generate_stages(text, seed) -> {"images",
        "stage1_images", "known_words"}``: the Stage-II images of ``generate`` and the Stage-I images they refine."""
        if self.stage != 2 or not isinstance(self.conditioner, SentenceEncoderConditioner):
            return super().export(path)
        z_dim, s, s1 = int(self.config["z_dim"]), self.image_size, self.stage1_size
        module = StackGanServing(self.stage_images, self.fake_images, self.generator, z_dim, s, self.tokenizer,
                                 self.conditioner.text_encoder, self.cond_dim)
        for key, trackable in self.serving_trackables().items():
            setattr(module, key, trackable)
        tf.saved_model.save(module, path, signatures={"generate": module.generate,
                                                      "generate_stages": module.generate_stages})
        inputs = {"text": "string [N]", "seed": "int64 scalar"}
        images = {"images": f"uint8 [N,{s},{s},3]", "known_words": KNOWN_WORDS_RULE}
        described = {"generate": {"inputs": inputs, "known_words": KNOWN_WORDS_RULE, "outputs": images},
                     "generate_stages": {"inputs": inputs, "outputs": dict(
                         images, stage1_images=f"uint8 [N,{s1},{s1},3]: the Stage-I images of the same text and "
                                               "noise, which Stage-II refines")}}
        description = {"model": self.name, "gan_type": self.setting("gan_type"), "text_encoder": self.conditioner.kind,
                       "image_size": s, "stage": 2, "stage1_size": s1, "z_dim": z_dim, "signatures": described,
                       "noise": NOISE_RULE}
        write_export_description(path, description)
        return description


class StackGanServing(GanClsServing):
    """GAN-CLS's exported module for Stage-II runs, plus ``generate_stages``: both stages' images."""

    def __init__(self, stages_fn, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stages_fn = stages_fn  # (z, cond) -> (Stage-I, Stage-II) float images: the task's stage_images
        self.generate_stages = tf.function(self._generate_stages, input_signature=[
            tf.TensorSpec([None], tf.string, name="text"), tf.TensorSpec([], tf.int64, name="seed")])

    def _generate_stages(self, text, seed):
        tokens = self.tokenizer(text)
        cond = normalize_sentence(self.text_encoder(tokens, training=False))
        low, high = self.stages_fn(self._noise(tf.shape(text)[0], seed), cond)
        return {"images": to_uint8(high), "stage1_images": to_uint8(low), "known_words": known_word_counts(tokens)}
