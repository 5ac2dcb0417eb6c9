"""TIRG composed retrieval as a Task: CSS data, metric losses, Recall@K, SavedModel export."""

from __future__ import annotations

import os
import sys
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from t2i_tf.data import css
from t2i_tf.data.records import read_info
from t2i_tf.data.text import check_captions, Tokenizer, load_vocabulary, save_vocabulary
from t2i_tf.errors import UserError
from t2i_tf.eval.retrieval import recall_at_k, top_k_gallery
from t2i_tf.export.tirg import export_tirg
from t2i_tf.import_torch.tirg import official_vocabulary  # google/tirg's rule: imported checkpoints' word ids line up
from t2i_tf.losses.metric import batch_classification_loss, sampled_soft_triplet_loss, soft_triplet_loss
from t2i_tf.models.tirg import ComposedRetrievalModel, torch_initialize
from t2i_tf.tasks.base import RetrievalTask
from t2i_tf.distribute import gather_global

RECALL_KS = (1, 5, 10, 50)


def parse_blocks(text: str | tuple[int, ...]) -> tuple[int, ...]:
    """'2,2,2,2' -> (2, 2, 2, 2) with a clear error for anything else."""
    if isinstance(text, (tuple, list)):
        return tuple(int(b) for b in text)
    try:
        blocks = tuple(int(b) for b in str(text).split(","))
    except ValueError:
        blocks = ()
    if not blocks or any(b < 1 for b in blocks):
        raise UserError(f"--image_blocks must be comma-separated positive ints like 2,2,2,2; got {text!r}")
    return blocks


# Settings added after runs were saved without them: their value for such runs is the behaviour those runs had.
LEGACY = {"weight_init": "keras", "image_padding": "same", "image_input_norm": "none", "image_weights": "",
          "triplet_negatives": 0, "weight_decay_mode": "decoupled"}


def setting(config: dict[str, Any], key: str) -> Any:
    """``config[key]``, or for a run saved before ``key`` existed, the behaviour it was trained with."""
    return config[key] if key in config else LEGACY[key]


def model_from_config(config: dict[str, Any], vocab_size: int, name: str = "tirg") -> ComposedRetrievalModel:
    """The (unbuilt) :class:`ComposedRetrievalModel` a TIRG config describes."""
    c = config
    return ComposedRetrievalModel(
        vocab_size=vocab_size,
        composition=c["composition"],
        embed_dim=c["embed_dim"],
        image_width=c["image_width"],
        image_blocks=parse_blocks(c["image_blocks"]),
        image_stem=c["image_stem"],
        text_embed_dim=c["text_embed_dim"],
        text_hidden_dim=c["text_hidden_dim"],
        text_dropout=c["text_dropout"],
        normalize_scale=c["normalize_scale"],
        image_pool=c["image_pool"],
        image_padding=setting(c, "image_padding"),
        image_input_norm=setting(c, "image_input_norm"),
        name=name,
    )


class TorchSGD(keras.optimizers.Optimizer):
    """torch.optim.SGD (dampening 0, nesterov False) as a Keras optimizer, for google/tirg's optimiser.

    Per variable: d = g + weight_decay * w (L2 coupled to the gradient, before momentum);
    buf = momentum * buf + d (buf starts at 0, so the first step's buf = d, as torch's);
    w -= lr * buf, with the learning rate of this step (torch scales the whole buffer by the current
    lr; Keras's SGD folds each step's lr into its velocity, which differs once the rate decays).
    """

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, l2: float = 0.0, name: str = "torch_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = float(momentum)
        self.l2 = float(l2)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum") if self.momentum else []

    def update_step(self, gradient, variable, learning_rate):
        lr = keras.ops.cast(learning_rate, variable.dtype)
        d = keras.ops.cast(gradient, variable.dtype)
        if self.l2:
            d = d + keras.ops.cast(self.l2, variable.dtype) * variable
        if self.momentum:
            buf = self.momentums[self._get_variable_index(variable)]
            self.assign(buf, keras.ops.cast(self.momentum, variable.dtype) * buf + d)
            d = buf
        self.assign_sub(variable, lr * d)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "l2": self.l2}


class TirgTask(RetrievalTask):
    """Trains a :class:`ComposedRetrievalModel` on converted CSS records."""

    name = "tirg"
    architecture_keys = ("composition", "embed_dim", "image_width", "image_blocks", "image_stem", "image_pool",
                         "text_embed_dim", "text_hidden_dim", "image_padding", "image_input_norm")

    @classmethod
    def default_workdir(cls, config: dict[str, Any]) -> str:
        """runs/tirg, or runs/tirg_<composition> for the paper's baselines."""
        return "runs/tirg" if config["composition"] == "tirg" else f"runs/tirg_{config['composition']}"

    def prepare(self, workdir: str) -> None:
        c = self.config
        self.image_blocks = parse_blocks(c["image_blocks"])
        self.data_dir = c["data_dir"]
        self.info = read_info(self.data_dir)
        if self.info.get("dataset") != "css":
            raise UserError(f"{self.data_dir} holds dataset {self.info.get('dataset')!r}; TIRG needs converted CSS "
                            "records (t2i-tf-css-convert's output, or the css TFDS builder's: "
                            "--data_dir=tfds:css@DATA_DIR)")
        self.image_size = int(self.info["image_size"])
        vocab = load_vocabulary(workdir)
        if vocab is None:
            vocab = official_vocabulary(css.read_queries(self.data_dir, "train")["text"].tolist())
            save_vocabulary(vocab, workdir)
        self.tokenizer = Tokenizer(vocab, int(c["max_text_len"]))
        self._cache: dict[str, Any] = {}

    def build(self, strategy: tf.distribute.Strategy) -> None:
        c = self.config
        self.strategy = strategy
        self.num_replicas = strategy.num_replicas_in_sync
        if c["batch_size"] % (2 * self.num_replicas):
            raise UserError(
                f"--batch_size {c['batch_size']} must split into an even per-replica batch over {self.num_replicas} replicas"
            )
        with strategy.scope():
            self.model = model_from_config(c, self.tokenizer.vocab_size)
            s = self.image_size
            self.model((tf.zeros([2, s, s, 3]), tf.ones([2, c["max_text_len"]], tf.int64), tf.zeros([2, s, s, 3])))
            if setting(c, "weight_init") == "torch":
                torch_initialize(self.model, int(c.get("seed", 0)))
            if setting(c, "image_weights"):  # a checkpoint restored after build() (resume) overrides these
                from t2i_tf.import_torch.tirg import load_resnet18_weights, read_state_dict

                load_resnet18_weights(self.model.image_encoder, read_state_dict(c["image_weights"]))
            every = int(c["lr_decay_every"])  # 0: never (google/tirg on CSS)
            self.lr_schedule = keras.optimizers.schedules.ExponentialDecay(
                c["learning_rate"], decay_steps=max(every, 1), decay_rate=c["lr_decay_factor"] if every else 1.0,
                staircase=True,
            )
            if setting(c, "weight_decay_mode") == "coupled":  # google/tirg main.py:172-173 (torch.optim.SGD)
                self.optimizer = TorchSGD(self.lr_schedule, momentum=c["momentum"], l2=c["weight_decay"])
            else:
                self.optimizer = keras.optimizers.SGD(
                    learning_rate=self.lr_schedule, momentum=c["momentum"], weight_decay=c["weight_decay"] or None
                )
            self.optimizer.build(self.model.trainable_variables)

    # ---------------------------------------------------------------- train
    def train_dataset(self, input_context: tf.distribute.InputContext, seed: int) -> tf.data.Dataset:
        per_replica = input_context.get_per_replica_batch_size(self.global_batch_size)
        ds = css.train_dataset(
            self.data_dir, per_replica, seed=seed, input_context=input_context
        )
        tokenizer = self.tokenizer

        def to_model_inputs(b):
            return {
                "source": b["source_image"],
                "target": b["target_image"],
                "tokens": tokenizer(b["text"]),
                "target_label": b["target_label"],
            }

        return ds.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def _per_example_loss(self, queries: tf.Tensor, targets: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        all_targets, offset = gather_global(targets)
        if self.config["loss"] == "batch_based_classification":
            return batch_classification_loss(queries, targets, all_targets, offset)
        all_queries, _ = gather_global(queries)
        k = int(setting(self.config, "triplet_negatives"))
        if k:
            # Stateless draw from (--seed, step): reproducible, the same on every replica and after a resume.
            seed = tf.stack([tf.constant(int(self.config.get("seed", 0)), tf.int64),
                             tf.cast(self.optimizer.iterations, tf.int64)])
            return sampled_soft_triplet_loss(queries, targets, all_queries, all_targets, offset, k, seed)
        all_labels, _ = gather_global(labels)
        return soft_triplet_loss(queries, targets, all_queries, all_targets, labels, all_labels, offset)

    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            queries = self.model.compose(batch["source"], batch["tokens"], training=True)
            targets = self.model.embed_images(batch["target"], training=True)
            per_example = self._per_example_loss(queries, targets, batch["target_label"])
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return {"loss": tf.reduce_mean(per_example), "scale": tf.identity(self.model.normalize.scale)}

    def learning_rate(self, step: tf.Tensor) -> tf.Tensor:
        return self.lr_schedule(step)

    def checkpoint_items(self) -> dict[str, Any]:
        return {"model": self.model, "optimizer": self.optimizer}

    # ----------------------------------------------------------------- eval
    def _gallery(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        key = f"gallery/{split}"
        if key not in self._cache:
            self._cache[key] = css.read_gallery(self.data_dir, split)
        return self._cache[key]

    def _queries(self, split: str) -> dict[str, np.ndarray]:
        key = f"queries/{split}"
        if key not in self._cache:
            self._cache[key] = css.read_queries(self.data_dir, split)
        return self._cache[key]

    @tf.function(reduce_retracing=True)
    def _embed_images_fn(self, images_uint8):
        return self.model.embed_images(css.to_float_image(images_uint8), training=False)

    @tf.function(reduce_retracing=True)
    def _compose_fn(self, images_uint8, texts):
        return self.model.compose(css.to_float_image(images_uint8), self.tokenizer(texts), training=False)

    def embed_gallery(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Gallery embeddings [N, D] of uint8 images."""
        out = [self._embed_images_fn(tf.constant(images[i : i + batch_size])).numpy() for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros([0, self.config["embed_dim"]], np.float32)

    def compose_queries(self, source_images: np.ndarray, texts: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Query embeddings [N, D] of uint8 source images and raw texts."""
        out = [
            self._compose_fn(tf.constant(source_images[i : i + batch_size]), tf.constant(texts[i : i + batch_size].astype(str)))
            .numpy()
            for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(out)

    def recall(self, split: str, max_queries: int | None = None) -> dict[int, float]:
        """Recall@K (percent) on ``split`` with the official protocol (source excluded, label hits)."""
        images, labels = self._gallery(split)
        q = self._queries(split)
        idx = np.arange(len(q["text"]))
        if max_queries is not None and max_queries < len(idx):
            idx = np.sort(np.random.default_rng(0).choice(idx, max_queries, replace=False))
        gallery = self.embed_gallery(images)
        sources = q["source_id"][idx]
        queries = self.compose_queries(images[sources], q["text"][idx])
        return recall_at_k(queries, gallery, labels, q["target_label"][idx], sources, RECALL_KS)

    def evaluate(self, step: int) -> dict[str, float]:
        metrics = {f"test/R@{k}": v for k, v in self.recall("test").items()}
        n_train = int(self.config.get("train_eval_queries", 0))
        if n_train > 0:
            metrics.update({f"train/R@{k}": v for k, v in self.recall("train", n_train).items()})
        return metrics

    # ------------------------------------------------------ export and use
    def export(self, path: str) -> dict[str, Any]:
        return export_tirg(self.model, self.tokenizer, self.image_size, path)

    def retrieve(self, image: np.ndarray, text: str, top_k: int = 10, split: str = "test") -> list[dict[str, Any]]:
        """Top-k gallery images of ``split`` for one uint8 image [H,W,3] and a modification text."""
        if image.ndim != 3 or image.shape[-1] != 3:
            raise UserError(f"expected an RGB image, got an array of shape {image.shape}")
        if top_k < 1:
            raise UserError(f"--top_k must be >= 1; got {top_k}")
        for caption, words in check_captions([text], self.tokenizer.vocabulary, "TIRG vocabulary").items():
            print(f"note: not in the vocabulary (read as unknown): {' '.join(words)}  [{caption}]", file=sys.stderr)
        resized = tf.image.resize(image[None], [self.image_size, self.image_size], antialias=True)
        query = self.compose_queries(np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8), np.array([text]))[0]
        images, labels = self._gallery(split)
        order, sims = top_k_gallery(query, self.embed_gallery(images), top_k)
        raw_dir = self.info.get("raw_dir")
        results = []
        for rank, (i, s) in enumerate(zip(order, sims), start=1):
            file = os.path.join(raw_dir, "images", f"css_{split}_{int(i):06d}.png") if raw_dir else ""
            results.append({"rank": rank, "image_id": int(i), "label": int(labels[i]), "similarity": float(s), "file": file})
        return results
