"""What a conditional GAN step is conditioned on, as parts a generator task is composed with.

A conditioner reads its inputs from a batch, turns them into the condition vector G and D see, owns the
networks that make it (trained alongside the GAN, or frozen from another run) and says what it adds to
checkpoints, evaluation and the metrics protocol:

- :class:`Unconditional`: nothing (vanilla GANs);
- :class:`PrecomputedEmbeddings`: the records' text embeddings (Reed's char-CNN-RNN);
- :class:`SentenceEncoderConditioner`: a BiLSTM sentence encoder on raw captions, co-trained with a CNN image
  encoder by an in-batch matching loss (GAN-CLS, StackGAN Stage-I), or frozen from Stage-I (Stage-II);
- :class:`TirgConditioner`: a frozen TIRG run's composed (source image, modification text) feature.

(AttnGAN's frozen DAMSM gives word features as well as a sentence vector; its task holds it directly.)
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from t2i_tf.data.text import Tokenizer
from t2i_tf.data.word_swaps import WordSwapper
from t2i_tf.errors import UserError
from t2i_tf.models.sentence_encoder import (GridImageEncoder, ImageEncoder, SentenceEncoder, WordSlotEncoder,
                                            matching_accuracy, matching_loss, normalize_sentence)


class Conditioner:
    """The condition of a conditional GAN (the base is also the interface)."""

    kind = "none"  # the metrics protocol's and the export description's name for it
    dim = 0  # size of the condition vector; 0: unconditional
    tokenizer: Tokenizer | None = None  # raw text in, when the condition comes from captions

    def build(self) -> None:
        """Create the conditioner's networks (inside the strategy scope)."""

    def inputs(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The model inputs it needs, read from a text-to-image record batch (in the tf.data pipeline)."""
        return {}

    def condition(self, batch: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor | None:
        """The condition vectors [N, dim] of a batch of model inputs (None when unconditional)."""
        return None

    def train_update(self, batch: dict[str, tf.Tensor], images: tf.Tensor,
                     global_batch_size: int) -> tuple[tf.Tensor | None, dict[str, tf.Tensor]]:
        """One update of the networks trained alongside the GAN (none here); returns the batch's condition, fixed
        for the GAN update (no gradient flows back into the conditioner), and metrics."""
        cond = self.condition(batch, training=False)
        return (None if cond is None else tf.stop_gradient(cond)), {}

    def checkpoint_items(self) -> dict[str, Any]:
        """Trackables this run saves (networks it trains; frozen ones are saved by the run that trained them)."""
        return {}

    def eval_metrics(self, batch: dict[str, tf.Tensor], images: tf.Tensor) -> dict[str, float]:
        """Cheap numbers on a held-out batch with its real images."""
        return {}

    def matching_features(self, images: tf.Tensor, batch: dict[str, tf.Tensor]):
        """(image features, condition features) for R-precision, or None without matching encoders."""
        return None

    def protocol(self) -> dict[str, Any]:
        """Facts for the metrics JSON."""
        return {"text_encoder": self.kind}


class Unconditional(Conditioner):
    """No condition: vanilla GAN / WGAN."""


class PrecomputedEmbeddings(Conditioner):
    """The records' precomputed text embeddings (``embedding``, [N, dim])."""

    kind = "pretrained_embeddings"

    def __init__(self, dim: int):
        self.dim = int(dim)

    def inputs(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {"embedding": batch["embedding"]}

    def condition(self, batch: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return batch["embedding"]


class SentenceEncoderConditioner(Conditioner):
    """A BiLSTM sentence encoder on raw captions (its normalised sentence vector is the condition), trained with
    an in-batch matching loss against a CNN image encoder, or frozen (``trains=False``: Stage-II shares
    Stage-I's through :meth:`share`)."""

    def __init__(self, tokenizer: Tokenizer, config: dict[str, Any], image_size: int, trains: bool = True,
                 kind: str = "bilstm"):
        if kind not in ("bilstm", "word_slots"):
            raise ValueError(f"sentence encoder kind must be bilstm or word_slots, not {kind!r}")
        self.kind = kind  # bilstm: mean-pooled BiLSTM states; word_slots: words routed to grid cells (a layout)
        self.tokenizer = tokenizer
        self.config = config
        self.image_size = int(image_size)
        self.dim = int(config["text_dim"])
        self.trains = trains
        self.text_encoder: keras.Model | None = None
        self.image_encoder: keras.Model | None = None
        self.swap_negatives = int(config.get("swap_negatives", 0)) if trains else 0
        self.swapper = (WordSwapper(tokenizer.vocabulary, config["swap_word_groups"])
                        if self.swap_negatives else None)

    def build(self) -> None:
        if not self.trains:
            return  # shared from the run that trained it (share)
        c, s = self.config, self.image_size
        embed, hidden, width = int(c["text_embed_dim"]), int(c["text_hidden_dim"]), int(c["encoder_width"])
        if self.kind == "word_slots":
            grid = int(c["slot_grid"])
            try:
                self.text_encoder = WordSlotEncoder(self.tokenizer.vocab_size, embed, hidden, self.dim, grid,
                                                    name="sentence_encoder")
                self.image_encoder = GridImageEncoder(s, width, self.dim, grid, name="image_encoder")
            except ValueError as e:
                raise UserError(f"--text_encoder=word_slots: {e}") from None
        else:
            self.text_encoder = SentenceEncoder(self.tokenizer.vocab_size, embed, hidden, self.dim,
                                                name="sentence_encoder")
            self.image_encoder = ImageEncoder(s, width, self.dim, name="image_encoder")
        self.text_encoder(tf.ones([2, int(c["max_text_len"])], tf.int64))
        self.image_encoder(tf.zeros([2, s, s, 3]))
        self.optimizer = keras.optimizers.Adam(float(c["encoder_learning_rate"]), beta_1=0.5, beta_2=0.999,
                                               name="encoder_optimizer")
        self.optimizer.build(self._variables())

    def share(self, trained: "SentenceEncoderConditioner") -> None:
        """Use another run's encoders, frozen."""
        self.text_encoder, self.image_encoder = trained.text_encoder, trained.image_encoder

    def _variables(self) -> list:
        return self.text_encoder.trainable_variables + self.image_encoder.trainable_variables

    def inputs(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {"tokens": self.tokenizer(batch["caption"])}

    def condition(self, batch: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return normalize_sentence(self.text_encoder(batch["tokens"], training=training))

    def train_update(self, batch, images, global_batch_size):
        if not self.trains:
            return super().train_update(batch, images, global_batch_size)
        variables = self._variables()
        with tf.GradientTape() as tape:
            sentences = self.text_encoder(batch["tokens"], training=True)
            negatives = self._hard_negatives(batch["tokens"]) if self.swapper is not None else {}
            per_example = matching_loss(sentences, self.image_encoder(images, training=True),
                                        float(self.config["match_gamma"]), **negatives)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return tf.stop_gradient(normalize_sentence(sentences)), {"match_loss": tf.reduce_mean(per_example)}

    def _hard_negatives(self, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
        """``swap_negatives`` swapped-word captions per caption, encoded (t2i_tf/data/word_swaps.py); the swaps are
        seeded by the encoder optimizer's step and the replica, so a resumed run draws the same ones."""
        step = tf.cast(self.optimizer.iterations, tf.int64)
        context = tf.distribute.get_replica_context()  # the default context (replica 0) without a strategy
        replica = tf.cast(context.replica_id_in_sync_group if context is not None else 0, tf.int64)
        swapped, valid = [], []
        for k in range(self.swap_negatives):
            ids, ok = self.swapper(tokens, tf.stack([step, replica * 1000 + k]))
            swapped.append(ids)
            valid.append(ok)
        n = tf.shape(tokens)[0]
        encoded = self.text_encoder(tf.concat(swapped, axis=0), training=True)  # [K * n, D]
        encoded = tf.transpose(tf.reshape(encoded, [self.swap_negatives, n, -1]), [1, 0, 2])
        return {"negative_sentences": encoded, "negative_valid": tf.stack(valid, axis=1)}

    def checkpoint_items(self) -> dict[str, Any]:
        if not self.trains:
            return {}
        return {"text_encoder": self.text_encoder, "image_encoder": self.image_encoder,
                "encoder_optimizer": self.optimizer}

    def eval_metrics(self, batch, images):
        sentences = self.text_encoder(batch["tokens"], training=False)
        return {"eval/match_r1": 100.0 * float(matching_accuracy(sentences, self.image_encoder(images, training=False)))}

    def matching_features(self, images, batch):
        return (self.image_encoder(images, training=False).numpy(),
                self.text_encoder(batch["tokens"], training=False).numpy())

    def protocol(self) -> dict[str, Any]:
        return {"text_encoder": self.kind,
                "r_precision_encoders": (
                    "the BiLSTM sentence encoder and CNN image encoder trained alongside the GAN with the matching "
                    "loss (a DAMSM stand-in, not AttnGAN's DAMSM)" if self.kind == "bilstm" else
                    "the word-slot text encoder and grid CNN image encoder trained alongside the GAN with the "
                    "matching loss (a DAMSM stand-in, not AttnGAN's DAMSM)")}


class TirgConditioner(Conditioner):
    """A frozen TIRG run's composed feature of (``source`` image, modification ``tokens``)."""

    kind = "tirg composed feature (frozen)"

    def __init__(self, dim: int):
        self.dim = int(dim)
        self.tirg: Any = None

    def attach(self, tirg_task: Any) -> None:
        """The restored TIRG task (frozen: its networks are saved by its own run)."""
        self.tirg = tirg_task
        self.tokenizer = tirg_task.tokenizer

    def condition(self, batch: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return self.tirg.model.compose(batch["source"], batch["tokens"], training=False)

    def matching_features(self, images, batch):
        """(TIRG embedding of the images, the composed query): R-precision in TIRG's retrieval space."""
        s = self.tirg.image_size
        resized = tf.image.resize(images, [s, s], method="bilinear") if images.shape[1] != s else images
        return (self.tirg.model.embed_images(resized, training=False).numpy(), self.condition(batch).numpy())
