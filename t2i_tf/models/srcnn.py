"""SRCNN (Dong, Loy, He, Tang: "Image Super-Resolution Using Deep Convolutional Networks", ECCV 2014 / TPAMI 2016).

The three-layer network ``f1-f2-f3`` (9-1-5 in the paper): patch extraction (``f1`` x ``f1`` conv, ``n1``
filters, ReLU), non-linear mapping (``f2`` x ``f2`` conv, ``n2`` filters, ReLU) and reconstruction
(``f3`` x ``f3`` conv to 3 channels). Its input is the low-resolution image already upscaled to the
target size with bicubic interpolation, so the network is fully convolutional and works on any size.

Differences from the paper, all deliberate:

- ``'same'`` (zero) padding instead of the paper's ``'valid'`` convolutions. The paper trains on 33x33
  sub-images and compares only the central 21x21 pixels, so its output is ``f1 + f2 + f3 - 3`` pixels
  smaller than its input; we train on whole images and need an output the size of the input (to
  upscale a GAN sample to exactly ``scale`` times its size). The borders see zero padding, which the
  network learns to handle because every training image has borders too.
- Residual output (``residual=True``): the network predicts ``HR - bicubic`` and adds it to its input.
  The bicubic image is already close to the target, so the residual is small and mostly edges; with
  the last layer initialised near zero the model starts exactly at bicubic quality and only has to
  learn the missing detail, which trains far faster than regressing the whole image (Kim et al.'s
  VDSR observation). ``residual=False`` is the paper's direct image regression.
- RGB in [-1, 1] rather than the Y channel of YCbCr (the paper's main setting; it reports RGB training
  in its Section 4.5): the models here make colour images, and PSNR is measured on all three channels.
"""

from __future__ import annotations

import keras
import tensorflow as tf

DOWNSCALE_METHODS = ("bicubic", "area")
INITS = ("paper", "he")


def _check_scale(scale: int) -> int:
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale must be >= 1; got {scale}")
    return scale


def _size(images: tf.Tensor):
    """``[H, W]`` of an NHWC batch: Python ints when static (XLA needs them for resize), else a tensor."""
    h, w = images.shape[1], images.shape[2]
    return (int(h), int(w)) if h is not None and w is not None else tf.shape(images)[1:3]


def bicubic_upscale(images: tf.Tensor, scale: int) -> tf.Tensor:
    """Bicubic upscale of float images ``[N, H, W, C]`` in [-1, 1] by ``scale``, clipped back to [-1, 1]."""
    scale = _check_scale(scale)
    images = tf.convert_to_tensor(images, tf.float32)
    h, w = _size(images)[0], _size(images)[1]
    return tf.clip_by_value(tf.image.resize(images, [h * scale, w * scale], method="bicubic"), -1.0, 1.0)


def downscale(hr_images: tf.Tensor, scale: int, method: str = "bicubic") -> tf.Tensor:
    """The low-resolution ``[N, H // scale, W // scale, C]`` of ``[N, H, W, C]``, antialiased like MATLAB's imresize."""
    scale = _check_scale(scale)
    if method not in DOWNSCALE_METHODS:
        raise ValueError(f"method must be one of {', '.join(DOWNSCALE_METHODS)}; got {method!r}")
    hr_images = tf.convert_to_tensor(hr_images, tf.float32)
    h, w = _size(hr_images)[0], _size(hr_images)[1]
    low = tf.image.resize(hr_images, [h // scale, w // scale], method=method, antialias=True)
    return tf.clip_by_value(low, -1.0, 1.0)


def degrade(hr_images: tf.Tensor, scale: int, method: str = "bicubic") -> tf.Tensor:
    """SRCNN's training input: downscale by ``scale`` (antialiased), then bicubic-upscale back to the HR size."""
    hr_images = tf.convert_to_tensor(hr_images, tf.float32)
    low = downscale(hr_images, scale, method)
    up = tf.image.resize(low, _size(hr_images), method="bicubic")
    return tf.clip_by_value(up, -1.0, 1.0)


MIN_MSE = 1e-10  # PSNR of identical images: 10 * log10(4 / MIN_MSE) ~ 106 dB instead of +inf


def psnr_from_mse(mse: tf.Tensor) -> tf.Tensor:
    """PSNR in dB for a mean squared error of images in [-1, 1] (peak-to-peak 2), capped at ~106 dB."""
    mse = tf.maximum(tf.convert_to_tensor(mse, tf.float32), MIN_MSE)
    return 10.0 * tf.math.log(4.0 / mse) / tf.math.log(10.0)


def psnr(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Per-image PSNR ``[N]`` in dB of images ``[N, H, W, C]`` in [-1, 1]: ``tf.image.psnr(max_val=2)``, but finite
    (~106 dB) for identical images so that averages over a set stay finite."""
    a, b = tf.convert_to_tensor(a, tf.float32), tf.convert_to_tensor(b, tf.float32)
    return psnr_from_mse(tf.reduce_mean(tf.square(a - b), axis=[-3, -2, -1]))


class SRCNN(keras.Model):
    """The 3-layer SRCNN on a bicubic-upscaled image ``[N, H, W, 3]`` in [-1, 1] -> the restored image, same size."""

    def __init__(self, n1: int = 64, n2: int = 32, f1: int = 9, f2: int = 1, f3: int = 5, channels: int = 3,
                 residual: bool = True, init: str = "he", **kwargs):
        super().__init__(**kwargs)
        for key, value in (("n1", n1), ("n2", n2), ("f1", f1), ("f2", f2), ("f3", f3), ("channels", channels)):
            if int(value) < 1:
                raise ValueError(f"{key} must be >= 1; got {value}")
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
        self.n1, self.n2, self.f1, self.f2, self.f3 = int(n1), int(n2), int(f1), int(f2), int(f3)
        self.channels = int(channels)
        self.residual = bool(residual)
        self.init = init
        # The paper draws every weight from N(0, 0.001^2) (biases 0). "he" keeps that small init on the
        # last layer only, so a residual model starts at (almost exactly) the bicubic image.
        paper = keras.initializers.RandomNormal(stddev=1e-3)
        hidden = paper if init == "paper" else "he_normal"
        self.patch_extraction = keras.layers.Conv2D(self.n1, self.f1, padding="same", activation="relu",
                                                    kernel_initializer=hidden, name="patch_extraction")
        self.mapping = keras.layers.Conv2D(self.n2, self.f2, padding="same", activation="relu",
                                           kernel_initializer=hidden, name="mapping")
        self.reconstruction = keras.layers.Conv2D(self.channels, self.f3, padding="same",
                                                  kernel_initializer=paper, name="reconstruction")

    @property
    def receptive_field(self) -> int:
        """Side of the input window one output pixel sees: ``f1 + f2 + f3 - 2`` (13 for 9-1-5)."""
        return self.f1 + self.f2 + self.f3 - 2

    def hidden_variables(self) -> list:
        """Weights of the first two layers (the paper's learning rate 1e-4 group)."""
        return self.patch_extraction.trainable_variables + self.mapping.trainable_variables

    def last_variables(self) -> list:
        """Weights of the reconstruction layer (the paper's learning rate 1e-5 group)."""
        return self.reconstruction.trainable_variables

    def call(self, upscaled: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        h = self.patch_extraction(upscaled, training=training)
        h = self.mapping(h, training=training)
        out = self.reconstruction(h, training=training)
        return upscaled + out if self.residual else out

    def get_config(self) -> dict:
        return {**super().get_config(), "n1": self.n1, "n2": self.n2, "f1": self.f1, "f2": self.f2, "f3": self.f3,
                "channels": self.channels, "residual": self.residual, "init": self.init}


def super_resolve(model: SRCNN, low_res: tf.Tensor, scale: int, training: bool = False) -> tf.Tensor:
    """Low-res float images in [-1, 1] -> ``scale`` times larger: bicubic upscale, then SRCNN, clipped to [-1, 1]."""
    return tf.clip_by_value(model(bicubic_upscale(low_res, scale), training=training), -1.0, 1.0)
