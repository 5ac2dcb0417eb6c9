"""AttnGAN (Xu et al., CVPR 2018) as a Task for the one Trainer.

A frozen DAMSM run (``damsm_workdir``) turns captions into word and sentence features; the multi-stage
generator (t2i_tf/models/attngan.py) draws ``num_stages`` images (base_size * 2^i px), the later stages
attending to the words; one discriminator per stage scores (image, sentence) and the image alone.

One step, as the reference trainer: G draws once; every D is updated on real / wrong (the batch's images
rolled by one against the captions) / generated images,
``(BCE(real, 1) + BCE(real|s, 1)) / 2 + (BCE(fake, 0) + BCE(fake|s, 0) + BCE(wrong|s, 0)) / 3``;
then G on ``sum over stages (BCE(D(fake), 1) + BCE(D(fake|s), 1)) + damsm_weight * DAMSM(final image,
caption) + kl_coef * KL``. With ``ema_decay`` > 0 a moving average of G's weights (with the warm-up of
tf.train.ExponentialMovingAverage, see :meth:`AttnGanTask.ema_decay_at`) is kept and used for evaluation,
samples, generation and export.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import tensorflow as tf

from t2i_tf.data.pixels import area_resize, to_uint8
from t2i_tf.data.records import read_info
from t2i_tf.data.t2i import t2i_dataset
from t2i_tf.data.text import KNOWN_WORDS_RULE, known_word_counts, check_captions, standardize
from t2i_tf.errors import UserError
from t2i_tf.export.description import write_export_description
from t2i_tf.losses import gan as gan_losses
from t2i_tf.losses.damsm import damsm_loss, retrieval_accuracy
from t2i_tf.losses.kl import kl_divergence
from t2i_tf.models.attngan import AttnGanDiscriminator, AttnGanGenerator
from t2i_tf.models.damsm import token_mask
from t2i_tf.models.noise import NOISE_RULE, SAMPLES_STREAM, generator_noise
from t2i_tf.tasks.base import GeneratorTask
from t2i_tf.tasks.gan_cls import image_grid
from t2i_tf.runs.restore import chained_run_config, restore_task
from t2i_tf.distribute import update_variables



class AttnGanTask(GeneratorTask):
    """Trains the AttnGAN generator and its per-stage discriminators against a frozen DAMSM."""

    name = "attngan"
    architecture_keys = ("num_stages", "base_size", "ngf", "ndf", "z_dim", "c_dim", "num_residual", "spectral_norm",
                         "self_attention", "rgb_skip")

    @classmethod
    def records_image_size(cls, config: dict[str, Any]) -> int:
        """The last stage's size."""
        return int(config["base_size"]) * 2 ** (int(config["num_stages"]) - 1)

    # ------------------------------------------------------------------ setup
    def prepare(self, workdir: str) -> None:
        c = self.config
        base = int(c["base_size"])
        self.sizes = [base * 2**i for i in range(int(c["num_stages"]))]
        self.image_size = self.sizes[-1]
        self.data_dir = c["data_dir"]
        info = read_info(self.data_dir)
        if info.get("format") != "t2i-v1":
            raise UserError(f"{self.data_dir} is not a text-to-image record set (info.json format "
                            f"{info.get('format')!r}, expected 't2i-v1')")
        self.eval_split = "test" if "test" in info.get("splits", {}) else "train"
        self.damsm_config = chained_run_config(c.get("damsm_workdir") or "", "damsm", "damsm_workdir", "DAMSM",
                                               "--model=attngan", copy_vocabulary_to=workdir)
        self.ema = float(c["ema_decay"]) > 0
        self._eval_cache: dict[str, Any] | None = None

    def build(self, strategy: tf.distribute.Strategy) -> None:
        c = self.config
        self.strategy = strategy
        self.check_batch_split(strategy)
        self.damsm, self.damsm_step = restore_task("damsm", c["damsm_workdir"], strategy=strategy, data_dir=self.data_dir)
        self.tokenizer = self.damsm.tokenizer
        dim = self.damsm.sentence_dim  # = the word dim, except for a word_slots DAMSM (a layout)
        with strategy.scope():
            self.generator = self._make_generator("generator")
            self.discriminators = [AttnGanDiscriminator(s, int(c["ndf"]), dim, spectral_norm=bool(c["spectral_norm"]),
                                                        self_attention=bool(c["self_attention"]), name=f"discriminator{i}")
                                   for i, s in enumerate(self.sizes)]
            for d, s in zip(self.discriminators, self.sizes):
                d((tf.zeros([2, s, s, 3]), tf.zeros([2, dim])))
            adam = dict(learning_rate=float(c["learning_rate"]), beta_1=float(c["beta1"]), beta_2=float(c["beta2"]))
            self.g_optimizer = keras.optimizers.Adam(name="g_optimizer", **adam)
            self.d_optimizer = keras.optimizers.Adam(name="d_optimizer", **adam)
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self._d_variables())
            if self.ema:
                self.generator_ema = self._make_generator("generator_ema")
                for e, w in zip(self.generator_ema.weights, self.generator.weights):
                    e.assign(w)
            self.rng = tf.random.Generator.from_seed(int(c.get("seed", 0)))

    def _make_generator(self, name: str) -> AttnGanGenerator:
        c, dim, sentence_dim = self.config, self.damsm.feature_dim, self.damsm.sentence_dim
        g = AttnGanGenerator(int(c["num_stages"]), int(c["base_size"]), int(c["ngf"]), int(c["z_dim"]), int(c["c_dim"]),
                             dim, sentence_dim, int(c["num_residual"]), self_attention=bool(c["self_attention"]),
                             rgb_skip=bool(c["rgb_skip"]), name=name)
        t = 3
        g((tf.zeros([2, int(c["z_dim"])]), tf.zeros([2, sentence_dim]), tf.zeros([2, t, dim]), tf.ones([2, t], tf.bool),
           None))
        return g

    def _d_variables(self) -> list:
        return [v for d in self.discriminators for v in d.trainable_variables]

    def checkpoint_items(self) -> dict[str, Any]:
        items = {"generator": self.generator, "g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer,
                 "rng": self.rng}
        items.update({f"discriminator{i}": d for i, d in enumerate(self.discriminators)})
        if self.ema:
            items["generator_ema"] = self.generator_ema
        return items

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator used for evaluation, samples, generation and export: the EMA one when kept."""
        return self.generator_ema if self.ema else self.generator

    # ------------------------------------------------------------------- data
    def train_dataset(self, input_context: tf.distribute.InputContext, seed: int) -> tf.data.Dataset:
        per_replica = input_context.get_per_replica_batch_size(self.global_batch_size)
        ds = t2i_dataset(self.data_dir, "train", per_replica, self.image_size, training=True,
                         seed=seed, input_context=input_context,
                         random_flip=bool(self.config["random_flip"]), random_crop=bool(self.config["random_crop"]))
        return ds.map(self.model_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def model_inputs(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {"image": b["image"], "tokens": self.tokenizer(b["caption"]), "class_id": b["class_id"]}

    # ------------------------------------------------------------------- step
    def text_features(self, tokens: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Frozen DAMSM (words, sentence, word mask) of token ids."""
        words, sentence = self.damsm.text_encoder(tokens, training=False)
        return tf.stop_gradient(words), tf.stop_gradient(sentence), token_mask(tokens)

    def _pyramid(self, images: tf.Tensor) -> list[tf.Tensor]:
        """The real images at every stage's size (area averaging from the final size; XLA-compatible)."""
        return [area_resize(images, s) for s in self.sizes]

    def _damsm_image(self, images: tf.Tensor):
        """DAMSM image features of [-1, 1] images; the inception_v3 encoder resizes to 299 itself (bilinear,
        align_corners=True, as the official CNN_ENCODER on the 256 px fakes), the others get ``image_size``."""
        s = self.damsm.image_size
        if images.shape[1] != s and self.damsm.image_encoder.backbone != "inception_v3":
            images = tf.image.resize(images, [s, s], method="bilinear")
        return self.damsm.image_encoder(images, training=False)

    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self._step(batch)

    @tf.autograph.experimental.do_not_convert
    def _step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        c = self.config
        words, sentence, mask = self.text_features(batch["tokens"])
        n = tf.shape(sentence)[0]
        reals = self._pyramid(batch["image"])
        wrongs = [tf.roll(r, 1, axis=0) for r in reals]  # another caption's image (the reference: the batch shifted)
        z, noise = self.rng.normal([n, int(c["z_dim"])]), self.rng.normal([n, int(c["c_dim"])])
        gb = self.global_batch_size
        bce_real, bce_fake = gan_losses.d_real_loss, gan_losses.d_fake_loss
        with tf.GradientTape() as g_tape:
            out = self.generator((z, sentence, words, mask, noise), training=True)
            with g_tape.stop_recording(), tf.GradientTape() as d_tape:
                d_total = 0.0
                for d, real, wrong, fake in zip(self.discriminators, reals, wrongs, out["images"]):
                    r, f = d((real, sentence), training=True), d((tf.stop_gradient(fake), sentence), training=True)
                    w = d((wrong, sentence), training=True)["cond"]
                    d_total += 0.5 * (bce_real(r["uncond"]) + bce_real(r["cond"])) + (
                        bce_fake(f["uncond"]) + bce_fake(f["cond"]) + bce_fake(w)) / 3.0
                d_loss = tf.nn.compute_average_loss(d_total, global_batch_size=gb)
            d_vars = self._d_variables()
            self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))
            g_adv = 0.0
            for d, fake in zip(self.discriminators, out["images"]):
                f = d((fake, sentence), training=True)
                g_adv += gan_losses.generator_loss(f["uncond"]) + gan_losses.generator_loss(f["cond"])
            regions, global_ = self._damsm_image(out["images"][-1])
            damsm = damsm_loss(regions, global_, words, sentence, mask, batch["class_id"], float(c["gamma1"]),
                               float(c["gamma2"]), float(c["gamma3"]), c["relevance"])["total"]
            kl = kl_divergence(out["mu"], out["logvar"])
            g_total = g_adv + float(c["damsm_weight"]) * damsm + float(c["kl_coef"]) * kl
            if c.get("l1_loss"):  # not in AttnGAN: every stage's mean |fake - real|, as GAN-CLS's l1_loss
                l1 = tf.add_n([tf.reduce_mean(tf.abs(fake - real), axis=[1, 2, 3])
                               for fake, real in zip(out["images"], reals)])
                g_total += float(c["l1_coef"]) * l1
            g_loss = tf.nn.compute_average_loss(g_total, global_batch_size=gb)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
        if self.ema:
            self._update_ema()
        metrics = {"d_loss": tf.reduce_mean(d_total), "g_loss": tf.reduce_mean(g_total), "g_adv": tf.reduce_mean(g_adv),
                   "damsm_loss": tf.reduce_mean(damsm), "kl": tf.reduce_mean(kl)}
        if c.get("l1_loss"):
            metrics["l1_loss"] = tf.reduce_mean(l1)
        return metrics

    def ema_decay_at(self, num_updates) -> tf.Tensor:
        """The EMA decay after ``num_updates`` generator updates: ``min(ema_decay, (1 + t) / (10 + t))``.

        The warm-up of tf.train.ExponentialMovingAverage(num_updates=...): without it the average of a short
        run still holds ema_decay^steps of G's random initial weights (22% after 1,500 steps at 0.999).
        """
        t = tf.cast(num_updates, tf.float32)
        return tf.minimum(float(self.config["ema_decay"]), (1.0 + t) / (10.0 + t))

    def _update_ema(self) -> None:
        """generator_ema <- decay * generator_ema + (1 - decay) * generator, every weight (a synchronised update)."""
        decay = self.ema_decay_at(self.g_optimizer.iterations)
        update_variables(self.generator_ema.weights, lambda e, w: decay * e + (1.0 - decay) * w,
                         [(w,) for w in self.generator.weights])

    # ------------------------------------------------------------------- eval
    def _eval_batch(self) -> dict[str, tf.Tensor]:
        if self._eval_cache is None:
            ds = t2i_dataset(self.data_dir, self.eval_split, int(self.config["eval_batch_size"]), self.image_size,
                             training=False, seed=0)
            b = next(iter(ds))
            self._eval_cache = dict(self.model_inputs(b), caption=b["caption"])
        return self._eval_cache

    def _noise(self, n: int, seed: tuple[int, int]) -> tf.Tensor:
        return generator_noise(n, int(self.config["z_dim"]), *seed)

    def images_for(self, tokens: tf.Tensor, z: tf.Tensor, generator: keras.Model | None = None) -> dict[str, Any]:
        """The generator's output dict for token ids and noise (deterministic conditioning: the CA mean)."""
        words, sentence, mask = self.text_features(tokens)
        return (generator or self.sampling_generator)((z, sentence, words, mask, None), training=False)

    def evaluate(self, step: int) -> dict[str, float]:
        """On a fixed held-out batch: mean D outputs of the last stage, and the DAMSM top-1 of generated images.
        Drawn and scored ``EVAL_CHUNK`` images at a time (the batch's noise, cut: the same numbers, bounded memory)."""
        from t2i_tf.eval.generator_eval import EVAL_CHUNK

        b = self._eval_batch()
        n = int(b["image"].shape[0])
        z = self._noise(n, (int(self.config["seed"]), SAMPLES_STREAM))
        _, sentence, _ = self.text_features(b["tokens"])
        d = self.discriminators[-1]
        real_s, fake_s, real_global, fake_global = [], [], [], []
        for start in range(0, n, EVAL_CHUNK):
            rows = slice(start, min(n, start + EVAL_CHUNK))
            fake = self.images_for(b["tokens"][rows], z[rows])["images"][-1]
            real_s.append(d((b["image"][rows], sentence[rows]), training=False)["cond"])
            fake_s.append(d((fake, sentence[rows]), training=False)["cond"])
            fake_global.append(self._damsm_image(fake)[1])
            real_global.append(self._damsm_image(b["image"][rows])[1])
        real_s, fake_s = tf.concat(real_s, 0), tf.concat(fake_s, 0)
        real_global, fake_global = tf.concat(real_global, 0), tf.concat(fake_global, 0)
        return {"eval/d_real": float(tf.reduce_mean(tf.sigmoid(real_s))),
                "eval/d_fake": float(tf.reduce_mean(tf.sigmoid(fake_s))),
                "eval/damsm_top1_generated": 100.0 * float(retrieval_accuracy(fake_global, sentence)),
                "eval/damsm_top1_real": 100.0 * float(retrieval_accuracy(real_global, sentence))}

    def summaries(self, step: int) -> None:
        """Every stage's samples from fixed noise on the first held-out captions, and the last stage's word attention."""
        b = self._eval_batch()
        n = min(int(self.config["num_samples"]), int(b["image"].shape[0]))
        out = self.images_for(b["tokens"][:n], self._noise(n, (int(self.config["seed"]), SAMPLES_STREAM)))
        for i, images in enumerate(out["images"]):
            tf.summary.image(f"samples_stage{i}", image_grid(to_uint8(images)), max_outputs=1)
        if out["attention"]:
            att = out["attention"][-1][0]  # [h, w, T] of the first sample
            real_words = int(tf.reduce_sum(tf.cast(token_mask(b["tokens"][:1]), tf.int32)))
            maps = tf.transpose(att[:, :, :real_words], [2, 0, 1])[..., None]
            maps = maps / tf.maximum(tf.reduce_max(maps, axis=[1, 2, 3], keepdims=True), 1e-8)
            tf.summary.image("attention_words", image_grid(tf.cast(maps * 255.0, tf.uint8)), max_outputs=1)
        tf.summary.text("sample_captions", tf.strings.reduce_join(b["caption"][:n], separator="  \n"))

    # ------------------------------------------------ generator evaluation (eval/generator_eval.py)
    draws_rows = True

    def generate_images(self, batch: dict[str, tf.Tensor], seed: tuple[int, int],
                        rows: tuple[int, int] | None = None) -> tf.Tensor:
        """The last stage's float [-1, 1] images, z = stateless_normal(seed); ``rows``: only rows [start, stop)."""
        tokens = batch["tokens"]
        z = self._noise(int(tokens.shape[0]), seed)
        if rows is not None:
            tokens, z = tokens[rows[0]:rows[1]], z[rows[0]:rows[1]]
        return self.images_for(tokens, z)["images"][-1]

    def matching_features(self, images: tf.Tensor, batch: dict[str, tf.Tensor]):
        """DAMSM (global image feature, sentence feature): AttnGAN's R-precision encoders."""
        _, global_ = self._damsm_image(images)
        return global_.numpy(), self.text_features(batch["tokens"])[1].numpy()

    def eval_protocol(self) -> dict[str, Any]:
        return {"model": "attngan", "image_size": self.image_size, "stage_sizes": self.sizes,
                "eval_split": self.eval_split, "data_dir": os.path.abspath(self.data_dir),
                "generator": "EMA of the weights (decay min(%g, (1+t)/(10+t)) at update t)" % float(self.config["ema_decay"]) if self.ema else "trained",
                "text_encoder": "DAMSM (frozen)", "damsm_workdir": os.path.abspath(self.config["damsm_workdir"]),
                "damsm_step": int(self.damsm_step),
                "r_precision_encoders": "the DAMSM run's image and text encoders (global image feature vs sentence)"}

    # ---------------------------------------------------------------- generate
    def generate(self, captions: list[str] | None, num_samples: int, seed: int = 0, source_image: Any = None,
                 max_rows: int = 4) -> dict[str, Any]:
        """``num_samples`` last-stage images per caption (held-out captions when None); noise as GAN-CLS's."""
        if num_samples < 1:
            raise UserError(f"--num_samples must be >= 1; got {num_samples}")
        unknown: dict[str, list[str]] = {}
        if captions:
            unknown = check_captions(captions, self.tokenizer.vocabulary, "DAMSM vocabulary")
            tokens = self.tokenizer(tf.constant(captions))
        else:
            b = self._eval_batch()
            rows = min(max_rows, int(b["tokens"].shape[0]))
            captions = [c.decode("utf-8") for c in b["caption"][:rows].numpy()]
            tokens = b["tokens"][:rows]
        rows = len(captions)
        z = generator_noise(rows * num_samples, int(self.config["z_dim"]), seed)
        images = to_uint8(self.images_for(tf.repeat(tokens, num_samples, axis=0), z)["images"][-1]).numpy()
        return {"images": images.reshape(rows, num_samples, *images.shape[1:]), "captions": captions,
                "unknown_words": unknown}

    # ------------------------------------------------------------------ export
    def export(self, path: str) -> dict[str, Any]:
        """SavedModel ``generate(text string [N], seed int64) -> {"images": uint8 [N,S,S,3]}`` (last stage), and
        ``generate_with_attention(text, seed)``: the same images plus the last stage's word attention maps."""
        module = AttnGanServing(self, int(self.config["z_dim"]))
        tf.saved_model.save(module, path, signatures={"generate": module.generate,
                                                      "generate_with_attention": module.generate_with_attention})
        s, t = self.image_size, int(self.tokenizer.max_len)
        inputs = {"text": "string [N]", "seed": "int64 scalar"}
        images = {"images": f"uint8 [N,{s},{s},3]", "known_words": KNOWN_WORDS_RULE}
        description = {"model": "attngan", "image_size": self.image_size, "z_dim": int(self.config["z_dim"]),
                       "generator": "ema" if self.ema else "trained",
                       "signatures": {"generate": {"inputs": inputs, "outputs": images},
                                      "generate_with_attention": {"inputs": inputs, "outputs": dict(
                                          images,
                                          attention=f"float32 [N,h,w,{t}]: the last stage's attention of each "
                                                    f"region over the words (sums to 1 over the real words; "
                                                    "h x w: the map the last stage attends from)",
                                          words=f"string [N,{t}]: the standardised words the maps belong to "
                                                f"('' at padding)")}},
                       "noise": NOISE_RULE}
        write_export_description(path, description)
        return description


class AttnGanServing(tf.Module):
    """The exported module: DAMSM's tokenizer and text encoder, and the (EMA) generator."""

    def __init__(self, task: AttnGanTask, z_dim: int):
        super().__init__(name="attngan_serving")
        self.tokenizer, self.text_encoder = task.tokenizer, task.damsm.text_encoder
        self.generator = task.sampling_generator
        self.z_dim = int(z_dim)
        spec = [tf.TensorSpec([None], tf.string, name="text"), tf.TensorSpec([], tf.int64, name="seed")]
        self.generate = tf.function(self._generate, input_signature=spec)
        self.generate_with_attention = tf.function(self._generate_with_attention, input_signature=spec)

    def _forward(self, text, seed):
        tokens = self.tokenizer(text)
        words, sentence = self.text_encoder(tokens, training=False)
        z = generator_noise(tf.shape(text)[0], self.z_dim, seed)
        return tokens, self.generator((z, sentence, words, token_mask(tokens), None), training=False)

    def _generate(self, text, seed):
        tokens, out = self._forward(text, seed)
        return {"images": to_uint8(out["images"][-1]), "known_words": known_word_counts(tokens)}

    def _generate_with_attention(self, text, seed):
        tokens, out = self._forward(text, seed)
        words = tf.strings.split(standardize(text)).to_tensor("", shape=[None, self.tokenizer.max_len])
        if out["attention"]:
            attention = out["attention"][-1]
        else:  # one stage: no word attention; a uniform map over the real words
            mask = tf.cast(token_mask(tokens), tf.float32)
            uniform = mask / tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
            attention = uniform[:, None, None, :]
        return {"images": to_uint8(out["images"][-1]), "known_words": known_word_counts(tokens),
                "attention": tf.cast(attention, tf.float32), "words": words}
