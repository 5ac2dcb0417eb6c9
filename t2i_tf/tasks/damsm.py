"""DAMSM pre-training (Xu et al., CVPR 2018) as a Task: the text and image encoders AttnGAN is trained against.

One step: a batch of (image, one of its captions, class id) -> BiLSTM words + sentence, image regions +
global feature -> words loss (word-region attention, gamma1/gamma2/gamma3) + sentence loss, both
directions, same-class negatives masked (t2i_tf/losses/damsm.py). Adam on both encoders; the text
encoder's gradients are clipped to a global norm of ``rnn_grad_clip`` (the reference's 0.25). The learning rate
follows :class:`DamsmLearningRate` (the reference's x0.98 per epoch down to a tenth) and Adam can restart every
epoch (:class:`RestartingAdam`, the reference re-creates its optimizer each epoch).

Evaluation on the held-out split: the two losses, in-batch top-1 retrieval accuracy, and the R-precision
of *real* images with their own captions (the upper bound a generator's R-precision is read against).
Export: ``encode_text(text)`` -> words, sentence, mask and ``encode_image(image uint8)`` -> regions, global.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from t2i_tf.data.pixels import from_uint8
from t2i_tf.data.records import read_info
from t2i_tf.data.t2i import held_out_batches, t2i_dataset
from t2i_tf.data.text import Tokenizer, build_vocabulary, load_vocabulary, save_vocabulary
from t2i_tf.data.word_swaps import WordSwapper
from t2i_tf.errors import UserError
from t2i_tf.eval.generator_eval import CaptionPool, in_chunks
from t2i_tf.eval.rprecision import fewest_other_class_captions, r_precision
from t2i_tf.export.description import write_export_description
from t2i_tf.losses.damsm import damsm_loss, retrieval_accuracy
from t2i_tf.models.damsm import DamsmImageEncoder, DamsmTextEncoder, token_mask
from t2i_tf.tasks.base import Task
from t2i_tf.tasks.gan_cls import read_captions



class DamsmLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(step) = lr0 * decay ** min(step // every, K)``: the official per-epoch rule (pretrain_DAMSM.py:268-284,
    ``if lr > ENCODER_LR / 10.: lr *= 0.98`` after each epoch) with ``every`` = iterations per epoch and ``K`` the
    number of decays that rule makes before the rate is at most ``until * lr0`` (0.98 and 0.1: K = 114, the rate
    stays at 0.0999 lr0 from epoch 114 on). ``decay == 1`` or ``every == 0``: constant; ``until == 0``: no floor.
    """

    def __init__(self, initial: float, decay: float = 1.0, every: int = 0, until: float = 0.0):
        self.initial, self.decay, self.every, self.until = float(initial), float(decay), int(every), float(until)
        self.max_decays = self.decays_before_floor(self.initial, self.decay, self.until)

    @staticmethod
    def decays_before_floor(initial: float, decay: float, until: float) -> int:
        """How many times the official loop multiplies (in float64, as Python does) before stopping."""
        if decay >= 1.0 or until <= 0.0:
            return 2**31 - 1
        lr, k = initial, 0
        while lr > initial * until:
            lr, k = lr * decay, k + 1
        return k

    def __call__(self, step):
        if self.every <= 0 or self.decay >= 1.0:
            return tf.constant(self.initial, tf.float32)
        epochs = tf.minimum(tf.cast(step, tf.int64) // self.every, self.max_decays)
        return tf.cast(self.initial * tf.pow(tf.constant(self.decay, tf.float64), tf.cast(epochs, tf.float64)),
                       tf.float32)

    def get_config(self):
        return {"initial": self.initial, "decay": self.decay, "every": self.every, "until": self.until}


class RestartingAdam(keras.optimizers.Adam):
    """Adam that starts afresh every ``restart_every`` steps: moments zeroed and bias correction restarted, as the
    official DAMSM pre-training's ``optim.Adam(para, lr=lr, ...)`` created at the start of each epoch
    (pretrain_DAMSM.py:270). ``restart_every=0`` is plain Keras Adam. ``iterations`` keeps counting (the schedule
    reads it)."""

    def __init__(self, restart_every: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.restart_every = int(restart_every)

    def update_step(self, gradient, variable, learning_rate):
        if self.restart_every <= 0:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        gradient = tf.cast(gradient, dtype)
        local_step = tf.cast(self.iterations % self.restart_every + 1, dtype)
        keep = tf.cast(local_step > 1.0, dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign(m, m * keep)
        self.assign(v, v * keep)
        alpha = lr * tf.sqrt(1 - tf.pow(tf.cast(self.beta_2, dtype), local_step)) / (
            1 - tf.pow(tf.cast(self.beta_1, dtype), local_step))
        self.assign_add(m, (gradient - m) * (1 - self.beta_1))
        self.assign_add(v, (tf.square(gradient) - v) * (1 - self.beta_2))
        self.assign_sub(variable, m * alpha / (tf.sqrt(v) + self.epsilon))

    def get_config(self):
        return {**super().get_config(), "restart_every": self.restart_every}


class DamsmTask(Task):
    """Trains DAMSM's text and image encoders on text-to-image records."""

    name = "damsm"
    architecture_keys = ("image_size", "backbone", "width", "hidden_dim", "text_embed_dim", "max_text_len",
                         "sentence_encoder", "slot_grid", "slot_dim")

    def prepare(self, workdir: str) -> None:
        c = self.config
        if c["backbone"] != "cnn" and not c.get("inception_weights"):
            raise UserError(f"--backbone={c['backbone']} needs --inception_weights=PATH (ImageNet weights: torchvision's "
                            "inception_v3_google-*.pth for inception_v3, the Keras no-top .h5 for keras_inception_v3; "
                            "nothing is downloaded)")
        self.image_size = int(c["image_size"])
        self.data_dir = c.get("data_dir")
        self.vocabulary = load_vocabulary(workdir)
        if self.data_dir:
            self.info = read_info(self.data_dir)
            if self.info.get("format") != "t2i-v1":
                raise UserError(f"{self.data_dir} is not a text-to-image record set (info.json format "
                                f"{self.info.get('format')!r}, expected 't2i-v1')")
            self.eval_split = "test" if "test" in self.info.get("splits", {}) else "train"
            if self.vocabulary is None:
                self.vocabulary = build_vocabulary(read_captions(self.data_dir, "train"))
                save_vocabulary(self.vocabulary, workdir)
        if self.vocabulary is None:
            raise UserError("--model=damsm needs --data_dir (converted text-to-image records) to train")
        self.tokenizer = Tokenizer(self.vocabulary, int(c["max_text_len"]))
        self.feature_dim = 2 * int(c["hidden_dim"])  # word and region features
        # sentence and global image features: the BiLSTM's final states, or a slot_grid^2 x slot_dim layout
        self.slot_grid = int(c["slot_grid"]) if c.get("sentence_encoder", "last_state") == "word_slots" else 0
        self.sentence_dim = self.slot_grid ** 2 * int(c["slot_dim"]) if self.slot_grid else self.feature_dim
        self.swap_negatives = int(c.get("swap_negatives", 0))
        self.swapper = WordSwapper(self.vocabulary, c["swap_word_groups"]) if self.swap_negatives else None

    def build(self, strategy: tf.distribute.Strategy) -> None:
        c = self.config
        self.strategy = strategy
        self.check_batch_split(strategy)
        s = self.image_size
        with strategy.scope():
            slots = dict(slot_grid=self.slot_grid, slot_dim=int(c["slot_dim"]) if self.slot_grid else 0)
            self.text_encoder = DamsmTextEncoder(self.tokenizer.vocab_size, int(c["text_embed_dim"]),
                                                 int(c["hidden_dim"]), float(c["text_dropout"]), name="damsm_text",
                                                 **slots)
            self.image_encoder = DamsmImageEncoder(s, self.feature_dim, c["backbone"], int(c["width"]),
                                                   c.get("inception_weights") or None,
                                                   batch_stats=bool(c.get("backbone_batch_stats", False)),
                                                   name="damsm_image", **slots)
            self.text_encoder(tf.ones([2, int(c["max_text_len"])], tf.int64))
            self.image_encoder(tf.zeros([2, s, s, 3]))
            self.lr_schedule = DamsmLearningRate(float(c["learning_rate"]), float(c.get("lr_decay", 1.0)),
                                                 int(c.get("lr_decay_every", 0)), float(c.get("lr_decay_until", 0.0)))
            reset = int(c.get("optimizer_reset_every", 0))
            self.text_optimizer = RestartingAdam(reset, learning_rate=self.lr_schedule, beta_1=float(c["beta1"]),
                                                 beta_2=0.999, global_clipnorm=float(c["rnn_grad_clip"]) or None,
                                                 name="text_optimizer")
            self.image_optimizer = RestartingAdam(reset, learning_rate=self.lr_schedule, beta_1=float(c["beta1"]),
                                                  beta_2=0.999, name="image_optimizer")
            self.text_optimizer.build(self.text_encoder.trainable_variables)
            self.image_optimizer.build(self.image_encoder.trainable_variables)

    def learning_rate(self, step: tf.Tensor) -> tf.Tensor:
        return self.lr_schedule(step)

    def checkpoint_items(self) -> dict[str, Any]:
        return {"text_encoder": self.text_encoder, "image_encoder": self.image_encoder,
                "text_optimizer": self.text_optimizer, "image_optimizer": self.image_optimizer}

    def train_dataset(self, input_context: tf.distribute.InputContext, seed: int) -> tf.data.Dataset:
        per_replica = input_context.get_per_replica_batch_size(self.global_batch_size)
        ds = t2i_dataset(self.data_dir, "train", per_replica, self.image_size, training=True,
                         seed=seed, input_context=input_context,
                         random_flip=bool(self.config["random_flip"]), random_crop=bool(self.config["random_crop"]))
        tokenizer = self.tokenizer
        return ds.map(lambda b: {"image": b["image"], "tokens": tokenizer(b["caption"]), "class_id": b["class_id"]},
                      num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def losses(self, batch: dict[str, tf.Tensor], training: bool) -> dict[str, tf.Tensor]:
        """Per-example DAMSM losses of a batch (words, sentence, total)."""
        return self._losses_and_features(batch, training)[0]

    def _losses_and_features(self, batch: dict[str, tf.Tensor], training: bool):
        """(per-example losses, global image features, sentence features) of a batch: each encoder runs once."""
        c = self.config
        words, sentence = self.text_encoder(batch["tokens"], training=training)
        regions, global_ = self.image_encoder(batch["image"], training=training)
        negatives = self.hard_negatives(batch["tokens"]) if training and self.swapper is not None else None
        terms = damsm_loss(regions, global_, words, sentence, token_mask(batch["tokens"]), batch["class_id"],
                           float(c["gamma1"]), float(c["gamma2"]), float(c["gamma3"]), c["relevance"], negatives)
        return terms, global_, sentence

    def hard_negatives(self, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
        """``--swap_negatives`` swapped-word captions per caption (t2i_tf/data/word_swaps.py), encoded: words [N, K, T,
        D], sentence [N, K, D], mask [N, K, T], valid [N, K]. Seeded by the step and the replica (resumable)."""
        k = self.swap_negatives
        step = tf.cast(self.text_optimizer.iterations, tf.int64)
        context = tf.distribute.get_replica_context()  # the default context (replica 0) without a strategy
        replica = tf.cast(context.replica_id_in_sync_group if context is not None else 0, tf.int64)
        drawn = [self.swapper(tokens, tf.stack([step, replica * 1000 + j])) for j in range(k)]
        ids = tf.stack([d[0] for d in drawn], axis=1)  # [N, K, T]
        shape = tf.shape(ids)
        words, sentence = self.text_encoder(tf.reshape(ids, [-1, shape[2]]), training=True)
        return {"words": tf.reshape(words, [shape[0], k, shape[2], -1]),
                "sentence": tf.reshape(sentence, [shape[0], k, -1]),
                "mask": token_mask(ids), "valid": tf.stack([d[1] for d in drawn], axis=1)}

    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        text_vars, image_vars = self.text_encoder.trainable_variables, self.image_encoder.trainable_variables
        with tf.GradientTape() as tape:
            terms = self.losses(batch, training=True)
            loss = tf.nn.compute_average_loss(terms["total"], global_batch_size=self.global_batch_size)
        grads = tape.gradient(loss, text_vars + image_vars)
        self.text_optimizer.apply_gradients(zip(grads[:len(text_vars)], text_vars))
        self.image_optimizer.apply_gradients(zip(grads[len(text_vars):], image_vars))
        return {"loss": tf.reduce_mean(terms["total"]), "words_loss": tf.reduce_mean(terms["words"]),
                "sentence_loss": tf.reduce_mean(terms["sentence"])}

    # ------------------------------------------------------------------ eval
    def _eval_terms_and_features(self, batch: dict[str, tf.Tensor]):
        """As :meth:`_losses_and_features` (not training), with the image encoder run ``EVAL_CHUNK`` images at a
        time: the losses still compare the whole batch, but memory no longer grows with ``eval_batch_size``
        (Inception at 299 px held every image's activations at once)."""
        c = self.config
        words, sentence = self.text_encoder(batch["tokens"], training=False)
        regions, global_ = in_chunks(lambda x: self.image_encoder(x, training=False), batch["image"])
        regions, global_ = tf.constant(regions), tf.constant(global_)
        terms = damsm_loss(regions, global_, words, sentence, token_mask(batch["tokens"]), batch["class_id"],
                           float(c["gamma1"]), float(c["gamma2"]), float(c["gamma3"]), c["relevance"])
        return terms, global_, sentence

    def held_out_features(self, max_images: int) -> dict[str, np.ndarray]:
        """Sentence and global image features of the first ``max_images`` held-out records (first caption each),
        with the mean losses over eval batches and their in-batch top-1 accuracy; ``pool`` / ``pool_class_id``:
        the sentence features of every caption of those records (None with one caption per image)."""
        feats: dict[str, list] = {"image": [], "sentence": [], "class_id": [], "words": [], "sent": [], "acc": []}
        batches = held_out_batches(self.data_dir, self.eval_split, self.image_size, max_images,
                                   int(self.config["eval_batch_size"]))
        pool = CaptionPool(self.data_dir, self.eval_split)

        def encode(rows: list[int], captions: list[bytes]) -> np.ndarray:
            return in_chunks(lambda t: self.text_encoder(self.tokenizer(t), training=False)[1], tf.constant(captions))

        for b in batches:
            batch = {"image": b["image"], "tokens": self.tokenizer(b["caption"]), "class_id": b["class_id"]}
            terms, global_, sentence = self._eval_terms_and_features(batch)
            feats["image"].append(global_.numpy())
            feats["sentence"].append(sentence.numpy())
            feats["class_id"].append(b["class_id"].numpy())
            feats["words"].append(float(tf.reduce_mean(terms["words"])))
            feats["sent"].append(float(tf.reduce_mean(terms["sentence"])))
            feats["acc"].append(float(retrieval_accuracy(global_, sentence)))
            pool.add(b["caption"].numpy(), b["class_id"].numpy(), sentence.numpy(), encode)
        out = {k: (np.concatenate(v) if k in ("image", "sentence", "class_id") else np.asarray(v))
               for k, v in feats.items()}
        pooled = pool.arrays()
        out["pool"], out["pool_class_id"] = pooled if pooled is not None else (None, None)
        return out

    def evaluate(self, step: int) -> dict[str, float]:
        """Held-out losses, in-batch top-1 and the real images' R-precision (99 mismatched captions drawn from every
        caption of the evaluated records; fewer on a small test set, the number used in
        ``eval/real_r_precision_mismatched``); a ``skipped:`` line when R-precision cannot be computed."""
        f = self.held_out_features(int(self.config["eval_images"]))
        metrics = {"eval/words_loss": float(f["words"].mean()), "eval/sentence_loss": float(f["sent"].mean()),
                   "eval/top1_in_batch": 100.0 * float(f["acc"].mean())}
        n, folds = len(f["class_id"]), 10
        available = fewest_other_class_captions(f["class_id"], f["pool_class_id"])
        if n < folds or available < 1:
            why = (f"only {n} held-out images, {folds} folds need {folds}" if n < folds else
                   f"all {n} held-out images share one class, so no caption of another class exists")
            print(f"skipped: real R-precision ({why})", flush=True)
            return metrics
        num_mismatched = min(99, available)
        if num_mismatched < 99:
            print(f"note: real R-precision ranks each caption among {num_mismatched} mismatched captions, not 99: a "
                  f"class has only {available} captions of other classes among the {n} held-out images", flush=True)
        rp = r_precision(f["image"], f["sentence"], f["class_id"], f["pool"], f["pool_class_id"],
                         num_mismatched=num_mismatched, folds=folds, seed=0)
        metrics.update({"eval/real_r_precision": 100.0 * rp.mean, "eval/real_r_precision_std": 100.0 * rp.std,
                        "eval/real_r_precision_mismatched": float(num_mismatched)})
        return metrics

    # ------------------------------------------------------------------ export
    def export(self, path: str) -> dict[str, Any]:
        module = DamsmServing(self.tokenizer, self.text_encoder, self.image_encoder, self.image_size)
        tf.saved_model.save(module, path, signatures={"encode_text": module.encode_text,
                                                      "encode_image": module.encode_image})
        d, sd = self.feature_dim, self.sentence_dim
        description = {"model": "damsm", "image_size": self.image_size,
                       "sentence_encoder": self.config.get("sentence_encoder", "last_state"), "signatures": {
            "encode_text": {"inputs": {"text": "string [N]"},
                            "outputs": {"words": f"float32 [N,T,{d}]", "sentence": f"float32 [N,{sd}]", "mask": "bool [N,T]"}},
            "encode_image": {"inputs": {"image": "uint8 [N,H,W,3] (resized to image_size)"},
                             "outputs": {"regions": f"float32 [N,R,R,{d}]", "global": f"float32 [N,{sd}]"}}}}
        write_export_description(path, description)
        return description


class DamsmServing(tf.Module):
    """The exported encoders, taking raw strings and uint8 images."""

    def __init__(self, tokenizer: Tokenizer, text_encoder: keras.Model, image_encoder: keras.Model, image_size: int):
        super().__init__(name="damsm_serving")
        self.tokenizer, self.text_encoder, self.image_encoder = tokenizer, text_encoder, image_encoder
        self.image_size = int(image_size)
        self.encode_text = tf.function(self._encode_text, input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        self.encode_image = tf.function(self._encode_image,
                                        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")])

    def _encode_text(self, text):
        tokens = self.tokenizer(text)
        words, sentence = self.text_encoder(tokens, training=False)
        return {"words": words, "sentence": sentence, "mask": token_mask(tokens)}

    def _encode_image(self, image):
        resized = tf.image.resize(tf.cast(image, tf.float32), [self.image_size, self.image_size], antialias=True)
        regions, global_ = self.image_encoder(from_uint8(tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)),
                                              training=False)
        return {"regions": regions, "global": global_}
