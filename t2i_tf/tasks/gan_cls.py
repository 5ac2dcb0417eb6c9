"""GAN-CLS / GAN-INT (Reed et al., ICML 2016) and its WGAN variants as a Task for the one Trainer.

``gan_type``:

- ``gan``: conditional DCGAN with the non-saturating BCE loss; ``cls`` adds the matching-aware
  wrong-image term (D: ``real/right + (wrong/right + fake/right) / 2``), ``interp`` the GAN-INT
  generator term on interpolated texts ``beta * t1 + (1 - beta) * t2`` (t2 = the batch rolled by one);
- ``wgan``: the same conditional models with the WGAN loss, weight clipping to ``clip_value`` and
  ``diter`` critic updates per generator update;
- ``wgan_gp``: WGAN with the gradient penalty (``gp_weight`` = lambda) instead of clipping, critic
  normalised per example (``d_norm=auto`` -> layer norm);
- ``vanilla_gan`` / ``vanilla_wgan``: unconditional DCGAN / WGAN (no text anywhere; ``cls``/``interp``
  do not apply).

One Trainer step = one generator update. The WGAN types make their ``diter`` critic updates INSIDE
``train_step``: the step's per-replica batch holds ``diter`` slices of the per-replica batch size, each
critic update takes its own slice (fresh data, as Arjovsky et al. do), and the generator update uses
the last slice's texts (and real images, for the L1 / feature-matching options). The GAN types make
one D update per step on the whole batch. (Arjovsky's extra 100 critic updates for the first 25 and
every 500th generator step are not done.)

Text: ``text_encoder=pretrained_embeddings`` conditions on the records' precomputed embeddings (Reed's
char-CNN-RNN, 1024-d; the mean of 4 captions' embeddings per image as in the reference); ``bilstm``
trains a small :class:`SentenceEncoder` on the captions with a matching loss against an
:class:`ImageEncoder` (one update per step, on the whole step batch) and conditions the GAN on its
(stop-gradient, normalised) sentence vectors; ``auto`` picks the embeddings when the records have them.

All losses are per example and reduced with ``tf.nn.compute_average_loss(global_batch_size=...)``; the
feature-matching term (a batch statistic) all-reduces its batch means (see ``losses.gan``), so a
MirroredStrategy step equals a single-device step on the global batch.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from t2i_tf.data.pixels import to_uint8
from t2i_tf.data.records import read_info, shard_paths
from t2i_tf.data.t2i import t2i_dataset
from t2i_tf.data.text import KNOWN_WORDS_RULE, known_word_counts, check_captions, Tokenizer, build_vocabulary, load_vocabulary, save_vocabulary
from t2i_tf.errors import UserError
from t2i_tf.export.description import write_export_description
from t2i_tf.losses import gan as gan_losses
from t2i_tf.models.noise import NOISE_RULE, SAMPLES_STREAM, generator_noise
from t2i_tf.models.gan_cls import Discriminator, Generator, num_resamplings
from t2i_tf.models.sentence_encoder import normalize_sentence
from t2i_tf.tasks.base import GeneratorTask
from t2i_tf.tasks.conditioners import (Conditioner, PrecomputedEmbeddings, SentenceEncoderConditioner,
                                       Unconditional)
from t2i_tf.distribute import update_variables

GAN_TYPES = ("gan", "wgan", "vanilla_gan", "vanilla_wgan", "wgan_gp")


def gan_settings(gan_type: str) -> dict[str, Any]:
    """What a ``gan_type`` means: conditional?, loss, several critic steps?, weight clipping?, gradient penalty?"""
    if gan_type not in GAN_TYPES:
        raise UserError(f"--gan_type must be one of {', '.join(GAN_TYPES)}; got {gan_type!r}")
    wgan = gan_type in ("wgan", "vanilla_wgan", "wgan_gp")
    return {"conditional": not gan_type.startswith("vanilla"), "loss_type": "wgan" if wgan else "bce",
            "multi_critic": wgan, "clip": gan_type in ("wgan", "vanilla_wgan"), "gp": gan_type == "wgan_gp"}


def read_captions(data_dir: str, split: str) -> list[str]:
    """Every caption of every record of ``split`` (for the vocabulary)."""
    ds = tf.data.TFRecordDataset(shard_paths(data_dir, split)).batch(1024)
    spec = {"captions": tf.io.VarLenFeature(tf.string)}
    out: list[str] = []
    for serialized in ds:
        values = tf.io.parse_example(serialized, spec)["captions"].values.numpy()
        out.extend(v.decode("utf-8", "replace") for v in values)
    return out


def model_inputs(x: tf.Tensor, cond: tf.Tensor | None):
    """What a Generator / Discriminator takes: ``(x, cond)``, or ``x`` alone when unconditional."""
    return x if cond is None else (x, cond)


def image_grid(images: tf.Tensor, cols: int | None = None) -> tf.Tensor:
    """[N, H, W, C] -> one [1, rows*H, cols*W, C] grid (missing cells black)."""
    n = int(images.shape[0])
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    pad = rows * cols - n
    if pad:
        images = tf.concat([images, tf.zeros([pad, *images.shape[1:]], images.dtype)], axis=0)
    h, w, c = images.shape[1:]
    grid = tf.reshape(images, [rows, cols, h, w, c])
    grid = tf.transpose(grid, [0, 2, 1, 3, 4])
    return tf.reshape(grid, [1, rows * h, cols * w, c])


class GanClsTask(GeneratorTask):
    """Trains a conditional (or vanilla) DCGAN / WGAN on text-to-image records (t2i_tf/datasets/t2i_common.py schema)."""

    name = "gan_cls"
    architecture_keys = ("image_size", "gan_type", "text_encoder", "ngf", "ndf", "z_dim", "proj_dim", "d_norm",
                         "minibatch_discrimination", "mbd_kernels", "mbd_kernel_dim", "text_dim", "text_embed_dim",
                         "text_hidden_dim", "encoder_width", "slot_grid", "reed_residual",
                         "optimizer", "lr_decay_every")  # the last two: other optimizer variables (slots, lr)
    # Settings a subclass fixes instead of reading them from its config (StackGAN: the paper's BCE GAN, with no
    # GAN-INT, WGAN, feature matching or minibatch discrimination, so it has no such keys).
    fixed_settings: dict[str, Any] = {}

    @classmethod
    def default_workdir(cls, config: dict[str, Any]) -> str:
        """runs/gan_cls, or runs/gan_cls_<gan_type> for the WGAN and unconditional types."""
        return "runs/gan_cls" if config["gan_type"] == "gan" else f"runs/gan_cls_{config['gan_type']}"

    def setting(self, key: str) -> Any:
        """A GAN setting: the subclass's fixed value, else the config's."""
        return self.fixed_settings[key] if key in self.fixed_settings else self.config[key]

    # ------------------------------------------------------------------ setup
    def prepare(self, workdir: str) -> None:
        self._prepare_gan()
        self._prepare_records()
        self.conditioner = self.make_conditioner(workdir)
        self.cond_dim = self.conditioner.dim
        self._eval_cache: dict[str, Any] | None = None

    def _prepare_gan(self) -> None:
        """What the GAN settings mean: loss, critic steps, D's norm, label smoothing, the image size."""
        c = self.config
        self.settings = gan_settings(self.setting("gan_type"))
        self.conditional = self.settings["conditional"]
        self.loss_type = self.settings["loss_type"]
        self.image_size = int(c["image_size"])
        try:
            num_resamplings(self.image_size)
        except ValueError as e:
            raise UserError(f"--image_size: {e}") from None
        self.critic_steps = int(self.setting("diter")) if self.settings["multi_critic"] else 1
        d_norm = self.setting("d_norm")
        self.d_norm = d_norm if d_norm != "auto" else ("layer" if self.settings["gp"] else "batch")
        self.label_smoothing = float(c["label_smoothing"]) if self.loss_type == "bce" else 0.0

    def _prepare_records(self) -> None:
        """The text-to-image records: their info and the held-out split."""
        self.data_dir = self.config["data_dir"]
        self.info = read_info(self.data_dir)
        if self.info.get("format") != "t2i-v1":
            raise UserError(f"{self.data_dir} is not a text-to-image record set (info.json format "
                            f"{self.info.get('format')!r}, expected 't2i-v1'): convert it with datasets/css/captions.py, "
                            "datasets/cub or datasets/flowers")
        splits = self.info.get("splits", {})
        self.eval_split = "test" if "test" in splits else "train"

    def make_conditioner(self, workdir: str) -> Conditioner:
        """``--text_encoder``'s conditioner (auto: the records' embeddings when they have them, else a BiLSTM)."""
        c = self.config
        if not self.conditional:
            return Unconditional()
        emb_dim = self.info.get("embedding_dim")
        kind = c["text_encoder"]
        if kind == "auto":
            kind = "pretrained_embeddings" if emb_dim else "bilstm"
            # A trained workdir keeps what auto chose then: a BiLSTM run has vocab.txt, an embeddings run none. Other
            # records could make auto choose the other kind, whose variables the checkpoint does not have.
            ckpt_dir = os.path.join(workdir, "checkpoints")
            trained = os.path.isdir(ckpt_dir) and any(f.startswith("ckpt-") and f.endswith(".index")
                                                      for f in os.listdir(ckpt_dir))
            was = "bilstm" if load_vocabulary(workdir) is not None else "pretrained_embeddings"
            if trained and was != kind:
                then = ("a BiLSTM over the captions (vocab.txt; the records it was trained on had no embeddings)"
                        if was == "bilstm" else "the records' precomputed embeddings (it has no vocab.txt)")
                now = f"has {emb_dim}-d embeddings" if emb_dim else "has no embeddings"
                raise UserError(f"{workdir} holds a checkpoint that --text_encoder=auto conditioned on {then}, but "
                                f"--data_dir {self.data_dir} {now}, so auto would now choose --text_encoder={kind} and "
                                "the checkpoint could not be restored: give --data_dir the records it was trained on, "
                                "or another --workdir for these records")
        if kind == "pretrained_embeddings":
            if not emb_dim:
                raise UserError(f"--text_encoder=pretrained_embeddings but {self.data_dir} has no embeddings: "
                                "use --text_encoder=bilstm (or convert with embeddings)")
            return PrecomputedEmbeddings(int(emb_dim))
        vocab = load_vocabulary(workdir)
        if vocab is None:
            vocab = build_vocabulary(read_captions(self.data_dir, "train"))
            save_vocabulary(vocab, workdir)
        return SentenceEncoderConditioner(Tokenizer(vocab, int(c["max_text_len"])), c, self.image_size,
                                          trains=self.trains_text_encoder(), kind=kind)

    def trains_text_encoder(self) -> bool:
        """Whether a BiLSTM conditioner is trained here (not when it comes frozen from another run)."""
        return True

    @property
    def tokenizer(self) -> Tokenizer | None:
        """The tokenizer of raw-text conditions (None for embeddings / unconditional)."""
        return self.conditioner.tokenizer

    def _schedule(self, steps_per_decay: int):
        c = self.config
        every = int(c["lr_decay_every"])
        if every <= 0 or float(c["lr_decay"]) == 1.0:
            return float(c["learning_rate"])
        return keras.optimizers.schedules.ExponentialDecay(float(c["learning_rate"]), decay_steps=every * steps_per_decay,
                                                           decay_rate=float(c["lr_decay"]), staircase=True)

    def _optimizer(self, schedule, name: str) -> keras.optimizers.Optimizer:
        c = self.config
        if c["optimizer"] == "rmsprop":
            return keras.optimizers.RMSprop(learning_rate=schedule, rho=0.99, epsilon=1e-8, name=name)
        return keras.optimizers.Adam(learning_rate=schedule, beta_1=float(c["beta1"]), beta_2=float(c["beta2"]),
                                     epsilon=1e-8, name=name)

    def build(self, strategy: tf.distribute.Strategy) -> None:
        c = self.config
        self.strategy = strategy
        self.num_replicas = self.check_batch_split(strategy)
        with strategy.scope():
            self._build_gan()
            self.g_schedule = self._schedule(1)
            self.g_optimizer = self._optimizer(self.g_schedule, "g_optimizer")
            self.d_optimizer = self._optimizer(self._schedule(self.critic_steps), "d_optimizer")
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.conditioner.build()
            # Created in the strategy scope, so every replica draws its own noise stream.
            self.rng = tf.random.Generator.from_seed(int(c.get("seed", 0)))

    def _build_gan(self) -> None:
        """Create (and build) ``self.generator`` and ``self.discriminator``; called inside the strategy scope."""
        c, s, cond = self.config, self.image_size, self.conditional
        proj = int(c["proj_dim"])
        residual = bool(c["reed_residual"])
        self.generator = Generator(s, int(c["ngf"]), int(c["z_dim"]), proj, conditional=cond, reed_residual=residual,
                                   name="generator")
        self.discriminator = Discriminator(s, int(c["ndf"]), proj, conditional=cond, norm=self.d_norm,
                                           minibatch_discrimination=bool(c["minibatch_discrimination"]),
                                           mbd_kernels=int(c["mbd_kernels"]), mbd_kernel_dim=int(c["mbd_kernel_dim"]),
                                           reed_residual=residual, name="discriminator")
        text = tf.zeros([2, self.cond_dim]) if cond else None
        self.generator(model_inputs(tf.zeros([2, int(c["z_dim"])]), text))
        self.discriminator(model_inputs(tf.zeros([2, s, s, 3]), text))

    def fake_images(self, z: tf.Tensor, cond: tf.Tensor | None, training: bool = False) -> tf.Tensor:
        """G(z, text conditioning): float images in [-1, 1]."""
        return self.generator(model_inputs(z, cond), training=training)

    def d_outputs(self, images: tf.Tensor, cond: tf.Tensor | None, training: bool = False):
        """D(images, text conditioning): (raw scores [N], features for feature matching)."""
        return self.discriminator(model_inputs(images, cond), training=training)

    def checkpoint_items(self) -> dict[str, Any]:
        items = {"generator": self.generator, "discriminator": self.discriminator, "g_optimizer": self.g_optimizer,
                 "d_optimizer": self.d_optimizer, "rng": self.rng}
        items.update(self.conditioner.checkpoint_items())
        return items

    def learning_rate(self, step: tf.Tensor) -> tf.Tensor | None:
        sched = self.g_schedule
        return sched(step) if callable(sched) else tf.constant(sched)

    # ------------------------------------------------------------------- data
    def _reader_kwargs(self) -> dict[str, Any]:
        """``random_flip=False`` for data whose captions name left and right (CSS); ``random_crop=False`` for
        scenes rendered at the training size, whose objects sit at exact places (CSS)."""
        return {"random_flip": bool(self.config.get("random_flip", True)),
                "random_crop": bool(self.config.get("random_crop", True))}

    def model_inputs(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {"image": b["image"], "wrong_image": b["wrong_image"], **self.conditioner.inputs(b)}

    def train_dataset(self, input_context: tf.distribute.InputContext, seed: int) -> tf.data.Dataset:
        per_replica = input_context.get_per_replica_batch_size(self.global_batch_size)
        ds = t2i_dataset(self.data_dir, "train", per_replica * self.critic_steps, self.image_size, training=True,
                         seed=seed, input_context=input_context,
                         **self._reader_kwargs())
        return ds.map(self.model_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    # ------------------------------------------------------------ step pieces
    def generator_conditions(self, cond: tf.Tensor | None) -> list[tf.Tensor | None]:
        """The conditioning batches the generator is trained on: the batch's, plus GAN-INT's interpolations."""
        if cond is None or not self.setting("interp"):
            return [cond]
        return [cond, gan_losses.interpolate_embeddings(cond, float(self.setting("interp_beta")))]

    def _use_cls(self) -> bool:
        return self.conditional and bool(self.config["cls"])

    def discriminator_terms(self, images: tf.Tensor, wrong_images: tf.Tensor, cond: tf.Tensor | None,
                            fake: tf.Tensor, eps: tf.Tensor | None = None, training: bool = True) -> dict[str, tf.Tensor]:
        """Per-example D loss terms (``real``, ``fake``, [``wrong``], [``gp``]), their ``total`` and raw ``*_score``s."""
        d = self.d_outputs
        real_s, _ = d(images, cond, training=training)
        fake_s, _ = d(tf.stop_gradient(fake), cond, training=training)
        wrong_s = d(wrong_images, cond, training=training)[0] if self._use_cls() else None
        out = {"real": gan_losses.d_real_loss(real_s, self.loss_type, self.label_smoothing),
               "fake": gan_losses.d_fake_loss(fake_s, self.loss_type), "real_score": real_s, "fake_score": fake_s}
        out["total"] = gan_losses.discriminator_loss(real_s, fake_s, wrong_s, self.loss_type, self.label_smoothing)
        if wrong_s is not None:
            out["wrong"] = gan_losses.d_fake_loss(wrong_s, self.loss_type)
            out["wrong_score"] = wrong_s
        if self.settings["gp"]:
            if eps is None:
                eps = self.rng.uniform([tf.shape(images)[0]])
            out["gp"] = gan_losses.gradient_penalty(lambda x: d(x, cond, training=training)[0], images, fake, eps,
                                                    float(self.setting("gp_weight")))
            out["total"] = out["total"] + out["gp"]
        return out

    def _score_metric(self, scores: tf.Tensor) -> tf.Tensor:
        """Mean D output: the probability of "real" for BCE, the raw critic value for WGAN."""
        return tf.reduce_mean(tf.sigmoid(scores) if self.loss_type == "bce" else scores)

    def _clip_critic(self) -> None:
        """Clip every critic weight to [-clip_value, clip_value] (a synchronised update under a strategy)."""
        v = float(self.setting("clip_value"))
        update_variables(self.discriminator.trainable_variables, lambda x: tf.clip_by_value(x, -v, v))

    def _critic_update(self, images, wrong_images, cond) -> dict[str, tf.Tensor]:
        z = self.rng.normal([tf.shape(images)[0], int(self.config["z_dim"])])
        fake = self.fake_images(z, cond, training=True)
        with tf.GradientTape() as tape:
            terms = self.discriminator_terms(images, wrong_images, cond, fake, training=True)
            loss = tf.nn.compute_average_loss(terms["total"], global_batch_size=self.global_batch_size)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        if self.settings["clip"]:
            self._clip_critic()
        return terms

    def _generator_update(self, images, cond) -> dict[str, tf.Tensor]:
        c = self.config
        n = tf.shape(images)[0]
        conds = self.generator_conditions(cond)
        out = {}
        with tf.GradientTape() as tape:
            fake = self.fake_images(self.rng.normal([n, int(c["z_dim"])]), conds[0], training=True)
            fake_s, fake_f = self.d_outputs(fake, conds[0], training=True)
            per_example = gan_losses.generator_loss(fake_s, self.loss_type)
            if len(conds) > 1:
                fake_i = self.fake_images(self.rng.normal([n, int(c["z_dim"])]), conds[1], training=True)
                per_example += float(self.setting("interp_weight")) * gan_losses.generator_loss(
                    self.d_outputs(fake_i, conds[1], training=True)[0], self.loss_type)
            if c["l1_loss"]:
                out["l1_loss"] = gan_losses.l1_loss(fake, images)
                per_example += float(c["l1_coef"]) * out["l1_loss"]
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)
            total = tf.reduce_mean(per_example)
            if self.setting("feature_matching"):
                _, real_f = self.d_outputs(images, conds[0], training=True)
                fm = gan_losses.feature_matching_loss(real_f, fake_f, self.global_batch_size)
                loss += float(self.setting("l2_coef")) * fm / self.num_replicas
                total += float(self.setting("l2_coef")) * fm
                out["fm_loss"] = fm
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        out["g_loss"] = total
        return out

    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """D (critic) update(s), then one G update (and one sentence-encoder update for ``bilstm``)."""
        return self._step(batch)

    # Plain Python control flow on Python values only: skipping autograph halves the trace time.
    @tf.autograph.experimental.do_not_convert
    def _step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        metrics: dict[str, tf.Tensor] = {}
        images, wrong = batch["image"], batch["wrong_image"]
        # The conditioner's own update (a co-trained sentence encoder) on the whole step batch; its condition is
        # fixed for the GAN updates (None when unconditional).
        cond, extra = self.conditioner.train_update(batch, images, self.global_batch_size * self.critic_steps)
        metrics.update(extra)
        k = self.critic_steps
        split = (lambda x: tf.split(x, k, axis=0)) if k > 1 else (lambda x: [x])
        image_s, wrong_s = split(images), split(wrong)
        cond_s = split(cond) if cond is not None else [None] * k
        for i in range(k):  # unrolled: diter critic updates, each on its own slice
            terms = self._critic_update(image_s[i], wrong_s[i], cond_s[i])
        g = self._generator_update(image_s[-1], cond_s[-1])
        metrics["d_loss"] = tf.reduce_mean(terms["total"])
        metrics["g_loss"] = g.pop("g_loss")
        metrics["d_real"] = self._score_metric(terms["real_score"])
        metrics["d_fake"] = self._score_metric(terms["fake_score"])
        if "wrong_score" in terms:
            metrics["d_wrong"] = self._score_metric(terms["wrong_score"])
        if "gp" in terms:
            metrics["gp"] = tf.reduce_mean(terms["gp"])
        metrics.update({k2: tf.reduce_mean(v) for k2, v in g.items()})
        return metrics

    # ------------------------------------------------------------------- eval
    def _eval_batch(self) -> dict[str, tf.Tensor]:
        """One fixed held-out batch (first records of the test split) with its text conditioning inputs."""
        if self._eval_cache is None:
            ds = t2i_dataset(self.data_dir, self.eval_split, int(self.config["eval_batch_size"]), self.image_size,
                             training=False, seed=0)
            b = next(iter(ds))
            batch = self.model_inputs(b)
            batch["caption"] = b["caption"]
            self._eval_cache = batch
        return self._eval_cache

    def condition(self, batch: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor | None:
        """The GAN's conditioning for a batch of model inputs (None for vanilla GANs)."""
        return self.conditioner.condition(batch, training=training)

    def _fixed_noise(self, n: int) -> tf.Tensor:
        return generator_noise(n, int(self.config["z_dim"]), int(self.config["seed"]), SAMPLES_STREAM)

    def evaluate(self, step: int) -> dict[str, float]:
        """Cheap numbers on a fixed held-out batch: mean D outputs on real / wrong / fake, encoder R@1 in batch."""
        b = self._eval_batch()
        cond = self.condition(b, training=False)
        images = b["image"]
        n = int(images.shape[0])
        fake = self.fake_images(self._fixed_noise(n), cond)
        d = self.d_outputs

        real_s, fake_s = d(images, cond, training=False)[0], d(fake, cond, training=False)[0]
        metrics = {"eval/d_real": float(self._score_metric(real_s)), "eval/d_fake": float(self._score_metric(fake_s))}
        if self.conditional:
            metrics["eval/d_wrong"] = float(self._score_metric(d(b["wrong_image"], cond, training=False)[0]))
        if self.loss_type == "wgan":
            metrics["eval/wasserstein"] = float(tf.reduce_mean(real_s) - tf.reduce_mean(fake_s))
        metrics.update(self.conditioner.eval_metrics(b, images))
        return metrics

    def summaries(self, step: int) -> None:
        """A grid of samples from fixed noise and the first held-out captions (and those captions as text)."""
        b = self._eval_batch()
        n = min(int(self.config["num_samples"]), int(b["image"].shape[0]))
        cond = self.condition({k: v[:n] for k, v in b.items()}, training=False)
        fake = self.fake_images(self._fixed_noise(n), cond)
        tf.summary.image("samples", image_grid(to_uint8(fake)), max_outputs=1)
        if self.conditional:
            tf.summary.text("sample_captions", tf.strings.reduce_join(b["caption"][:n], separator="  \n"))

    # ------------------------------------------------ generator evaluation (eval/generator_eval.py)
    draws_rows = True

    def generate_images(self, batch: dict[str, tf.Tensor], seed: tuple[int, int],
                        rows: tuple[int, int] | None = None) -> tf.Tensor:
        """Float [-1, 1] images for ``batch``'s conditioning, z = stateless_normal(seed); ``rows``: only [start, stop)."""
        n = int(batch["image"].shape[0])
        z = generator_noise(n, int(self.config["z_dim"]), *seed)
        if rows is not None:
            batch = {k: (v[rows[0]:rows[1]] if getattr(v, "shape", None) is not None and len(v.shape)
                         and int(v.shape[0]) == n else v) for k, v in batch.items()}
            z = z[rows[0]:rows[1]]
        return self.fake_images(z, self.condition(batch, training=False))

    def matching_features(self, images: tf.Tensor, batch: dict[str, tf.Tensor]):
        """The conditioner's (image, condition) features for R-precision (``bilstm``: its matching encoders)."""
        return self.conditioner.matching_features(images, batch)

    def eval_protocol(self) -> dict[str, Any]:
        """Model facts for the metrics JSON."""
        out = {"model": "gan_cls", "gan_type": self.setting("gan_type"), "image_size": self.image_size,
               "eval_split": self.eval_split, "data_dir": os.path.abspath(self.data_dir),
               **self.conditioner.protocol()}
        return out

    # ---------------------------------------------------------------- generate
    def generate(self, captions: list[str] | None, num_samples: int, seed: int = 0, source_image: Any = None,
                 max_rows: int = 4) -> dict[str, Any]:
        """``num_samples`` images per caption: ``{"images": uint8 [rows, num_samples, S, S, 3], "captions",
        "unknown_words"}``.

        ``captions`` None takes the first ``max_rows`` held-out captions (their embeddings for
        ``pretrained_embeddings`` models); vanilla models make one row. The noise is
        ``generator_noise(rows * num_samples, z_dim, seed)`` over the captions each repeated
        ``num_samples`` times in order, as the exported ``generate(text, seed)`` draws it for that list.
        """
        if num_samples < 1:
            raise UserError(f"--num_samples must be >= 1; got {num_samples}")
        unknown: dict[str, list[str]] = {}
        if not self.conditional:
            if captions:
                raise UserError(f"--gan_type={self.setting('gan_type')} is unconditional: it takes no --text")
            rows, cond = 1, None
        elif captions:
            if self.tokenizer is None:
                raise UserError("this model conditions on precomputed embeddings, so it cannot read --text; "
                                "leave --text out to draw held-out captions, or train with --text_encoder=bilstm")
            unknown = check_captions(captions, self.tokenizer.vocabulary, "training vocabulary")
            rows = len(captions)
            cond = self.condition({"tokens": self.tokenizer(tf.constant(captions))}, training=False)
        else:
            b = self._eval_batch()
            rows = min(max_rows, int(b["image"].shape[0]))
            captions = [c.decode("utf-8") for c in b["caption"][:rows].numpy()]
            cond = self.condition({k: v[:rows] for k, v in b.items()}, training=False)
        n = rows * num_samples
        z = generator_noise(n, int(self.config["z_dim"]), seed)
        if cond is not None:
            cond = tf.repeat(cond, num_samples, axis=0)
        images = to_uint8(self.fake_images(z, cond)).numpy()
        return {"images": images.reshape(rows, num_samples, *images.shape[1:]),
                "captions": captions if self.conditional else None, "unknown_words": unknown}

    # ------------------------------------------------------------------ export
    def serving_trackables(self) -> dict[str, Any]:
        """Models besides the generator (and text encoder) that ``fake_images`` uses, to save with the export."""
        return {}

    def export(self, path: str) -> dict[str, Any]:
        """SavedModel: ``generate(text, seed)`` (bilstm), ``generate_from_embedding(embedding, seed)`` (embeddings)
        or ``sample(num_images, seed)`` (vanilla); all return ``{"images": uint8 [N, S, S, 3]}``."""
        text = isinstance(self.conditioner, SentenceEncoderConditioner)
        module = GanClsServing(self.fake_images, self.generator, int(self.config["z_dim"]), self.image_size,
                               self.tokenizer if text else None, self.conditioner.text_encoder if text else None,
                               self.cond_dim)
        for key, trackable in self.serving_trackables().items():
            setattr(module, key, trackable)
        if text:
            signatures = {"generate": module.generate}
            described = {"generate": {"inputs": {"text": "string [N]", "seed": "int64 scalar"},
                                      "known_words": KNOWN_WORDS_RULE}}
        elif self.cond_dim:
            signatures = {"generate_from_embedding": module.generate_from_embedding}
            described = {"generate_from_embedding": {"inputs": {"embedding": f"float32 [N,{self.cond_dim}]",
                                                                "seed": "int64 scalar"}}}
        else:
            signatures = {"sample": module.sample}
            described = {"sample": {"inputs": {"num_images": "int32 scalar", "seed": "int64 scalar"}}}
        for d in described.values():
            d["outputs"] = {"images": f"uint8 [N,{self.image_size},{self.image_size},3]"}
        tf.saved_model.save(module, path, signatures=signatures)
        description = {"model": self.name, "gan_type": self.setting("gan_type"), "text_encoder": self.conditioner.kind,
                       "image_size": self.image_size, "z_dim": int(self.config["z_dim"]), "signatures": described,
                       "noise": NOISE_RULE}
        write_export_description(path, description)
        return description


class GanClsServing(tf.Module):
    """The exported module: the generator, and for raw text the tokenizer and sentence encoder."""

    def __init__(self, image_fn, generator: keras.Model, z_dim: int, image_size: int,
                 tokenizer: Tokenizer | None = None, text_encoder: keras.Model | None = None, cond_dim: int = 0):
        super().__init__(name="gan_cls_serving")
        self.image_fn = image_fn  # (z, cond) -> float images: the task's fake_images
        self.generator = generator  # tracked, so its variables are saved
        self.z_dim = int(z_dim)
        self.image_size = int(image_size)
        self.cond_dim = int(cond_dim)
        if tokenizer is not None:
            self.tokenizer = tokenizer
            self.text_encoder = text_encoder
        # Only the signature that fits the model exists (saving traces every tf.function attribute).
        if tokenizer is not None:
            self.generate = tf.function(self._generate, input_signature=[
                tf.TensorSpec([None], tf.string, name="text"), tf.TensorSpec([], tf.int64, name="seed")])
        elif self.cond_dim:
            self.generate_from_embedding = tf.function(self._generate_from_embedding, input_signature=[
                tf.TensorSpec([None, self.cond_dim], tf.float32, name="embedding"),
                tf.TensorSpec([], tf.int64, name="seed")])
        else:
            self.sample = tf.function(self._sample, input_signature=[
                tf.TensorSpec([], tf.int32, name="num_images"), tf.TensorSpec([], tf.int64, name="seed")])

    def _noise(self, n: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        return generator_noise(n, self.z_dim, seed)

    def _images(self, z: tf.Tensor, cond: tf.Tensor | None) -> dict[str, tf.Tensor]:
        return {"images": to_uint8(self.image_fn(z, cond))}

    def _generate(self, text, seed):
        tokens = self.tokenizer(text)
        cond = normalize_sentence(self.text_encoder(tokens, training=False))
        return dict(self._images(self._noise(tf.shape(text)[0], seed), cond), known_words=known_word_counts(tokens))

    def _generate_from_embedding(self, embedding, seed):
        return self._images(self._noise(tf.shape(embedding)[0], seed), embedding)

    def _sample(self, num_images, seed):
        return self._images(self._noise(num_images, seed), None)
