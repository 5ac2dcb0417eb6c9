"""sg2im (Johnson, Gupta, Fei-Fei, CVPR 2018): scene graph -> graph convolution -> boxes + masks -> layout ->
cascaded refinement network -> image, with an image (patch) discriminator and an object discriminator on crops.

Graphs are padded batches (t2i_tf/data/scene_graph.py): ``objects`` int32 [B, O] (0 = none), ``triples``
int32 [B, T, 3] (``-1`` rows = none). The official code (google/sg2im, PyTorch) packs every image's objects
into one list with an ``obj_to_img`` index; padding per image is the same computation (the pooling of a
graph convolution only ever sums over one image's triples, the layout over one image's objects).

Modules follow the official ones: :class:`GraphTripleConv` = sg2im/graph.py GraphTripleConv (per-triple MLP
``net1`` to new subject / predicate / object vectors, average pooling to objects, ``net2``);
:func:`masks_to_layout` = sg2im/layout.py masks_to_layout (a mask scaled into its box, bilinear as torch 0.4's
``grid_sample``, times the object's vector, summed over objects); :class:`RefinementNetwork` = sg2im/crn.py;
:class:`PatchDiscriminator` / :class:`ObjectDiscriminator` = sg2im/discriminators.py with build_cnn's
"C<k>-<c>-<s>" architecture strings.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf


def _numbered(owner: Any, prefix: str, layers: list) -> int:
    """Set ``layers`` as attributes ``<prefix>0``, ``<prefix>1``, ... (checkpoints track named attributes, not layers
    in lists, as the project's other models do); returns how many."""
    for k, layer in enumerate(layers):
        setattr(owner, f"{prefix}{k}", layer)
    return len(layers)


def _he() -> keras.initializers.Initializer:
    """torch.nn.init.kaiming_normal_ (fan_in, gain sqrt 2), the official init of linear and CRN conv weights."""
    return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")


class MLP(keras.layers.Layer):
    """Linear layers each followed by ReLU, the last one too (sg2im/layers.py build_mlp's default
    ``final_nonlinearity=True``), Kaiming-normal weights as sg2im/graph.py's ``_init_weights``."""

    def __init__(self, dims: list[int], final_relu: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.dims, self.final_relu = list(dims), bool(final_relu)
        self.num_layers = _numbered(self, "linear", [keras.layers.Dense(d, kernel_initializer=_he(), name=f"linear{k}")
                                                     for k, d in enumerate(dims)])

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        for k in range(self.num_layers):
            x = getattr(self, f"linear{k}")(x)
            if k + 1 < self.num_layers or self.final_relu:
                x = tf.nn.relu(x)
        return x


def _masks(objects: tf.Tensor, triples: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(object mask [B, O], triple mask [B, T], subject slots, predicate ids, object slots [B, T]) of a padded graph
    (padding rows read as slot / predicate 0 and are masked)."""
    obj_mask = objects > 0
    tri_mask = triples[..., 0] >= 0
    s, p, o = (tf.where(tri_mask, triples[..., k], 0) for k in range(3))
    return obj_mask, tri_mask, s, p, o


class GraphTripleConv(keras.layers.Layer):
    """One graph convolution (sg2im/graph.py GraphTripleConv): for every triple (s, p, o),
    ``net1([v_s, v_p, v_o])`` -> (new s [H], new p [Dout], new o [H]); each object's candidates (as a subject
    and as an object) are averaged (``pooling='avg'``; ``sum`` adds them), objects in no triple get 0, and
    ``net2`` maps the pooled [H] vectors to [Dout]."""

    def __init__(self, output_dim: int, hidden_dim: int = 512, pooling: str = "avg", **kwargs: Any):
        super().__init__(**kwargs)
        if pooling not in ("avg", "sum"):
            raise ValueError(f"pooling must be avg or sum; got {pooling!r}")
        self.output_dim, self.hidden_dim, self.pooling = int(output_dim), int(hidden_dim), pooling
        self.net1 = MLP([hidden_dim, 2 * hidden_dim + output_dim], name="net1")
        self.net2 = MLP([hidden_dim, output_dim], name="net2")

    def call(self, obj_vecs: tf.Tensor, pred_vecs: tf.Tensor, s: tf.Tensor, o: tf.Tensor, tri_mask: tf.Tensor,
             training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """obj_vecs [B, O, D], pred_vecs [B, T, D], subject / object slots [B, T], triple mask [B, T]."""
        h, dout = self.hidden_dim, self.output_dim
        cur = tf.concat([tf.gather(obj_vecs, s, batch_dims=1), pred_vecs, tf.gather(obj_vecs, o, batch_dims=1)], -1)
        new = self.net1(cur, training=training)
        new_s, new_p, new_o = new[..., :h], new[..., h:h + dout], new[..., h + dout:]
        num_objects = tf.shape(obj_vecs)[1]
        m = tf.cast(tri_mask, new.dtype)[..., None]
        to_s = tf.one_hot(s, num_objects, dtype=new.dtype) * m  # [B, T, O]
        to_o = tf.one_hot(o, num_objects, dtype=new.dtype) * m
        pooled = tf.einsum("bto,bth->boh", to_s, new_s) + tf.einsum("bto,bth->boh", to_o, new_o)
        if self.pooling == "avg":
            counts = tf.reduce_sum(to_s, axis=1) + tf.reduce_sum(to_o, axis=1)  # [B, O]
            pooled = pooled / tf.maximum(counts, 1.0)[..., None]
        return self.net2(pooled, training=training), new_p


def _sampling_weights(lo: tf.Tensor, hi: tf.Tensor, out_size: int | tf.Tensor, m: int) -> tf.Tensor:
    """[..., out_size, m] bilinear weights of an m-pixel mask stretched over [lo, hi] along an axis of
    ``out_size`` pixels at linspace(0, 1) positions (torch 0.4 grid_sample: corners aligned, zero outside)."""
    pos = tf.linspace(0.0, 1.0, out_size)
    d = hi - lo  # an inverted box (hi < lo) samples its mask flipped, as grid_sample does
    d = tf.where(tf.abs(d) < 1e-6, tf.where(d < 0, -1e-6, 1e-6), d)
    u = (pos - lo[..., None]) / d[..., None]  # [..., out]
    p = u * float(m - 1)
    return tf.nn.relu(1.0 - tf.abs(p[..., None] - tf.range(m, dtype=tf.float32)))


def masks_to_layout(vecs: tf.Tensor, boxes: tf.Tensor, masks: tf.Tensor, obj_mask: tf.Tensor, height: int,
                    width: int | None = None) -> tf.Tensor:
    """The scene layout [B, H, W, D]: each object's mask [M, M] placed in its box ``[x0, y0, x1, y1]`` (in [0, 1]),
    times its vector, summed over the image's objects (sg2im/layout.py masks_to_layout, pooling 'sum')."""
    width = width or height
    m = int(masks.shape[-1])
    wy = _sampling_weights(boxes[..., 1], boxes[..., 3], height, m)  # [B, O, H, M]
    wx = _sampling_weights(boxes[..., 0], boxes[..., 2], width, m)  # [B, O, W, M]
    sampled = tf.einsum("bohm,bomn,bown->bohw", wy, masks, wx)
    sampled = sampled * tf.cast(obj_mask, sampled.dtype)[..., None, None]
    return tf.einsum("bohw,bod->bhwd", sampled, vecs)


def _norm(kind: str, name: str) -> keras.layers.Layer | None:
    if kind == "batch":  # torch BatchNorm2d: momentum 0.1 of the new statistics, eps 1e-5
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)
    if kind == "instance":
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    if kind == "none":
        return None
    raise ValueError(f"normalization must be batch | instance | none; got {kind!r}")


def _act(x: tf.Tensor, slope: float) -> tf.Tensor:
    return tf.nn.leaky_relu(x, slope) if slope > 0 else tf.nn.relu(x)


class RefinementModule(keras.layers.Layer):
    """[layout avg-pooled to the features' size, features] -> (conv3x3, norm, leaky ReLU) x 2 (sg2im/crn.py)."""

    def __init__(self, channels: int, normalization: str, slope: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.slope = slope
        self.conv1 = keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer=_he(), name="conv1")
        self.conv2 = keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer=_he(), name="conv2")
        self.norm1, self.norm2 = _norm(normalization, "norm1"), _norm(normalization, "norm2")

    def call(self, layout: tf.Tensor, feats: tf.Tensor, training: bool = False) -> tf.Tensor:
        factor = int(layout.shape[1]) // int(feats.shape[1])
        if factor > 1:
            layout = tf.nn.avg_pool2d(layout, factor, factor, "VALID")
        x = tf.concat([layout, feats], axis=-1)
        for conv, norm in ((self.conv1, self.norm1), (self.conv2, self.norm2)):
            x = conv(x)
            if norm is not None:
                x = norm(x, training=training)
            x = _act(x, self.slope)
        return x


class RefinementNetwork(keras.layers.Layer):
    """Cascaded refinement network (Chen & Koltun 2017; sg2im/crn.py): from 1-channel zeros at H / 2^k, k
    modules each doubling the size (nearest) and refining with the layout; then conv3x3, leaky ReLU, conv1x1 -> RGB."""

    def __init__(self, dims: list[int], normalization: str = "batch", slope: float = 0.2, **kwargs: Any):
        super().__init__(**kwargs)
        self.dims = list(dims)
        self.num_modules = _numbered(self, "module", [RefinementModule(d, normalization, slope, name=f"module{k}")
                                                     for k, d in enumerate(dims)])
        self.slope = slope
        self.out1 = keras.layers.Conv2D(dims[-1], 3, padding="same", kernel_initializer=_he(), name="output_conv1")
        self.out2 = keras.layers.Conv2D(3, 1, kernel_initializer=_he(), name="output_conv2")

    def call(self, layout: tf.Tensor, training: bool = False) -> tf.Tensor:
        size = int(layout.shape[1]) // 2 ** self.num_modules
        feats = tf.zeros([tf.shape(layout)[0], size, size, 1], layout.dtype)
        for mod in (getattr(self, f"module{k}") for k in range(self.num_modules)):
            feats = tf.repeat(tf.repeat(feats, 2, axis=1), 2, axis=2)
            feats = mod(layout, feats, training=training)
        return self.out2(_act(self.out1(feats), self.slope))


class MaskNet(keras.layers.Layer):
    """An object vector [D] -> an M x M mask in (0, 1): (upsample x2 nearest, BatchNorm, conv3x3, ReLU) until M,
    conv1x1, sigmoid (sg2im/model.py _build_mask_net)."""

    def __init__(self, dim: int, mask_size: int, **kwargs: Any):
        super().__init__(**kwargs)
        steps = int(np.log2(mask_size))
        if 2 ** steps != mask_size:
            raise ValueError(f"mask_size must be a power of 2; got {mask_size}")
        self.mask_size = mask_size
        self.steps = _numbered(self, "norm", [keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                                                              name=f"norm{k}") for k in range(steps)])
        _numbered(self, "conv", [keras.layers.Conv2D(dim, 3, padding="same", name=f"conv{k}") for k in range(steps)])
        self.out = keras.layers.Conv2D(1, 1, name="output_conv")

    def call(self, vecs: tf.Tensor, obj_mask: tf.Tensor | None = None, training: bool = False) -> tf.Tensor:
        """vecs [B, O, D] -> mask logits [B, O, M, M]. In training the BatchNorms' batch statistics are those of the
        real objects (``obj_mask`` [B, O]), as the official packed batch (no padding slots) has them."""
        b, o = tf.shape(vecs)[0], tf.shape(vecs)[1]
        x = tf.reshape(vecs, [-1, 1, 1, int(vecs.shape[-1])])
        valid = None if obj_mask is None else tf.reshape(tf.cast(obj_mask, tf.bool), [-1])
        for k in range(self.steps):
            norm, conv = getattr(self, f"norm{k}"), getattr(self, f"conv{k}")
            x = tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)
            mask = None if valid is None else tf.broadcast_to(valid[:, None, None], tf.shape(x)[:3])
            # tf.identity: Keras attaches the BN mask to its output, which Conv2D would warn about and drop
            x = tf.nn.relu(conv(tf.identity(norm(x, training=training, mask=mask))))
        logits = tf.reshape(self.out(x), [b, o, self.mask_size, self.mask_size])
        return logits


class Sg2ImGenerator(keras.Model):
    """Scene graph -> image (sg2im/model.py Sg2ImModel).

    ``call({"objects", "triples", ["boxes", "masks", "noise"]})``: ``boxes`` / ``masks`` (ground truth, training)
    make the layout when given, else the predicted ones; ``noise`` [B, H, W, layout_noise_dim] (default zeros).
    Build it with objects and triples only (Keras traces its default signature from that first call). Returns
    ``{"images": [B, S, S, 3], "boxes": [B, O, 4], "mask_logits": [B, O, M, M] | None, "layout": [B, S, S, D]}``.
    ``box_net_final_relu=True`` is the official box net (a ReLU on the box coordinates); ``slope`` is the leaky
    ReLU slope of the refinement network. With the weights of an official checkpoint
    (t2i_tf/import_torch/sg2im.py) it computes the official ``Sg2ImModel.forward`` (tests/import_torch/test_sg2im.py).
    """

    def __init__(self, num_objects: int, num_predicates: int, image_size: int, embedding_dim: int = 128,
                 gconv_dim: int = 128, gconv_hidden_dim: int = 512, gconv_layers: int = 5, gconv_pooling: str = "avg",
                 refinement_dims: tuple[int, ...] = (1024, 512, 256, 128, 64), normalization: str = "batch",
                 slope: float = 0.2, mask_size: int = 16, layout_noise_dim: int = 32,
                 box_net_final_relu: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if image_size % 2 ** len(refinement_dims):
            raise ValueError(f"image_size {image_size} must be divisible by 2^{len(refinement_dims)} (one halving "
                             "per refinement module)")
        self.image_size, self.mask_size, self.noise_dim = int(image_size), int(mask_size), int(layout_noise_dim)
        normal = keras.initializers.RandomNormal(stddev=1.0)  # torch nn.Embedding's N(0, 1)
        self.obj_embeddings = keras.layers.Embedding(num_objects, embedding_dim, embeddings_initializer=normal,
                                                     name="obj_embeddings")
        self.pred_embeddings = keras.layers.Embedding(num_predicates, embedding_dim, embeddings_initializer=normal,
                                                      name="pred_embeddings")
        if gconv_layers < 1:
            raise ValueError("gconv_layers must be >= 1")
        self.num_gconvs = _numbered(self, "gconv", [GraphTripleConv(gconv_dim, gconv_hidden_dim, gconv_pooling,
                                                                    name=f"gconv{k}") for k in range(gconv_layers)])
        # sg2im/model.py:77-78 builds the box net with build_mlp's final ReLU (``box_net_final_relu=True``, the
        # official network), which can zero a coordinate for good (no gradient once its pre-activation is negative
        # everywhere); by default the box outputs are linear.
        self.box_net_final_relu = bool(box_net_final_relu)
        self.box_net = MLP([gconv_hidden_dim, 4], final_relu=self.box_net_final_relu, name="box_net")
        self.mask_net = MaskNet(gconv_dim, mask_size, name="mask_net") if mask_size > 0 else None
        self.refinement = RefinementNetwork(list(refinement_dims), normalization, slope, name="refinement_net")

    def encode(self, objects: tf.Tensor, triples: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Object vectors [B, O, gconv_dim] after the graph convolutions."""
        obj_mask, tri_mask, s, p, o = _masks(objects, triples)
        obj_vecs = self.obj_embeddings(objects)
        pred_vecs = self.pred_embeddings(p)
        for gconv in (getattr(self, f"gconv{k}") for k in range(self.num_gconvs)):
            obj_vecs, pred_vecs = gconv(obj_vecs, pred_vecs, s, o, tri_mask, training=training)
        return obj_vecs * tf.cast(obj_mask, obj_vecs.dtype)[..., None]

    def call(self, inputs, training: bool = False) -> dict[str, Any]:
        objects, triples = inputs["objects"], inputs["triples"]
        boxes_gt, masks_gt, noise = inputs.get("boxes"), inputs.get("masks"), inputs.get("noise")
        objects, triples = tf.cast(objects, tf.int32), tf.cast(triples, tf.int32)
        obj_mask = objects > 0
        vecs = self.encode(objects, triples, training=training)
        boxes = self.box_net(vecs, training=training)
        mask_logits = self.mask_net(vecs, obj_mask, training=training) if self.mask_net is not None else None
        layout_boxes = boxes if boxes_gt is None else boxes_gt
        if mask_logits is None:  # sg2im/layout.py boxes_to_layout: the vector over the whole box
            b, o = tf.shape(objects)[0], tf.shape(objects)[1]
            layout_masks = tf.ones([b, o, 8, 8])
        else:
            layout_masks = tf.sigmoid(mask_logits) if masks_gt is None else masks_gt
        s = self.image_size
        layout = masks_to_layout(vecs, layout_boxes, layout_masks, obj_mask, s, s)
        if self.noise_dim:
            if noise is None:
                noise = tf.zeros([tf.shape(layout)[0], s, s, self.noise_dim])
            layout = tf.concat([layout, noise], axis=-1)
        images = self.refinement(layout, training=training)
        return {"images": images, "boxes": boxes, "mask_logits": mask_logits, "layout": layout}


def parse_arch(arch: str) -> list[tuple[int, int, int]]:
    """build_cnn's conv specs "C<kernel>-<channels>[-<stride>]" (comma separated) -> [(kernel, channels, stride)]."""
    out = []
    for spec in [s.strip() for s in arch.split(",") if s.strip()]:
        try:
            if spec[0] != "C":
                raise ValueError
            vals = [int(v) for v in spec[1:].split("-")]
            if len(vals) not in (2, 3) or min(vals) < 1:
                raise ValueError
        except ValueError:
            raise ValueError(f"discriminator architecture {arch!r}: {spec!r} is not "
                             "C<kernel>-<channels>[-<stride>]") from None
        out.append((vals[0], vals[1], vals[2] if len(vals) == 3 else 1))
    if not out:
        raise ValueError(f"discriminator architecture {arch!r} has no layers")
    return out


class ConvStack(keras.layers.Layer):
    """sg2im/layers.py build_cnn: convolutions, each after the first preceded by norm + activation."""

    def __init__(self, arch: str, normalization: str = "batch", slope: float = 0.2, padding: str = "valid",
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.slope = slope
        self.num_convs = _numbered(self, "conv", [keras.layers.Conv2D(c, k, strides=s, padding=padding, name=f"conv{i}")
                                                  for i, (k, c, s) in enumerate(parse_arch(arch))])
        self.normalized = normalization != "none"
        if self.normalized:
            for i in range(1, self.num_convs):
                setattr(self, f"norm{i}", _norm(normalization, f"norm{i}"))

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        for i in range(self.num_convs):
            conv = getattr(self, f"conv{i}")
            if i:
                if self.normalized:
                    norm = getattr(self, f"norm{i}")
                    x = norm(x, training=training)
                x = _act(x, self.slope)
            x = conv(x)
        return x


class PatchDiscriminator(keras.Model):
    """Image discriminator (sg2im/discriminators.py PatchDiscriminator): a conv stack and a 1x1 conv to one score
    per patch [B, h, w]. (The official forward returns the stack's features and never applies the 1x1
    classifier it builds; here it is applied.)"""

    def __init__(self, arch: str, normalization: str = "batch", slope: float = 0.2, **kwargs: Any):
        super().__init__(**kwargs)
        self.cnn = ConvStack(arch, normalization, slope, name="cnn")
        self.classifier = keras.layers.Conv2D(1, 1, name="classifier")

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.classifier(self.cnn(images, training=training))[..., 0]


def crop_objects(images: tf.Tensor, boxes: tf.Tensor, crop_size: int) -> tf.Tensor:
    """Bilinear crops [B, O, c, c, 3] of every object's box ``[x0, y0, x1, y1]`` (sg2im/bilinear.py crop_bbox_batch)."""
    b, o = tf.shape(boxes)[0], tf.shape(boxes)[1]
    flat = tf.reshape(boxes, [-1, 4])
    yx = tf.stack([flat[:, 1], flat[:, 0], flat[:, 3], flat[:, 2]], axis=1)
    index = tf.repeat(tf.range(b), o)
    crops = tf.image.crop_and_resize(images, yx, index, [crop_size, crop_size])
    return tf.reshape(crops, [b, o, crop_size, crop_size, int(images.shape[-1])])


class ObjectDiscriminator(keras.Model):
    """Object discriminator with an auxiliary classifier (sg2im/discriminators.py AcCropDiscriminator):
    crops -> conv stack -> global average pool -> Linear(hidden) -> (real score, object class logits)."""

    def __init__(self, arch: str, num_classes: int, crop_size: int = 32, hidden_dim: int = 1024,
                 normalization: str = "batch", slope: float = 0.2, **kwargs: Any):
        super().__init__(**kwargs)
        self.crop_size = int(crop_size)
        self.cnn = ConvStack(arch, normalization, slope, name="cnn")
        self.fc = keras.layers.Dense(hidden_dim, name="fc")
        self.real_classifier = keras.layers.Dense(1, name="real_classifier")
        self.obj_classifier = keras.layers.Dense(num_classes, name="obj_classifier")

    def call(self, inputs, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """(images [B, S, S, 3], boxes [B, O, 4]) -> (real scores [B, O], class logits [B, O, classes])."""
        images, boxes = inputs
        crops = crop_objects(images, boxes, self.crop_size)
        b, o = tf.shape(boxes)[0], tf.shape(boxes)[1]
        x = tf.reshape(crops, [-1, self.crop_size, self.crop_size, int(images.shape[-1])])
        vecs = self.fc(tf.reduce_mean(self.cnn(x, training=training), axis=[1, 2]))
        real = tf.reshape(self.real_classifier(vecs), [b, o])
        logits = tf.reshape(self.obj_classifier(vecs), [b, o, -1])
        return real, logits


def box_iou(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """IoU of boxes ``[..., 4]`` = [x0, y0, x1, y1] (sg2im/metrics.py jaccard, per box)."""
    lo = tf.maximum(a[..., :2], b[..., :2])
    hi = tf.minimum(a[..., 2:], b[..., 2:])
    inter = tf.reduce_prod(tf.nn.relu(hi - lo), axis=-1)
    area = lambda x: tf.nn.relu(x[..., 2] - x[..., 0]) * tf.nn.relu(x[..., 3] - x[..., 1])
    return inter / tf.maximum(area(a) + area(b) - inter, 1e-8)
