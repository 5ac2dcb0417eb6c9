"""Console commands of an installed t2i_tf (``t2i-tf``, the dataset tools), the same as the checkout's scripts.

``t2i-tf`` is ``python main.py`` (main.py calls :func:`run`); ``t2i-tf-cub-convert`` etc. are
``python -m datasets.cub.convert`` etc., whose code lives in t2i_tf/datasets/ (the checkout's top-level
``datasets/`` only holds those entry points and is not installed: the name belongs to Hugging Face's package).
"""

from __future__ import annotations

import importlib
import os


def _quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter out of the output; oneDNN kernels on (CPU conv backprop ~3x faster)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def run() -> None:
    """``t2i-tf`` / ``python main.py``: the absl command line of t2i_tf.cli."""
    _quiet_tensorflow()
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    from absl import app

    from t2i_tf.cli import main

    app.run(main)


def _tool(module: str) -> int:
    """Run ``module.main()`` (a dataset tool returning its exit code)."""
    _quiet_tensorflow()
    return importlib.import_module(module).main()


def css_generate() -> int:
    """``t2i-tf-css-generate``: python -m datasets.css.generate."""
    return _tool("t2i_tf.datasets.css.generate")


def css_convert() -> int:
    """``t2i-tf-css-convert``: python -m datasets.css.convert."""
    return _tool("t2i_tf.datasets.css.convert")


def css_captions() -> int:
    """``t2i-tf-css-captions``: python -m datasets.css.captions."""
    return _tool("t2i_tf.datasets.css.captions")


def cub_convert() -> int:
    """``t2i-tf-cub-convert``: python -m datasets.cub.convert."""
    return _tool("t2i_tf.datasets.cub.convert")


def flowers_convert() -> int:
    """``t2i-tf-flowers-convert``: python -m datasets.flowers.convert."""
    return _tool("t2i_tf.datasets.flowers.convert")


def vg_convert() -> int:
    """``t2i-tf-vg-convert``: python -m datasets.vg.convert."""
    return _tool("t2i_tf.datasets.vg.convert")


def coco_stuff_convert() -> int:
    """``t2i-tf-coco-stuff-convert``: python -m datasets.coco_stuff.convert."""
    return _tool("t2i_tf.datasets.coco_stuff.convert")


def hd5_convert() -> int:
    """``t2i-tf-hd5-convert``: python -m datasets.hd5."""
    return _tool("t2i_tf.datasets.hd5")


def tfds_build() -> int:
    """``t2i-tf-tfds-build``: python -m t2i_tf.tfds (prepare a TFDS dataset from manual_dir)."""
    return _tool("t2i_tf.tfds.build")
