"""The CSS scene classifier: an image -> for each of the 9 grid cells, empty or (size, colour, shape).

Two towers, so colour and shape are read apart and a (colour, shape) combination never seen in training
(CSS's held-out test combos) is still classified. (Factorised heads on one RGB CNN were not enough: in a
300-step run on ~360 train scenes that CNN recalled 43% of the held-out-combo objects, two towers 99.7%.)

- the shape tower sees only the image's "ink" — how far each pixel is from the white background, i.e.
  the silhouettes, with no hue — through a small CNN that halves the image (at least twice) down to
  an at most 8 x 8 map, whatever the image size; the map is resized to a 3P x 3P grid and cut into
  the 9 cells' P x P patches, each read by the SAME shared MLP into the occupied (1 logit), size (2)
  and shape (3) heads;
- the colour tower sees pixels one at a time (1x1 convolutions: no shapes) of the image at <= 32 px,
  weighted by their ink (the white background adds nothing) and max-pooled over each cell's exact
  region, into the colour head (8).

The image's feature vector (for the domain FID) is the shape tower's pooled map next to the colour
tower's cell features averaged over the cells. Inputs of any size are resized (bilinear, antialiased)
to the model's ``image_size`` first.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from t2i_tf.data.css_cells import NUM_CELLS, NUM_COLORS, NUM_SHAPES, NUM_SIZES, code_factors, factors_code

MAP_SIZE = 8  # the shape tower's final map is at most this many pixels a side
COLOR_SIZE = 32  # the colour tower reads the image at most this large


def resize_to(images: tf.Tensor, size: int) -> tf.Tensor:
    """[N, H, W, C] float images -> [N, size, size, C] (unchanged when they already are)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = tf.image.resize(images, [size, size], method="bilinear", antialias=True)
    return tf.ensure_shape(out, [None, size, size, images.shape[-1]])


def ink(images: tf.Tensor) -> tf.Tensor:
    """[N, H, W, 3] in [-1, 1] -> [N, H, W, 1] in [0, 1]: 0 on white, 1 on any CSS colour (the darkest
    channel's distance from white, 0.25..0.5 stretched to 0..1; every CSS colour is >= 0.66)."""
    far = 0.5 * (1.0 - tf.reduce_min(images, axis=-1, keepdims=True))
    return tf.clip_by_value((far - 0.25) * 4.0, 0.0, 1.0)


def cell_max(fmap: tf.Tensor) -> tf.Tensor:
    """[N, S, S, C] -> [N, 9, C]: the maximum over each cell's region (rows/cols split in thirds)."""
    s = fmap.shape[1]
    edges = [(math.floor(i * s / 3), math.ceil((i + 1) * s / 3)) for i in range(3)]
    cells = [tf.reduce_max(fmap[:, r0:r1, c0:c1, :], axis=[1, 2]) for r0, r1 in edges for c0, c1 in edges]
    return tf.stack(cells, axis=1)


class CssClassifier(keras.Model):
    """Per-cell CSS classifier: float images in [-1, 1] -> per-cell head logits and a feature vector."""

    def __init__(self, image_size: int = 64, width: int = 16, hidden_dim: int = 128, **kwargs):
        super().__init__(**kwargs)
        if image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {image_size}")
        self.image_size = int(image_size)
        self.width = int(width)
        self.hidden_dim = int(hidden_dim)
        conv = dict(kernel_size=3, padding="same", activation="relu")
        w = self.width
        # Shape tower: halve the image (at least twice) until the map is at most MAP_SIZE, then two convs.
        self.num_down = max(2, math.ceil(math.log2(self.image_size / MAP_SIZE)))
        self.conv1 = keras.layers.Conv2D(w, strides=2, name="conv1", **conv)
        self.conv2 = keras.layers.Conv2D(2 * w, strides=2, name="conv2", **conv)
        for i in range(3, self.num_down + 1):
            setattr(self, f"down{i}", keras.layers.Conv2D(2 * w, strides=2, name=f"down{i}", **conv))
        self.conv3 = keras.layers.Conv2D(2 * w, name="conv3", **conv)
        self.conv4 = keras.layers.Conv2D(4 * w, name="conv4", **conv)
        self.map_size = self.image_size
        for _ in range(self.num_down):
            self.map_size = math.ceil(self.map_size / 2)
        self.color_size = min(self.image_size, COLOR_SIZE)
        self.patch = max(1, math.ceil(self.map_size / 3))  # feature pixels per cell side after the grid resize
        self.pool = keras.layers.GlobalAveragePooling2D(name="pool")
        self.cell_hidden = keras.layers.Dense(self.hidden_dim, activation="relu", name="cell_hidden")
        self.occupied_head = keras.layers.Dense(1, name="occupied_head")
        self.size_head = keras.layers.Dense(NUM_SIZES, name="size_head")
        self.shape_head = keras.layers.Dense(NUM_SHAPES, name="shape_head")
        self.color1 = keras.layers.Conv2D(w, 1, activation="relu", name="color1")
        self.color2 = keras.layers.Conv2D(w, 1, activation="relu", name="color2")
        self.color_head = keras.layers.Dense(NUM_COLORS, name="color_head")

    @property
    def feature_dim(self) -> int:
        return 5 * self.width

    def _cells(self, fmap: tf.Tensor) -> tf.Tensor:
        """[N, f, f, C] -> [N, 9, P*P*C]: each cell's patch of the map, row-major cells."""
        p, c = self.patch, fmap.shape[-1]
        grid = tf.image.resize(fmap, [3 * p, 3 * p], method="bilinear", antialias=True)
        grid = tf.reshape(grid, [-1, 3, p, 3, p, c])
        grid = tf.transpose(grid, [0, 1, 3, 2, 4, 5])
        return tf.reshape(grid, [-1, NUM_CELLS, p * p * c])

    def call(self, images: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        rgb = resize_to(tf.convert_to_tensor(images, tf.float32), self.image_size)
        x = ink(rgb)
        shape_layers = [self.conv1, self.conv2] + [getattr(self, f"down{i}") for i in range(3, self.num_down + 1)]
        for layer in shape_layers + [self.conv3, self.conv4]:
            x = layer(x, training=training)
        h = self.cell_hidden(self._cells(x), training=training)
        small = resize_to(rgb, self.color_size)
        colors = cell_max(self.color2(self.color1(small, training=training), training=training) * ink(small))
        features = tf.concat([self.pool(x, training=training), tf.reduce_mean(colors, axis=1)], axis=-1)
        return {"occupied": tf.squeeze(self.occupied_head(h, training=training), -1),
                "size": self.size_head(h, training=training),
                "color": self.color_head(colors, training=training),
                "shape": self.shape_head(h, training=training),
                "features": features}

    def predict_cells(self, images: tf.Tensor) -> tf.Tensor:
        """int64 [N, 9] cell codes (t2i_tf/data/css_cells.py) of float images in [-1, 1]."""
        return logits_to_cells(self(images, training=False))

    def features(self, images: tf.Tensor) -> tf.Tensor:
        """float32 [N, feature_dim] features of float images in [-1, 1] (for the domain FID)."""
        return self(images, training=False)["features"]

    def get_config(self) -> dict:
        return {**super().get_config(), "image_size": self.image_size, "width": self.width,
                "hidden_dim": self.hidden_dim}


def logits_to_cells(outputs: dict[str, tf.Tensor]) -> tf.Tensor:
    """The most likely cell codes int64 [N, 9] of the heads' logits (occupied when its logit > 0)."""
    pick = lambda k: tf.argmax(outputs[k], axis=-1, output_type=tf.int64)  # noqa: E731
    return factors_code(outputs["occupied"] > 0.0, pick("size"), pick("color"), pick("shape"))


def cell_loss(outputs: dict[str, tf.Tensor], cells: tf.Tensor) -> tf.Tensor:
    """Per-example loss [N]: mean over the 9 cells of BCE(occupied) + (for occupied cells) the
    cross-entropies of size, colour and shape."""
    occupied, size, color, shape = code_factors(tf.cast(cells, tf.int64))
    occ = tf.cast(occupied, tf.float32)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=occ, logits=outputs["occupied"])
    ce = lambda labels, k: tf.nn.sparse_softmax_cross_entropy_with_logits(labels, outputs[k])  # noqa: E731
    attrs = ce(size, "size") + ce(color, "color") + ce(shape, "shape")
    return tf.reduce_mean(bce + occ * attrs, axis=-1)
