"""The Task interface: what a model family plugs into the one Trainer.

The Trainer owns the strategy, the loop, checkpoints, summaries and resume; a
Task owns its models, optimizers, data and the maths of one training step.
"""

from __future__ import annotations

import abc
from typing import Any

import tensorflow as tf

from t2i_tf.errors import UserError


class Task(abc.ABC):
    """One model family (TIRG, GAN-CLS, ...) as seen by :class:`t2i_tf.train.Trainer`."""

    name: str = "task"
    # Config keys the checkpoint's variable shapes depend on: a run resumed or restored with other
    # values is refused with a message naming them (instead of a shape error from deep inside TF).
    architecture_keys: tuple[str, ...] = ()

    def __init__(self, config: dict[str, Any]):
        self.schema = self.config_schema()
        # Typed and checked here, the one place values are validated (flags, saved runs and tests alike).
        self.config = self.schema.validate(config) if self.schema is not None else dict(config)
        self.strategy: tf.distribute.Strategy | None = None

    @classmethod
    def config_schema(cls) -> Any:
        """The model's config schema (configs/<name>.py); None only for tasks outside the registry."""
        from t2i_tf.registry import schema_of

        return schema_of(cls.name)

    @property
    def global_batch_size(self) -> int:
        return int(self.config["batch_size"])

    @classmethod
    def records_image_size(cls, config: dict[str, Any]) -> int:
        """The size generated records should be rendered at for this config: the size the task trains on."""
        return int(config["image_size"])

    def check_batch_split(self, strategy: tf.distribute.Strategy) -> int:
        """The number of replicas; a UserError when ``--batch_size`` does not split evenly over them."""
        replicas = strategy.num_replicas_in_sync
        if self.global_batch_size % replicas:
            raise UserError(f"--batch_size {self.global_batch_size} must split evenly over {replicas} replicas")
        return replicas

    @abc.abstractmethod
    def prepare(self, workdir: str) -> None:
        """Read dataset metadata and anything saved in ``workdir`` (e.g. the vocabulary); no TF variables yet."""

    @abc.abstractmethod
    def build(self, strategy: tf.distribute.Strategy) -> None:
        """Create models and optimizers inside ``strategy.scope()`` (optimizers built up front)."""

    @abc.abstractmethod
    def train_dataset(self, input_context: tf.distribute.InputContext, seed: int) -> tf.data.Dataset:
        """Infinite dataset of PER-REPLICA batches for this input pipeline, shuffled from ``seed`` (the Trainer's
        data seed: it follows (--seed, the data block of the step the run starts or resumes at; Trainer data_block_steps))."""

    @abc.abstractmethod
    def train_step(self, batch: Any) -> dict[str, tf.Tensor]:
        """One optimisation step in replica context; returns scalar metrics (already globally scaled losses)."""

    @abc.abstractmethod
    def checkpoint_items(self) -> dict[str, Any]:
        """Trackables to save and restore (models, optimizers)."""

    @abc.abstractmethod
    def evaluate(self, step: int) -> dict[str, float]:
        """Evaluation metrics at ``step`` (run in cross-replica context)."""

    def learning_rate(self, step: tf.Tensor) -> tf.Tensor | None:
        """The learning rate at ``step`` for logging; None if not meaningful."""
        return None

    def summaries(self, step: int) -> None:
        """Extra TensorBoard summaries (images, attention maps); called under the train writer."""

    def run_config(self) -> dict[str, Any]:
        """What config.json keeps: the model's own settings (and where its data is)."""
        return self.schema.only_own_keys(self.config) if self.schema is not None else dict(self.config)

    def hparams(self) -> dict[str, Any]:
        """Hyperparameters for the TensorBoard hparams dashboard: the model's own settings."""
        return {k: v for k, v in self.run_config().items() if isinstance(v, (int, float, str, bool))}

    @abc.abstractmethod
    def export(self, path: str) -> dict[str, Any]:
        """Write a SavedModel with named signatures; return a description of them."""

    @classmethod
    def default_workdir(cls, config: dict[str, Any]) -> str:
        """Where a run of this config goes when no --workdir is given."""
        return f"runs/{cls.name}"


class GeneratorTask(Task):
    """A Task that draws images from text (or another condition): --mode=generate and the generator --mode=eval."""

    # True when a generation is a modification of a source image (--image with --mode=generate).
    takes_source_image: bool = False
    image_size: int

    @abc.abstractmethod
    def generate(self, captions: list[str] | None, num_samples: int, seed: int = 0,
                 source_image: Any = None) -> dict[str, Any]:
        """``num_samples`` images per caption (None: held-out captions): ``{"images": uint8 [rows, num_samples, S,
        S, 3], "captions", "unknown_words"}``, the noise of :func:`t2i_tf.models.noise.generator_noise`."""

    def eval_batches(self, num_images: int, batch_size: int, split: str | None = None):
        """The first ``num_images`` records of ``split`` (default: the held-out ``eval_split``) in file order: image,
        caption, class_id, [scene_cells], and the model inputs (:meth:`model_inputs`). This reads text-to-image
        records (``data_dir``); a generator on other data overrides it."""
        from t2i_tf.data.t2i import held_out_batches

        for b in held_out_batches(self.data_dir, split or self.eval_split, self.image_size, num_images, batch_size):
            yield dict(b, **self.model_inputs(b))

    def model_inputs(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """What the model reads from a text-to-image record batch (tokens, embeddings, images)."""
        raise NotImplementedError(f"{type(self).__name__} reads no text-to-image records")

    # True when generate_images takes ``rows=(start, stop)``: those rows of the whole batch's images (the batch's
    # noise, cut), so --mode=eval can draw a big eval batch a few images at a time (t2i_tf/eval/generator_eval.py).
    draws_rows = False

    @abc.abstractmethod
    def generate_images(self, batch: dict[str, tf.Tensor], seed: tuple[int, int],
                        rows: tuple[int, int] | None = None) -> tf.Tensor:
        """Float [-1, 1] images for ``batch``'s conditions, z = generator_noise(n, z_dim, *seed) (with ``rows``, a task
        that ``draws_rows`` gives rows [start, stop) of them)."""

    @abc.abstractmethod
    def matching_features(self, images: tf.Tensor, batch: dict[str, tf.Tensor]):
        """(image features, sentence features) for R-precision, or None when the model has no matching encoders."""

    @abc.abstractmethod
    def eval_protocol(self) -> dict[str, Any]:
        """Model facts for the metrics JSON (eval split, text encoder, R-precision encoders)."""

    def model_eval_metrics(self, num_images: int, batch_size: int, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
        """Metrics only this model has (e.g. sg2im's layout accuracy), added to the generator --mode=eval over the
        same held-out records: (metrics, their protocol). None by default."""
        return {}, {}

    def css_metrics(self, pred_cells: Any, target_cells: Any) -> tuple[dict[str, float], dict[str, Any]]:
        """Metrics of the CSS classifier's cells of the generated images (the eval's first N records, in order) that
        only this model has (e.g. stackgan_tirg's edited cells): (metrics, their protocol). None by default."""
        return {}, {}


class RetrievalTask(Task):
    """A Task that ranks gallery images for a (source image, modification text) query: --mode=retrieve."""

    @abc.abstractmethod
    def retrieve(self, image: Any, text: str, top_k: int = 10) -> list[dict[str, Any]]:
        """The ``top_k`` gallery images closest to the composed query, best first."""
