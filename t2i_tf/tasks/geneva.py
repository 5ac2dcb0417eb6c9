"""GeNeVA-GAN (``--model=geneva``) as a Task for the one Trainer: draw and edit a CSS canvas, one instruction a turn.

Data: CSS edit sequences (t2i_tf/data/edit_sequences.py; the embedded ones are made on first use by
t2i_tf/datasets/css/edits.py). Training uses teacher forcing, as the paper preset (-teacher_forcing): at every turn
the generator edits the TRUE previous canvas, so all turns of a batch are drawn in one pass; only the turn GRU
runs in order. One step (hinge loss, Maluuba/GeNeVA geneva/models/recurrent_gan.py):

- D: ``relu(1 - D(x_t)) + r relu(1 + D(wrong)) + (1 - r) relu(1 + D(G(.)))`` with the wrong image and its previous
  image from another sequence of the batch at the same turn (r = ``wrong_fake_ratio``), ``aux_weight`` x BCE of the
  object detector on real and drawn canvases (target: the object types in the target scene), and ``gp_weight`` x
  the R1 penalty ``|grad_x D(x_t)|^2`` on real canvases;
- G: ``-D(G(.)) + aux_weight BCE + kl_coef KL(conditioning augmentation) + l1_coef |G(.) - x_t|_1`` (the L1 term is
  not GeNeVA's; off in the paper preset), D conditioned on a stopped ``h_t``;
- the instruction encoder, projection and turn GRU learn from D's loss (the official code: G reads a detached
  ``h_t``), plus G's with ``--text_grads_from=both``; the previous-image encoder learns from G's loss.
Losses are averaged over each sequence's real turns, then over the batch with ``tf.nn.compute_average_loss``.

Evaluation (``--mode=eval`` and during training): held-out sequences are drawn WITHOUT teacher forcing, each drawn
canvas fed back as the next previous image, from the true starting canvas; a trained CSS classifier
(``--eval_classifier``) reads every drawn canvas, scored per turn against the target scene
(t2i_tf/eval/geneva_metrics.py). In the same table: stackgan_tirg applied turn by turn (``--baseline_workdir``),
the previous true canvas left unedited (``copy_previous``: what drawing nothing new scores) and the true canvases
(``real``: how far the classifier can be trusted).
"""

from __future__ import annotations

import json
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from t2i_tf.data import edit_sequences as es
from t2i_tf.data.css_cells import NUM_CODES
from t2i_tf.data.pixels import from_uint8, quantized, to_uint8
from t2i_tf.data.text import KNOWN_WORDS_RULE, TOKENIZER_RULE, Tokenizer, known_word_counts, load_vocabulary, save_vocabulary
from t2i_tf.errors import UserError
from t2i_tf.eval.geneva_metrics import RSIM_RULE, per_turn_scores
from t2i_tf.eval.protocol import write_metrics_json
from t2i_tf.export.description import write_export_description
from t2i_tf.files import write_text_atomic
from t2i_tf.losses.kl import kl_divergence
from t2i_tf.models import geneva as gm
from t2i_tf.models.noise import NOISE_RULE, generator_noise
from t2i_tf.tasks.base import Task

NUM_OBJECT_TYPES = NUM_CODES - 1  # the CSS (size, colour, shape) types: the object detector's labels
TABLE_METRICS = ("object_precision", "object_recall", "object_f1", "rsim", "scene_accuracy", "add_accuracy",
                 "remove_accuracy")


def object_types(cells: tf.Tensor) -> tf.Tensor:
    """Multi-hot [..., NUM_OBJECT_TYPES] of the object types in cell codes [..., 9]."""
    hot = tf.one_hot(tf.cast(cells, tf.int32) - 1, NUM_OBJECT_TYPES)  # empty (0) -> all zeros
    return tf.reduce_max(hot, axis=-2)


def _masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Per-sequence mean of ``values`` [B, T] over the real turns ``mask`` [B, T] -> [B]."""
    m = tf.cast(mask, values.dtype)
    return tf.reduce_sum(values * m, axis=1) / tf.maximum(tf.reduce_sum(m, axis=1), 1.0)


class GenevaTask(Task):
    """Trains the GeNeVA recurrent generator and its projection discriminator on CSS edit sequences."""

    name = "geneva"
    architecture_keys = ("image_size", "word_dim", "sentence_dim", "hidden_dim", "z_dim", "c_dim", "generator_dims",
                         "image_encoder_dims", "discriminator_dims", "d_fusion_block", "spectral_norm", "max_text_len")

    @classmethod
    def records_image_size(cls, config: dict[str, Any]) -> int:
        """Embedded records are rendered at 64 px (what the stackgan_tirg baseline reads) or the model's size if larger."""
        return max(64, int(config["image_size"]))

    # ------------------------------------------------------------------ setup
    def prepare(self, workdir: str) -> None:
        c = self.config
        self.workdir = workdir
        self.data_dir = c["data_dir"]
        info = es.read_edit_info(self.data_dir)
        self.records_size = int(info["image_size"])
        self.eval_split = "test" if "test" in info.get("splits", {}) else "train"
        self.image_size = int(c["image_size"])
        try:
            self.g_dims = gm.parse_dims(c["generator_dims"], "generator_dims")
            self.enc_dims = gm.parse_dims(c["image_encoder_dims"], "image_encoder_dims")
            self.d_dims = gm.parse_dims(c["discriminator_dims"], "discriminator_dims")
        except ValueError as e:
            raise UserError(str(e)) from None
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise UserError(f"--image_size must be a power of 2 >= 8; got {self.image_size}")
        if int(c["sentence_dim"]) % 2:
            raise UserError(f"--sentence_dim must be even (half per GRU direction); got {c['sentence_dim']}")
        self.fuse_size = self.image_size // 2 ** len(self.enc_dims)
        self.vocabulary = load_vocabulary(workdir)
        if self.vocabulary is None:
            self.vocabulary = list(info.get("instruction_words") or [])
            if not self.vocabulary:
                raise UserError(f"{self.data_dir}/info.json has no instruction_words: make the records again")
            os.makedirs(workdir, exist_ok=True)
            save_vocabulary(self.vocabulary, workdir)
        self.tokenizer = Tokenizer(self.vocabulary, int(c["max_text_len"]))
        self._classifier: Any = None
        self._baseline: Any = None

    def build(self, strategy: tf.distribute.Strategy) -> None:
        c = self.config
        self.strategy = strategy
        self.check_batch_split(strategy)
        s, hidden = self.image_size, int(c["hidden_dim"])
        with strategy.scope():
            try:
                self.sentence = gm.SentenceEncoder(self.tokenizer.vocab_size, int(c["word_dim"]), int(c["sentence_dim"]),
                                                   name="sentence_encoder")
                self.projection = gm.InstructionProjection(hidden, name="instruction_projection")
                self.turn_rnn = gm.TurnRnn(hidden, name="turn_rnn")
                self.image_encoder = gm.ImageEncoder(self.enc_dims, name="image_encoder")
                self.generator = gm.GenevaGenerator(s, self.g_dims, int(c["c_dim"]), self.fuse_size, self.enc_dims[-1],
                                                    name="generator")
                self.discriminator = gm.GenevaDiscriminator(s, self.d_dims, int(c["d_fusion_block"]), NUM_OBJECT_TYPES,
                                                            bool(c["spectral_norm"]), name="discriminator")
            except ValueError as e:
                raise UserError(str(e)) from None
            images = tf.zeros([2, s, s, 3])
            h, _ = self.turn_rnn((self.projection(self.sentence(tf.zeros([2, 3], tf.int64))), tf.zeros([2, hidden])))
            self.generator({"z": tf.zeros([2, int(c["z_dim"])]), "h": h, "features": self.image_encoder(images)})
            self.discriminator({"images": images, "h": h, "prev_images": images})
            gan = {"beta_1": float(c["beta1"]), "beta_2": float(c["beta2"])}
            self.optimizers = {
                "g": (keras.optimizers.Adam(float(c["learning_rate"]), name="g_optimizer", **gan), [self.generator]),
                "d": (keras.optimizers.Adam(float(c["d_learning_rate"]), name="d_optimizer", **gan),
                      [self.discriminator]),
                "rnn": (keras.optimizers.Adam(float(c["rnn_learning_rate"]), name="rnn_optimizer"), [self.turn_rnn]),
                "sentence": (keras.optimizers.Adam(float(c["sentence_learning_rate"]), name="sentence_optimizer"),
                             [self.sentence]),
                "encoder": (keras.optimizers.Adam(float(c["encoder_learning_rate"]), name="encoder_optimizer"),
                            [self.projection, self.image_encoder]),
            }
            for opt, models in self.optimizers.values():
                opt.build(self._variables(models))
            self.rng = tf.random.Generator.from_seed(int(c.get("seed", 0)))

    @staticmethod
    def _variables(models: list[keras.Model]) -> list[tf.Variable]:
        return [v for m in models for v in m.trainable_variables]

    def checkpoint_items(self) -> dict[str, Any]:
        items: dict[str, Any] = {"sentence_encoder": self.sentence, "instruction_projection": self.projection,
                                 "turn_rnn": self.turn_rnn, "image_encoder": self.image_encoder,
                                 "generator": self.generator, "discriminator": self.discriminator, "rng": self.rng}
        items.update({f"{k}_optimizer": opt for k, (opt, _) in self.optimizers.items()})
        return items

    # ------------------------------------------------------------------- data
    def model_inputs(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """A batch of padded sequences plus its token ids [B, T, L] and object types [B, T+1, K]."""
        tokens = tf.reshape(self.tokenizer(tf.reshape(b["instructions"], [-1])),
                            [-1, es.MAX_TURNS, int(self.config["max_text_len"])])
        return dict(b, tokens=tokens, types=object_types(b["cells"]))

    def train_dataset(self, input_context: tf.distribute.InputContext, seed: int) -> tf.data.Dataset:
        per_replica = input_context.get_per_replica_batch_size(self.global_batch_size)
        ds = es.edit_dataset(self.data_dir, "train", per_replica, self.image_size, training=True, seed=seed,
                             input_context=input_context)
        return ds.map(self.model_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    # -------------------------------------------------------------- networks
    def conditions(self, tokens: tf.Tensor, training: bool = False) -> tf.Tensor:
        """h_t [B, T, H] of every turn of token ids [B, T, L] (the turn GRU from a zero state)."""
        b, t = tf.shape(tokens)[0], tokens.shape[1]
        x = self.projection(self.sentence(tf.reshape(tokens, [b * t, tokens.shape[-1]]), training=training),
                            training=training)
        x = tf.reshape(x, [b, t, -1])
        state = tf.zeros([b, int(self.config["hidden_dim"])])
        out = []
        for i in range(t):
            h, state = self.turn_rnn((x[:, i], state), training=training)
            out.append(h)
        return tf.stack(out, axis=1)

    def draw(self, prev: tf.Tensor, h: tf.Tensor, z: tf.Tensor, ca_noise: tf.Tensor | None = None,
             training: bool = False) -> dict[str, tf.Tensor]:
        """The generator's canvas for previous canvases ``prev`` [N, S, S, 3] and conditions ``h`` [N, H]."""
        inputs = {"z": z, "h": h, "features": self.image_encoder(prev, training=training)}
        if ca_noise is not None:
            inputs["ca_noise"] = ca_noise
        return self.generator(inputs, training=training)

    # ------------------------------------------------------------------- step
    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self._step(batch)

    @tf.autograph.experimental.do_not_convert
    def _step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        c = self.config
        t = es.MAX_TURNS
        images, mask = batch["images"], batch["turn_mask"]
        b = tf.shape(images)[0]
        n = b * t
        flat = lambda x: tf.reshape(x, tf.concat([[n], tf.shape(x)[2:]], 0))  # [B, T, ...] -> [BT, ...]
        prev, target = flat(images[:, :-1]), flat(images[:, 1:])
        wrong, wrong_prev = flat(tf.roll(images[:, 1:], 1, axis=0)), flat(tf.roll(images[:, :-1], 1, axis=0))
        types = flat(batch["types"][:, 1:])
        z = self.rng.normal([n, int(c["z_dim"])])
        ca_noise = self.rng.normal([n, int(c["c_dim"])])
        ratio, aux_w = float(c["wrong_fake_ratio"]), float(c["aux_weight"])
        per_seq = lambda v: _masked_mean(tf.reshape(v, [b, t]), mask)
        avg = lambda v: tf.nn.compute_average_loss(v, global_batch_size=self.global_batch_size)
        bce = lambda logits: tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=types, logits=logits), axis=1)
        both = c["text_grads_from"] == "both"
        with tf.GradientTape(persistent=True) as tape:
            h = tf.reshape(self.conditions(batch["tokens"], training=True), [n, -1])
            out = self.draw(prev, h if both else tf.stop_gradient(h), z, ca_noise, training=True)
            fake = out["images"]
            with tf.GradientTape() as gp_tape:
                gp_tape.watch(target)
                scores, aux = self.discriminator(
                    {"images": tf.concat([target, tf.stop_gradient(fake), wrong], 0), "h": tf.concat([h, h, h], 0),
                     "prev_images": tf.concat([prev, prev, wrong_prev], 0)}, training=True)
                real_s, fake_s, wrong_s = tf.split(scores, 3)
                real_sum = tf.reduce_sum(real_s)
            r1 = tf.reduce_sum(tf.square(gp_tape.gradient(real_sum, target)), axis=[1, 2, 3])
            aux_real, aux_fake, _ = tf.split(aux, 3)
            d_adv = tf.nn.relu(1.0 - real_s) + ratio * tf.nn.relu(1.0 + wrong_s) + (1.0 - ratio) * tf.nn.relu(1.0 + fake_s)
            d_aux = aux_w * (bce(aux_real) + bce(aux_fake))
            d_total = per_seq(d_adv + d_aux + float(c["gp_weight"]) * r1)
            g_s, g_aux = self.discriminator({"images": fake, "h": tf.stop_gradient(h), "prev_images": prev},
                                            training=True)
            kl = kl_divergence(out["mu"], out["logvar"])
            l1 = tf.reduce_mean(tf.abs(fake - target), axis=[1, 2, 3])
            g_total = per_seq(-g_s + aux_w * bce(g_aux) + float(c["kl_coef"]) * kl + float(c["l1_coef"]) * l1)
            d_loss, g_loss = avg(d_total), avg(g_total)
        text_models = [self.sentence, self.projection, self.turn_rnn]
        grads = {id(v): g for v, g in self._grads(tape, d_loss, [self.discriminator] + text_models)}
        for v, g in self._grads(tape, g_loss, [self.generator, self.image_encoder] + (text_models if both else [])):
            old = grads.get(id(v))
            grads[id(v)] = g if old is None else old if g is None else tf.convert_to_tensor(old) + tf.convert_to_tensor(g)
        del tape
        clip = float(c["rnn_grad_clip"])
        for key, (opt, models) in self.optimizers.items():
            variables = self._variables(models)
            gs = [grads.get(id(v)) for v in variables]
            gs = [tf.zeros_like(v) if g is None else g for v, g in zip(variables, gs)]
            if clip > 0 and key in ("rnn", "sentence"):
                gs, _ = tf.clip_by_global_norm(gs, clip)
            opt.apply_gradients(zip(gs, variables))
        return {"d_loss": tf.reduce_mean(d_total), "g_loss": tf.reduce_mean(g_total),
                "r1": tf.reduce_mean(per_seq(r1)), "d_aux": tf.reduce_mean(per_seq(d_aux)),
                "l1": tf.reduce_mean(per_seq(l1)), "kl": tf.reduce_mean(per_seq(kl)),
                "d_real": tf.reduce_mean(per_seq(real_s)), "d_fake": tf.reduce_mean(per_seq(fake_s))}

    def _grads(self, tape: tf.GradientTape, loss: tf.Tensor, models: list[keras.Model]):
        variables = self._variables(models)
        return zip(variables, tape.gradient(loss, variables))

    # ------------------------------------------------------------------- eval
    def draw_sequences(self, batch: dict[str, tf.Tensor], seed: int) -> tf.Tensor:
        """Float [-1, 1] canvases [B, T, S, S, 3] of every turn, each drawn from the previous DRAWN canvas (rounded to
        uint8 first, as a saved image), from the batch's true starting canvas; z of turn t from (seed, stream t)."""
        h = self.conditions(batch["tokens"])
        prev, out = batch["images"][:, 0], []
        n = tf.shape(prev)[0]
        for t in range(es.MAX_TURNS):
            prev = quantized(self.draw(prev, h[:, t], generator_noise(n, int(self.config["z_dim"]), seed, t))["images"])
            out.append(prev)
        return tf.stack(out, axis=1)

    def eval_sequences(self, image_size: int | None = None):
        """The first ``--eval_images`` held-out sequences in file order, with their model inputs."""
        c = self.config
        for b in es.held_out_sequences(self.data_dir, self.eval_split, image_size or self.image_size,
                                       int(c["eval_images"]), int(c["eval_batch_size"])):
            yield self.model_inputs(b)

    def _load_classifier(self):
        path = self.config["eval_classifier"]
        if self._classifier is None and path and os.path.isdir(path):  # loaded once (tests may set their own)
            from t2i_tf.eval.css_semantic import load_css_classifier

            self._classifier = load_css_classifier(path)
        return self._classifier

    def evaluate(self, step: int) -> dict[str, float]:
        """Per-turn object P/R/F1, rsim and scene accuracy (percent) of the drawn sequences and the references;
        the full scores and the protocol go to ``<workdir>/eval/geneva_metrics_step<step>.json``."""
        from t2i_tf.eval.generator_eval import in_chunks

        classifier = self._load_classifier()
        seed = int(self.config["seed"])
        rows: dict[str, list[np.ndarray]] = {"geneva": [], "copy_previous": [], "real": []}
        targets, befores, masks, l1 = [], [], [], []
        for batch in self.eval_sequences():
            drawn = self.draw_sequences(batch, seed)
            mask = batch["turn_mask"].numpy()
            err = np.abs(drawn.numpy() - batch["images"][:, 1:].numpy()).mean(axis=(2, 3, 4))
            l1.append(err[mask])
            masks.append(mask)
            targets.append(batch["cells"][:, 1:].numpy())
            befores.append(batch["cells"][:, :-1].numpy())
            if classifier is None:
                continue
            read = lambda x: in_chunks(classifier.predict_cells, tf.reshape(x, [-1, *x.shape[2:]])).reshape(
                x.shape[0], x.shape[1], -1)
            rows["geneva"].append(read(drawn))
            rows["copy_previous"].append(read(batch["images"][:, :-1]))
            rows["real"].append(read(batch["images"][:, 1:]))
        mask, target, before = np.concatenate(masks), np.concatenate(targets), np.concatenate(befores)
        metrics: dict[str, float] = {"geneva_all/pixel_l1": float(np.concatenate(l1).mean())}
        protocol = self.eval_protocol(len(mask))
        if classifier is None:
            protocol["skipped"] = [(f"per-turn object metrics: no CSS classifier at --eval_classifier="
                                    f"{self.config['eval_classifier']!r} (python main.py --model=css_classifier "
                                    "--image_size=32)")]
            print(f"note: {protocol['skipped'][0]}", flush=True)
        else:
            preds = {k: np.concatenate(v) for k, v in rows.items()}
            baseline = self.baseline_cells(classifier, len(mask), protocol)
            if baseline is not None:
                preds["stackgan_tirg"] = baseline
            scores = {row: per_turn_scores(pred, target, mask, before) for row, pred in preds.items()}
            protocol["scores"] = scores
            for row, turns in scores.items():
                for turn, values in turns.items():
                    metrics.update({f"{row}_{turn}/{k}": 100.0 * values[k] for k in TABLE_METRICS
                                    if np.isfinite(values.get(k, np.nan))})  # a turn may have no removes
        write_metrics_json(os.path.join(self.workdir, "eval", f"geneva_metrics_step{step}.json"), metrics, protocol,
                           step)
        return metrics

    def eval_protocol(self, num_sequences: int) -> dict[str, Any]:
        return {"model": "geneva", "image_size": self.image_size, "data_dir": os.path.abspath(self.data_dir),
                "eval_split": self.eval_split, "sequences": num_sequences, "seed": int(self.config["seed"]),
                "drawing": "no teacher forcing: each drawn canvas (rounded to uint8) is the next turn's previous "
                           "image, from the true starting canvas; z of turn t = generator_noise(B, z_dim, seed, t); "
                           "conditioning augmentation at its mean",
                "classifier": os.path.abspath(self.config["eval_classifier"]) if self.config["eval_classifier"] else None,
                "objects": "t2i_tf/eval/css_semantic.py semantic_scores per turn (object = cell, size, colour, shape; "
                           "micro-averaged) against the target scene after that turn",
                "rsim": RSIM_RULE,
                "edits": "add_accuracy / remove_accuracy: of the cells an add / remove turn changed, those read exactly "
                         "right (the new object in its cell / the cell empty); copying the previous canvas scores 0",
                "rows": {"geneva": "this model", "stackgan_tirg": "the --baseline_workdir run turn by turn: source = "
                         "its previous output (the true canvas at turn 1), resized to its records' size",
                         "copy_previous": "the true previous canvas, unedited", "real": "the true target canvas"}}

    # --------------------------------------------------------------- baseline
    def baseline_cells(self, classifier: Any, num_sequences: int, protocol: dict[str, Any]) -> np.ndarray | None:
        """Cells [N, T, 9] the classifier reads from stackgan_tirg's turn-by-turn drawings of the evaluated sequences
        (cached in ``<workdir>/eval`` per baseline checkpoint); None without a baseline run."""
        path = self.config["baseline_workdir"]
        ckpt = tf.train.latest_checkpoint(os.path.join(path, "checkpoints")) if path and os.path.isdir(path) else None
        if ckpt is None:
            protocol.setdefault("skipped", []).append(f"stackgan_tirg baseline: no trained run at --baseline_workdir="
                                                      f"{path!r} (train --model=tirg, then --model=stackgan_tirg)")
            return None
        step = int(ckpt.rsplit("-", 1)[1])
        key = {"baseline_workdir": os.path.abspath(path), "baseline_step": step, "sequences": num_sequences,
               "data_dir": os.path.abspath(self.data_dir), "seed": int(self.config["seed"]),
               "classifier": os.path.abspath(self.config["eval_classifier"])}
        cache = os.path.join(self.workdir, "eval", "stackgan_tirg_baseline_cells.json")
        protocol["baseline"] = key
        if os.path.isfile(cache):
            with open(cache) as f:
                saved = json.load(f)
            if saved.get("key") == key:
                return np.asarray(saved["cells"], np.int64)
        cells = self._run_baseline(classifier, path)
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        write_text_atomic(cache, json.dumps({"key": key, "cells": cells.tolist()}))
        return cells

    def _run_baseline(self, classifier: Any, path: str) -> np.ndarray:
        from t2i_tf.eval.generator_eval import in_chunks
        from t2i_tf.runs.restore import restore_task

        if self._baseline is None:
            self._baseline, _ = restore_task("stackgan_tirg", path)
        base = self._baseline
        size = base.records_size
        seed, z_dim = int(self.config["seed"]), int(base.config["z_dim"])
        out = []
        for batch in es.held_out_sequences(self.data_dir, self.eval_split, size, int(self.config["eval_images"]),
                                           int(self.config["eval_batch_size"])):
            src = quantized(batch["images"][:, 0])
            n, cells = int(src.shape[0]), []
            for t in range(es.MAX_TURNS):
                cond = base.condition({"source": src, "tokens": base.tirg.tokenizer(batch["instructions"][:, t])})
                fake = quantized(base.fake_images(generator_noise(n, z_dim, seed, t), cond))
                cells.append(in_chunks(classifier.predict_cells, fake))
                src = from_uint8(tf.clip_by_value(tf.round(tf.image.resize(to_uint8(fake), [size, size],
                                                                            antialias=True)), 0, 255))
            out.append(np.stack(cells, axis=1))
        return np.concatenate(out)

    # -------------------------------------------------------------- summaries
    def summaries(self, step: int) -> None:
        """Rows of [true canvas, true turns..., drawn turns...] for the first held-out sequences."""
        from t2i_tf.tasks.gan_cls import image_grid

        batch = next(self.eval_sequences())
        k = min(int(self.config["num_samples"]), int(batch["images"].shape[0]))
        batch = {key: v[:k] for key, v in batch.items()}
        drawn = self.draw_sequences(batch, int(self.config["seed"]))
        rows = tf.concat([batch["images"], drawn], axis=1)
        tf.summary.image("episodes_true_then_drawn", image_grid(to_uint8(tf.reshape(rows, [-1, *rows.shape[2:]])),
                                                                cols=int(rows.shape[1])), max_outputs=1)

    # ------------------------------------------------------------------ export
    def export(self, path: str) -> dict[str, Any]:
        """SavedModel ``edit(image uint8 [N,H,W,3], text string [N], seed int64)`` (a first turn) and
        ``edit_with_state(image, text, state float32 [N, hidden_dim], seed)`` (a later one) -> images, state,
        known_words."""
        module = GenevaServing(self)
        tf.saved_model.save(module, path, signatures={"edit": module.edit, "edit_with_state": module.edit_with_state})
        s, hidden = self.image_size, int(self.config["hidden_dim"])
        outputs = {"images": f"uint8 [N,{s},{s},3] the edited canvases",
                   "state": f"float32 [N,{hidden}] the turn GRU's state: pass it to edit_with_state with the next "
                            "instruction", "known_words": KNOWN_WORDS_RULE}
        description = {
            "model": "geneva", "image_size": s, "z_dim": int(self.config["z_dim"]), "hidden_dim": hidden,
            "signatures": {
                "edit": {"inputs": {"image": "uint8 [N,H,W,3] the canvas to edit (resized to the model's size)",
                                    "text": "string [N] one instruction per image", "seed": "int64 scalar"},
                         "outputs": outputs},
                "edit_with_state": {"inputs": {"image": "uint8 [N,H,W,3]", "text": "string [N]",
                                               "state": f"float32 [N,{hidden}] from the previous turn",
                                               "seed": "int64 scalar"}, "outputs": outputs}},
            "episode": "turn 1: edit(blank or starting canvas, instruction); turn t > 1: edit_with_state(the previous "
                       "output image, next instruction, the previous output state)",
            "instructions": es.INSTRUCTION_RULE, "tokenizer": TOKENIZER_RULE, "vocabulary_size": len(self.vocabulary),
            "noise": NOISE_RULE + "; conditioning augmentation at its mean"}
        write_export_description(path, description)
        return description


class GenevaServing(tf.Module):
    """The exported module: tokenizer, instruction encoder, turn GRU, previous-image encoder and generator."""

    def __init__(self, task: GenevaTask):
        super().__init__(name="geneva_serving")
        self.tokenizer, self.sentence, self.projection = task.tokenizer, task.sentence, task.projection
        self.turn_rnn, self.image_encoder, self.generator = task.turn_rnn, task.image_encoder, task.generator
        self.image_size, self.z_dim = task.image_size, int(task.config["z_dim"])
        self.hidden_dim = int(task.config["hidden_dim"])
        image = tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")
        text, seed = tf.TensorSpec([None], tf.string, name="text"), tf.TensorSpec([], tf.int64, name="seed")
        self.edit = tf.function(self._edit, input_signature=[image, text, seed])
        self.edit_with_state = tf.function(self._edit_with_state, input_signature=[
            image, text, tf.TensorSpec([None, None], tf.float32, name="state"), seed])

    def _edit(self, image, text, seed):
        return self._edit_with_state(image, text, tf.zeros([tf.shape(image)[0], self.hidden_dim]), seed)

    def _edit_with_state(self, image, text, state, seed):
        n = tf.shape(image)[0]
        checks = [
            tf.debugging.assert_equal(tf.shape(text)[0], n, message="edit: give one instruction (text) per image"),
            tf.debugging.assert_equal(tf.shape(state), tf.stack([n, self.hidden_dim]),
                                      message=f"edit_with_state: state must be float32 [N, {self.hidden_dim}], one "
                                              "row per image (the previous turn's output state)"),
            tf.debugging.assert_positive(tf.shape(image)[1:3], message="edit: the image has no pixels")]
        with tf.control_dependencies(checks):
            src = tf.image.resize(tf.cast(image, tf.float32), [self.image_size, self.image_size], antialias=True)
        src = tf.clip_by_value(tf.round(src), 0.0, 255.0) / 127.5 - 1.0
        tokens = self.tokenizer(text)
        h, new_state = self.turn_rnn((self.projection(self.sentence(tokens)), state))
        z = generator_noise(n, self.z_dim, seed)
        out = self.generator({"z": z, "h": h, "features": self.image_encoder(src)})
        return {"images": to_uint8(out["images"]), "state": new_state, "known_words": known_word_counts(tokens)}
