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
        self.config = dict(config)
        self.strategy: tf.distribute.Strategy | None = None

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
    def train_dataset(self, input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        """Infinite dataset of PER-REPLICA batches for this input pipeline."""

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

    def hparams(self) -> dict[str, Any]:
        """Hyperparameters for the TensorBoard hparams dashboard."""
        return {k: v for k, v in self.config.items() if isinstance(v, (int, float, str, bool))}

    @abc.abstractmethod
    def export(self, path: str) -> dict[str, Any]:
        """Write a SavedModel with named signatures; return a description of them."""
