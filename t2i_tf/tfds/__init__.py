"""TFDS dataset builders of t2i_tf (registered on import): ``cub_captions``, ``flowers_captions``, ``css``
(configs ``images``, ``queries``), ``css_captions`` and ``anime_faces``. Nothing is downloaded: each builder reads the files the
user downloaded from ``manual_dir``, through the project's converter (t2i_tf/tfds/base.py says how)::

    import tensorflow_datasets as tfds
    import t2i_tf.tfds  # registers the builders
    ds = tfds.load("cub_captions", split="train", data_dir=DATA_DIR, download_and_prepare_kwargs={
        "download_config": tfds.download.DownloadConfig(manual_dir=MANUAL_DIR)})

    t2i-tf-tfds-build cub_captions --manual_dir=MANUAL_DIR --data_dir=DATA_DIR   # prints the prepared folder
    tfds build cub_captions --imports=t2i_tf.tfds --manual_dir=MANUAL_DIR --data_dir=DATA_DIR  # the same, if the
    # tfds command runs: tensorflow-datasets 4.9.10's imports apache_beam and mlcroissant, not installed here

The prepared ``DATA_DIR/NAME/CONFIG/VERSION`` folder of a text-to-image builder (cub_captions, flowers_captions,
css_captions) is a ``--data_dir`` of the trainers; ``t2i_tf.tfds.build.prepared_dir("tfds:NAME/CONFIG@DATA_DIR")``
finds it. TIRG reads the ``css`` builder's two configs (images, queries; ``t2i-tf-tfds-build css`` prepares both) as
``--data_dir=tfds:css@DATA_DIR`` (or either prepared folder: t2i_tf.data.css.record_dirs joins them).
"""

from t2i_tf.tfds.anime_faces import AnimeFaces
from t2i_tf.tfds.css import Css, CssCaptions
from t2i_tf.tfds.cub_captions import CubCaptions
from t2i_tf.tfds.flowers_captions import FlowersCaptions

BUILDERS = (CubCaptions, FlowersCaptions, Css, CssCaptions, AnimeFaces)
NAMES = tuple(b.name for b in BUILDERS)

__all__ = ["BUILDERS", "NAMES", "AnimeFaces", "Css", "CssCaptions", "CubCaptions", "FlowersCaptions"]
