"""sg2im (Johnson et al., CVPR 2018) as a Task for the one Trainer: scene graphs -> images.

Data: captioned CSS records (datasets/css/captions.py), whose ``scene_cells`` become each record's scene graph and
ground-truth layout in the tf.data pipeline (t2i_tf/data/scene_graph.py); or the scene-graph records of Visual Genome /
COCO-Stuff (datasets/vg, datasets/coco_stuff; read by t2i_tf/data/scene_graph_records.py), with the vocabulary of
their vocab.json. VG records have no masks: the mask loss is then off, as google/sg2im computes it only when the data
has masks (scripts/train.py:408), and the predicted masks shape the layout.

One step, as google/sg2im scripts/train.py: the generator draws each image from its graph with the GROUND-TRUTH
boxes and masks in the layout (train.py:527) and is updated on
``pixel_loss_weight * L1(image) + box_loss_weight * box loss + mask_loss_weight * BCE(masks)
+ gan_loss_weight * (d_obj_weight * GAN(D_obj) + d_img_weight * GAN(D_img)) + ac_loss_weight * CE(D_obj classes)``;
then the object discriminator on real / generated crops at the true boxes (GAN loss + both auxiliary
classification losses) and the image discriminator (GAN loss), on the same generated images. Per-object losses
are averaged over each image's objects (the ``__image__`` node included, as in the official batches), then over
the batch with ``tf.nn.compute_average_loss``. Evaluation, samples, ``generate`` and the export use the
PREDICTED boxes and masks.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from t2i_tf.data import scene_graph as sg
from t2i_tf.data import scene_graph_records as sgr
from t2i_tf.data.pixels import to_uint8
from t2i_tf.data.records import read_info
from t2i_tf.data.t2i import SCENE_CELLS, t2i_dataset
from t2i_tf.errors import UserError
from t2i_tf.export.description import write_export_description
from t2i_tf.models.noise import NOISE_RULE, SAMPLES_STREAM, generator_noise
from t2i_tf.models.sg2im import (
    ObjectDiscriminator,
    PatchDiscriminator,
    Sg2ImGenerator,
    box_iou,
    parse_arch,
)
from t2i_tf.tasks.base import GeneratorTask
from t2i_tf.tasks.gan_cls import image_grid


def refinement_dims(text: str) -> tuple[int, ...]:
    """``--refinement_dims`` "1024,512,..." as ints; a UserError for other text."""
    try:
        dims = tuple(int(v) for v in text.split(","))
        if not dims or min(dims) < 1:
            raise ValueError
    except ValueError:
        raise UserError(f"--refinement_dims must be positive ints separated by commas; got {text!r}") from None
    return dims


def layout_noise(n, image_size: int, channels: int, seed, stream=0) -> tf.Tensor:
    """The layout noise [n, S, S, C] of the project's one noise rule: generator_noise(n, S*S*C, seed, stream)."""
    z = generator_noise(n, image_size * image_size * channels, seed, stream)
    return tf.reshape(z, [-1, image_size, image_size, channels])


def per_image_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean of ``values`` [B, O] over each image's valid objects ``mask`` [B, O] -> [B]."""
    m = tf.cast(mask, values.dtype)
    return tf.reduce_sum(values * m, axis=1) / tf.maximum(tf.reduce_sum(m, axis=1), 1.0)


class Sg2ImTask(GeneratorTask):
    """Trains the sg2im generator with its image and object discriminators on CSS scene graphs."""

    name = "sg2im"
    architecture_keys = ("image_size", "object_embedding_dim", "gconv_dim", "gconv_hidden_dim", "gconv_layers",
                         "refinement_dims", "crn_normalization", "layout_noise_dim", "mask_size", "d_img_arch",
                         "d_obj_arch", "d_obj_dim", "d_normalization", "crop_size", "box_net_final_relu")

    # ------------------------------------------------------------------ setup
    def prepare(self, workdir: str) -> None:
        c = self.config
        self.data_dir = c["data_dir"]
        info = read_info(self.data_dir)
        self.graph_records = sgr.is_scene_graph_dir(info)
        if self.graph_records:
            self.vocab = sgr.read_vocab(self.data_dir)
            self.graph_sizes = sgr.graph_sizes(info)
            self.records_have_masks = int(info.get("mask_size") or 0) > 0
        elif info.get("format") == "t2i-v1" and SCENE_CELLS in (info.get("extra_int64") or {}):
            self.vocab, self.graph_sizes, self.records_have_masks = sg.CSS_VOCAB, (sg.CSS_NUM_SLOTS, 0), True
        else:
            raise UserError(f"{self.data_dir} holds neither scene graphs nor scene_cells: sg2im reads captioned CSS "
                            "records (python -m datasets.css.captions, or no --data_dir for the embedded ones) or "
                            "Visual Genome / COCO-Stuff records (python -m datasets.vg.convert / "
                            "datasets.coco_stuff.convert)")
        splits = info.get("splits", {})
        filled = [s for s in ("test", "val", "train") if (splits.get(s) or {}).get("num_examples", 0) > 0]
        self.eval_split = filled[0] if filled else "train"
        self.image_size = int(c["image_size"])
        self.dims = refinement_dims(c["refinement_dims"])
        if self.image_size % 2 ** len(self.dims):
            raise UserError(f"--image_size {self.image_size} must be divisible by 2^{len(self.dims)} (one halving per "
                            f"--refinement_dims module)")
        m = int(c["mask_size"])
        if m and m & (m - 1):
            raise UserError(f"--mask_size must be a power of 2 (or 0); got {m}")
        for key, size_key in (("d_img_arch", "image_size"), ("d_obj_arch", "crop_size")):
            try:
                arch = parse_arch(c[key])
            except ValueError as e:
                raise UserError(f"--{key}: {e}") from None
            size = int(c[size_key])
            for k, _, s in arch:  # valid padding, as the official discriminators
                size = (size - k) // s + 1
                if size < 1:
                    raise UserError(f"--{key} {c[key]} shrinks a --{size_key} {c[size_key]} input to nothing; "
                                    "use fewer or smaller convolutions")
        self.mask_size = m
        if m and not self.records_have_masks and float(c["mask_loss_weight"]) > 0:
            print(f"note: {self.vocab.dataset} records have no masks: no mask loss (as google/sg2im on VG); the "
                  "predicted masks shape the layout", flush=True)
        self.noise_dim = int(c["layout_noise_dim"])
        self.use_d_img = float(c["gan_loss_weight"]) > 0 and float(c["d_img_weight"]) > 0
        self.use_d_obj = float(c["gan_loss_weight"]) > 0 and float(c["d_obj_weight"]) > 0
        self._eval_cache: dict[str, Any] | None = None

    def build(self, strategy: tf.distribute.Strategy) -> None:
        c = self.config
        self.strategy = strategy
        self.check_batch_split(strategy)
        s = self.image_size
        with strategy.scope():
            self.generator = Sg2ImGenerator(
                self.vocab.num_object_ids, self.vocab.num_predicates, s, int(c["object_embedding_dim"]),
                int(c["gconv_dim"]), int(c["gconv_hidden_dim"]), int(c["gconv_layers"]), c["gconv_pooling"], self.dims,
                c["crn_normalization"], 0.2, self.mask_size, self.noise_dim,
                box_net_final_relu=bool(c.get("box_net_final_relu", False)), name="generator")
            objects, triples = tf.constant([[sg.IMAGE_ID, 2]] * 2), tf.constant([[[1, 0, 0]]] * 2)
            self.generator({"objects": objects, "triples": triples})
            adam = {"learning_rate": float(c["learning_rate"]), "beta_1": float(c["beta1"]), "beta_2": float(c["beta2"])}
            self.g_optimizer = keras.optimizers.Adam(name="g_optimizer", **adam)
            self.g_optimizer.build(self.generator.trainable_variables)
            if self.use_d_img:
                self.d_img = PatchDiscriminator(c["d_img_arch"], c["d_normalization"], 0.2, name="d_img")
                self.d_img(tf.zeros([2, s, s, 3]))
                self.d_img_optimizer = keras.optimizers.Adam(name="d_img_optimizer", **adam)
                self.d_img_optimizer.build(self.d_img.trainable_variables)
            if self.use_d_obj:
                self.d_obj = ObjectDiscriminator(c["d_obj_arch"], self.vocab.num_object_ids, int(c["crop_size"]),
                                                 int(c["d_obj_dim"]), c["d_normalization"], 0.2, name="d_obj")
                self.d_obj((tf.zeros([2, s, s, 3]), tf.constant([[[0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.6, 0.6]]] * 2)))
                self.d_obj_optimizer = keras.optimizers.Adam(name="d_obj_optimizer", **adam)
                self.d_obj_optimizer.build(self.d_obj.trainable_variables)
            self.rng = tf.random.Generator.from_seed(int(c.get("seed", 0)))

    def checkpoint_items(self) -> dict[str, Any]:
        items = {"generator": self.generator, "g_optimizer": self.g_optimizer, "rng": self.rng}
        if self.use_d_img:
            items.update(d_img=self.d_img, d_img_optimizer=self.d_img_optimizer)
        if self.use_d_obj:
            items.update(d_obj=self.d_obj, d_obj_optimizer=self.d_obj_optimizer)
        return items

    # ------------------------------------------------------------------- data
    def model_inputs(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The record batch's graphs and ground-truth layouts (t2i_tf/data/scene_graph.py) with its images."""
        g = sg.graph_from_cells(b[SCENE_CELLS], self.mask_size)
        return {"image": b["image"], SCENE_CELLS: b[SCENE_CELLS], **g}

    def eval_batches(self, num_images: int, batch_size: int, split: str | None = None):
        """The first ``num_images`` records of ``split`` (default: the held-out one) with their graphs (scene-graph
        records: as the reader builds them when not training)."""
        if not self.graph_records:
            yield from super().eval_batches(num_images, batch_size, split)
            return
        yield from sgr.held_out_graph_batches(self.data_dir, split or self.eval_split, self.image_size, num_images,
                                              batch_size, self.mask_size)

    def train_dataset(self, input_context: tf.distribute.InputContext, seed: int) -> tf.data.Dataset:
        per_replica = input_context.get_per_replica_batch_size(self.global_batch_size)
        if self.graph_records:
            ds = sgr.scene_graph_dataset(self.data_dir, "train", per_replica, self.image_size, training=True,
                                         seed=seed, input_context=input_context, mask_size=self.mask_size)
        else:
            ds = t2i_dataset(self.data_dir, "train", per_replica, self.image_size, training=True, seed=seed,
                             input_context=input_context, random_flip=False, random_crop=False)
            ds = ds.map(self.model_inputs, num_parallel_calls=tf.data.AUTOTUNE)
        if float(self.config["triple_dropout"]) > 0:
            pid = input_context.input_pipeline_id
            stream = tf.constant(seed * 1009 + pid, tf.int64)
            ds = ds.enumerate().map(lambda i, b: self.drop_triples(b, tf.stack([stream, i])),
                                    num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def drop_triples(self, batch: dict[str, tf.Tensor], seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """``--triple_dropout``: each place triple becomes ``__in_image__``, each relation between two objects is
        dropped (a -1 row), with that probability (stateless in ``seed``)."""
        triples = batch["triples"]
        hit = tf.random.stateless_uniform(tf.shape(triples)[:2], seed) < float(self.config["triple_dropout"])
        valid = triples[..., 0] >= 0
        place = valid & (triples[..., 2] == 0)
        in_image = tf.stack([triples[..., 0], tf.zeros_like(triples[..., 1]), triples[..., 2]], axis=-1)
        out = tf.where((hit & place)[..., None], in_image, triples)
        out = tf.where((hit & valid & ~place)[..., None], -1, out)
        return dict(batch, triples=out)

    # ------------------------------------------------------------------- step
    def _box_loss(self, pred: tf.Tensor, true: tf.Tensor) -> tf.Tensor:
        diff = pred - true
        return tf.reduce_mean(tf.square(diff) if self.config["box_loss"] == "mse" else tf.abs(diff), axis=-1)

    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self._step(batch)

    @tf.autograph.experimental.do_not_convert
    def _step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        c = self.config
        gb = self.global_batch_size
        avg = lambda x: tf.nn.compute_average_loss(x, global_batch_size=gb)
        images, objects, boxes = batch["image"], batch["objects"], batch["boxes"]
        masks = batch.get("masks")
        obj_mask = objects > 0
        n = tf.shape(images)[0]
        noise = self.rng.normal([n, self.image_size, self.image_size, self.noise_dim]) if self.noise_dim else None
        metrics: dict[str, tf.Tensor] = {}
        gan_w = float(c["gan_loss_weight"])
        with tf.GradientTape() as tape:
            inputs = {"objects": objects, "triples": batch["triples"], "boxes": boxes}
            inputs.update({k: v for k, v in (("masks", masks), ("noise", noise)) if v is not None})
            out = self.generator(inputs, training=True)
            fake = out["images"]
            pixel = tf.reduce_mean(tf.abs(fake - images), axis=[1, 2, 3])
            box = per_image_mean(self._box_loss(out["boxes"], boxes), obj_mask)
            total = float(c["pixel_loss_weight"]) * pixel + float(c["box_loss_weight"]) * box
            metrics.update(pixel_loss=pixel, box_loss=box)
            if out["mask_logits"] is not None and masks is not None and float(c["mask_loss_weight"]) > 0:
                bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=masks, logits=out["mask_logits"])
                mask_loss = per_image_mean(tf.reduce_mean(bce, axis=[2, 3]), obj_mask)
                total += float(c["mask_loss_weight"]) * mask_loss
                metrics["mask_loss"] = mask_loss
            if self.use_d_obj:
                real_s, logits = self.d_obj((fake, boxes), training=True)
                ac = per_image_mean(self._ac(logits, objects), obj_mask)
                g_obj = per_image_mean(self._bce(real_s, 1.0), obj_mask)
                total += float(c["ac_loss_weight"]) * ac + gan_w * float(c["d_obj_weight"]) * g_obj
                metrics.update(g_obj_gan=g_obj, g_ac_loss=ac)
            if self.use_d_img:
                g_img = self._patch_loss(self.d_img(fake, training=True), 1.0)
                total += gan_w * float(c["d_img_weight"]) * g_img
                metrics["g_img_gan"] = g_img
            loss = avg(total)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        metrics["g_loss"] = total
        fake = tf.stop_gradient(fake)
        if self.use_d_obj:
            with tf.GradientTape() as tape:
                fake_s, fake_logits = self.d_obj((fake, boxes), training=True)
                real_s, real_logits = self.d_obj((images, boxes), training=True)
                d_obj = per_image_mean(self._bce(real_s, 1.0) + self._bce(fake_s, 0.0)
                                       + self._ac(real_logits, objects) + self._ac(fake_logits, objects), obj_mask)
                loss = avg(d_obj)
            variables = self.d_obj.trainable_variables
            self.d_obj_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            metrics["d_obj_loss"] = d_obj
        if self.use_d_img:
            with tf.GradientTape() as tape:
                d_img = (self._patch_loss(self.d_img(images, training=True), 1.0)
                         + self._patch_loss(self.d_img(fake, training=True), 0.0))
                loss = avg(d_img)
            variables = self.d_img.trainable_variables
            self.d_img_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            metrics["d_img_loss"] = d_img
        return {k: tf.reduce_mean(v) for k, v in metrics.items()}

    @staticmethod
    def _bce(scores: tf.Tensor, target: float) -> tf.Tensor:
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(scores), target), logits=scores)

    def _patch_loss(self, scores: tf.Tensor, target: float) -> tf.Tensor:
        """Per-image mean BCE over the patch scores [B, h, w] (sg2im/losses.py gan_d_loss / gan_g_loss)."""
        return tf.reduce_mean(self._bce(scores, target), axis=[1, 2])

    @staticmethod
    def _ac(logits: tf.Tensor, objects: tf.Tensor) -> tf.Tensor:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=objects, logits=logits)

    # ------------------------------------------------------------------- eval
    def predict(self, objects: tf.Tensor, triples: tf.Tensor, noise: tf.Tensor | None) -> dict[str, Any]:
        """The generator from graphs alone (predicted boxes and masks), inference mode."""
        inputs = {"objects": objects, "triples": triples}
        if noise is not None:
            inputs["noise"] = noise
        return self.generator(inputs, training=False)

    def _noise(self, n: int, seed, stream=0) -> tf.Tensor | None:
        return layout_noise(n, self.image_size, self.noise_dim, seed, stream) if self.noise_dim else None

    def layout_metrics(self, boxes_pred: tf.Tensor, batch: dict[str, tf.Tensor]) -> dict[str, np.ndarray]:
        """Per real object (not the image node): IoU of the predicted and true boxes, and whether the predicted box's
        centre lies in the 3 x 3 grid cell of the true box's centre (for CSS: the object's cell)."""
        real = (batch["objects"] > 1).numpy()
        true = batch["boxes"].numpy()
        iou = box_iou(boxes_pred, batch["boxes"]).numpy()
        cell = self._cell_of(boxes_pred.numpy()) == self._cell_of(true)
        return {"iou": iou[real], "cell": cell[real], "true": true[real]}

    @staticmethod
    def _cell_of(boxes: np.ndarray) -> np.ndarray:
        """The grid cell (0..8, row-major) holding each box's centre."""
        cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
        return np.clip(np.floor(cy * 3).astype(int), 0, 2) * 3 + np.clip(np.floor(cx * 3).astype(int), 0, 2)

    def evaluate(self, step: int) -> dict[str, float]:
        """Layout accuracy of the predicted boxes on the first ``eval_images`` held-out graphs, in %: mean IoU with the
        true boxes, the rate of IoU > 0.5, the rate of box centres in the true cell; and the pixel L1 of images drawn
        from the predicted layouts (images in [-1, 1]). ``reference_*``: the same scores of one constant box (the most
        frequent true box) for every object, what a layout that ignores the graph reaches."""
        c = self.config
        return self.layout_scores(int(c["eval_images"]), int(c["eval_batch_size"]), int(c["seed"]))

    def model_eval_metrics(self, num_images: int, batch_size: int, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
        """The layout accuracy of :meth:`evaluate` on the generator eval's records, as fractions (``layout_*``)."""
        scores = self.layout_scores(num_images, batch_size, seed)
        metrics = {f"layout_{k[len('eval/'):]}": v / 100.0 for k, v in scores.items()
                   if k not in ("eval/pixel_l1", "eval/objects")}
        metrics["layout_objects"] = scores["eval/objects"]
        protocol = {"layout": "predicted boxes of the first num_images held-out graphs (layout noise from the seed) vs "
                              "the true boxes, per real object: layout_box_iou = mean IoU, layout_box_iou50 = share "
                              "with IoU > 0.5, layout_box_cell_accuracy = share whose centre is in the object's true "
                              "cell; layout_reference_*: one constant box (the most frequent true box) for every "
                              "object, a graph-ignoring layout"}
        if self.graph_records:
            note = (f"not applicable: the CSS semantic metrics (--css_classifier) read CSS scenes; these are "
                    f"{self.vocab.dataset} scene graphs, scored by their layout")
            print(f"note: CSS semantic accuracy {note}", flush=True)
            protocol["css_semantic"] = note
        return metrics, protocol

    def layout_scores(self, num_images: int, batch_size: int, seed: int) -> dict[str, float]:
        """:meth:`evaluate`'s scores (in %) over the first ``num_images`` held-out graphs."""
        ious, cells, l1, true = [], [], [], []
        for k, b in enumerate(self.eval_batches(num_images, batch_size)):
            n = int(b["image"].shape[0])
            out = self.predict(b["objects"], b["triples"], self._noise(n, seed, SAMPLES_STREAM + k))
            m = self.layout_metrics(out["boxes"], b)
            ious.append(m["iou"])
            cells.append(m["cell"])
            true.append(m["true"])
            l1.append(tf.reduce_mean(tf.abs(out["images"] - b["image"]), axis=[1, 2, 3]).numpy())
        iou, cell = np.concatenate(ious), np.concatenate(cells)
        # The graph-ignoring reference: one constant box for every object, the most frequent true box.
        true_boxes = np.round(np.concatenate(true), 5).astype(np.float32)
        uniq, counts = np.unique(true_boxes, axis=0, return_counts=True)
        mode = uniq[np.argmax(counts)]
        ref_iou = box_iou(tf.constant(true_boxes), tf.constant(mode[None], tf.float32)).numpy()
        ref_cell = float(np.max(np.bincount(self._cell_of(true_boxes), minlength=9))) / len(true_boxes)
        return {"eval/reference_box_iou": 100.0 * float(ref_iou.mean()),
                "eval/reference_box_iou50": 100.0 * float((ref_iou > 0.5).mean()),
                "eval/reference_box_cell_accuracy": 100.0 * ref_cell,
                "eval/box_iou": 100.0 * float(iou.mean()), "eval/box_iou50": 100.0 * float((iou > 0.5).mean()),
                "eval/box_cell_accuracy": 100.0 * float(cell.mean()), "eval/pixel_l1": float(np.concatenate(l1).mean()),
                "eval/objects": float(iou.size)}

    def _eval_batch(self) -> dict[str, tf.Tensor]:
        if self._eval_cache is None:
            self._eval_cache = next(iter(self.eval_batches(int(self.config["num_samples"]),
                                                           int(self.config["num_samples"]))))
        return self._eval_cache

    def summaries(self, step: int) -> None:
        """Images from the first held-out graphs (predicted layouts), and their captions."""
        b = self._eval_batch()
        n = int(b["image"].shape[0])
        out = self.predict(b["objects"], b["triples"], self._noise(n, int(self.config["seed"]), SAMPLES_STREAM))
        tf.summary.image("samples", image_grid(to_uint8(out["images"])), max_outputs=1)
        tf.summary.text("sample_captions", tf.strings.reduce_join(b["caption"], separator="  \n"))

    # ------------------------------------------------ generator evaluation (eval/generator_eval.py)
    def eval_graphs(self, batch: dict[str, tf.Tensor], seed: int) -> tuple[tf.Tensor, tf.Tensor]:
        """The graphs a held-out batch is drawn from under ``--eval_graph``: its own; another record's of the batch
        whose scene differs in >= 2 cells (none: the empty graph) for ``shuffled``; the image node for ``empty``."""
        mode = self.config["eval_graph"]
        n = int(batch["objects"].shape[0])
        if mode == "true":
            return batch["objects"], batch["triples"]
        empty = sg.empty_graph(n)
        objects = tf.pad(empty["objects"], [[0, 0], [0, int(batch["objects"].shape[1]) - 1]])
        triples = tf.pad(empty["triples"], [[0, 0], [0, int(batch["triples"].shape[1]) - 1], [0, 0]],
                         constant_values=-1)
        if mode == "empty":
            return objects, triples
        if SCENE_CELLS in batch:
            from t2i_tf.eval.css_semantic import text_ignoring_partners

            partner = text_ignoring_partners(batch[SCENE_CELLS].numpy(), seed)
        else:  # scene-graph records: the next record's graph
            partner = np.roll(np.arange(n), -1) if n > 1 else np.full([n], -1)
        use = tf.constant(partner >= 0)
        idx = tf.constant(np.maximum(partner, 0))
        return (tf.where(use[:, None], tf.gather(batch["objects"], idx), objects),
                tf.where(use[:, None, None], tf.gather(batch["triples"], idx), triples))

    def generate_images(self, batch: dict[str, tf.Tensor], seed: tuple[int, int]) -> tf.Tensor:
        """Float [-1, 1] images of the batch's graphs (per ``--eval_graph``), layout noise from ``seed``."""
        objects, triples = self.eval_graphs(batch, int(seed[0]) * 1000 + int(seed[1]))
        return self.predict(objects, triples, self._noise(int(objects.shape[0]), *seed))["images"]

    def matching_features(self, images: tf.Tensor, batch: dict[str, tf.Tensor]):
        return None

    def eval_protocol(self) -> dict[str, Any]:
        graphs = ("each record's scene graph as t2i_tf/data/scene_graph_records.py builds it when not training"
                  if self.graph_records else "each record's scene graph from its scene_cells (t2i_tf/data/scene_graph.py)")
        return {"model": "sg2im", "image_size": self.image_size, "eval_split": self.eval_split,
                "data_dir": os.path.abspath(self.data_dir), "eval_graph": self.config["eval_graph"],
                "dataset": self.vocab.dataset, "graphs": graphs + "; images from the predicted boxes and masks",
                "text_encoder": "none (graph convolutions over the scene graph)"}

    @property
    def max_objects(self) -> int:
        """The most objects a graph may have (without the image node): the records' padded graph size."""
        return self.graph_sizes[0] - 1 if self.graph_records else sg.MAX_CSS_OBJECTS

    # ---------------------------------------------------------------- generate
    def generate(self, captions: list[str] | None, num_samples: int, seed: int = 0, source_image: Any = None,
                 max_rows: int = 4) -> dict[str, Any]:
        """``num_samples`` images per graph: each of ``captions`` is a scene graph JSON file (``*.json``), inline
        JSON or (CSS) a caption, read with the records' vocabulary; None: the first held-out graphs. Layout noise as
        the export draws it."""
        if num_samples < 1:
            raise UserError(f"--num_samples must be >= 1; got {num_samples}")
        if captions:
            objects, triples = sg.pad_graphs([sg.read_graph(t, self.max_objects, self.vocab) for t in captions])
            objects, triples = tf.constant(objects), tf.constant(triples)
        else:
            b = self._eval_batch()
            rows = min(max_rows, int(b["objects"].shape[0]))
            captions = [c.decode("utf-8") for c in b["caption"][:rows].numpy()]
            objects, triples = b["objects"][:rows], b["triples"][:rows]
        rows = len(captions)
        n = rows * num_samples
        out = self.predict(tf.repeat(objects, num_samples, axis=0), tf.repeat(triples, num_samples, axis=0),
                           self._noise(n, seed))
        images = to_uint8(out["images"]).numpy()
        return {"images": images.reshape(rows, num_samples, *images.shape[1:]), "captions": captions,
                "unknown_words": {}, "boxes": out["boxes"].numpy().reshape(rows, num_samples, -1, 4)}

    # ------------------------------------------------------------------ export
    def export(self, path: str) -> dict[str, Any]:
        """SavedModel ``generate(objects int32 [N, O], triples int32 [N, T, 3], seed int64) -> {"images": uint8
        [N, S, S, 3], "boxes": float32 [N, O, 4]}``; the vocabularies are in the description."""
        module = Sg2ImServing(self.generator, self.image_size, self.noise_dim)
        tf.saved_model.save(module, path, signatures={"generate": module.generate})
        s = self.image_size
        description = {
            "model": "sg2im", "image_size": s, "layout_noise_dim": self.noise_dim,
            "signatures": {"generate": {"inputs": {"objects": "int32 [N,O]", "triples": "int32 [N,T,3]",
                                                   "seed": "int64 scalar"},
                                        "outputs": {"images": f"uint8 [N,{s},{s},3]",
                                                    "boxes": "float32 [N,O,4] (x0, y0, x1, y1 in [0, 1])"}}},
            "graph": sg.GRAPH_RULE, "dataset": self.vocab.dataset, "object_names": list(self.vocab.object_names),
            "predicates": list(self.vocab.predicates), "unused_object_names": sorted(self.vocab.unused_names),
            "image_predicates": sorted(self.vocab.image_predicates), "max_objects": self.max_objects,
            "json_graph": "t2i_tf.data.scene_graph.encode_graph: {\"objects\": [names], \"relationships\": "
                          "[[i, predicate, j | \"image\"]]}; the image node is slot 0",
            "noise": NOISE_RULE + "; the layout noise is that z with z_dim = S*S*layout_noise_dim, reshaped [N,S,S,C]"}
        write_export_description(path, description)
        return description


class Sg2ImServing(tf.Module):
    """The exported module: the generator, drawing from predicted boxes and masks."""

    def __init__(self, generator: keras.Model, image_size: int, noise_dim: int):
        super().__init__(name="sg2im_serving")
        self.generator = generator
        self.image_size, self.noise_dim = int(image_size), int(noise_dim)
        self.generate = tf.function(self._generate, input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="objects"),
            tf.TensorSpec([None, None, 3], tf.int32, name="triples"),
            tf.TensorSpec([], tf.int64, name="seed")])

    def _generate(self, objects, triples, seed):
        n = tf.shape(objects)[0]
        inputs = {"objects": objects, "triples": triples}
        if self.noise_dim:
            inputs["noise"] = layout_noise(n, self.image_size, self.noise_dim, seed)
        out = self.generator(inputs, training=False)
        return {"images": to_uint8(out["images"]), "boxes": out["boxes"]}
