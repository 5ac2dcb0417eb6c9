"""TFDS builders on a CSS raw layout (``css_toy_dataset_novel2_small.dup.npy`` + ``images/``: the official download
or ``t2i-tf-css-generate`` / ``python -m datasets.css.generate``):

- ``css``: TIRG's CSS, through the CSS converter; config ``images`` (the gallery: image, image_id, label,
  scene_cells) and config ``queries`` (source_id, target_id, text, source/target labels, mod_id): two record sets
  of one conversion, so ``t2i-tf-tfds-build css`` prepares both, and TIRG's ``--data_dir`` is
  ``tfds:css@TFDS_DATA_DIR`` (or either prepared folder): t2i_tf.data.css reads the gallery from
  ``css/images/VERSION`` and the queries from ``css/queries/VERSION``;
- ``css_captions``: captioned CSS for text-to-image (one example per distinct scene, rendered), through the
  captioned-CSS converter; configs ``default`` (64 px) and ``attributes`` (+ 126-d oracle scene-attribute
  embeddings).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds

from t2i_tf.data.css_cells import NUM_CELLS
from t2i_tf.datasets.css import captions as css_captions
from t2i_tf.datasets.css import convert as css_convert
from t2i_tf.datasets.css.generate import IMAGES_DIR, NPY_NAME
from t2i_tf.tfds.base import ConvertedBuilder, T2IBuilder, T2IBuilderConfig, locate

CSS_CITATION = """@inproceedings{vo2019composing, title={Composing Text and Image for Image Retrieval - an Empirical
Odyssey}, author={Vo, Nam and Jiang, Lu and Sun, Chen and Murphy, Kevin and Li, Li-Jia and Fei-Fei, Li and Hays,
James}, booktitle={CVPR}, year={2019}}"""
CSS_HOMEPAGE = "https://github.com/google/tirg"
CSS_MANUAL = f"""\
    Put into manual_dir (nothing is downloaded) a CSS raw layout: {NPY_NAME} and {IMAGES_DIR}/css_{{split}}_NNNNNN.png,
    i.e. the official CSS download (the npy is read with a restricted unpickler), or the generated scenes of
    `t2i-tf-css-generate --out_dir=DIR` (python -m datasets.css.generate); manual_dir or a folder directly under it.
    """


def _raw_dir(manual_dir: str) -> str:
    return locate(manual_dir, NPY_NAME) or manual_dir  # else the converter names what is missing


@dataclasses.dataclass(eq=False)
class CssConfig(tfds.core.BuilderConfig):
    """Which record set of the CSS converter (``images`` or ``queries``) and the stored image size."""

    record_kind: str = "images"
    image_size: int = 64


class Css(ConvertedBuilder):
    """CSS (Vo et al. 2019) for composed retrieval: gallery images and (source, modification text, target) queries."""

    BUILDER_CONFIGS: ClassVar[list] = [
        CssConfig(name="images", record_kind="images", description="gallery images, 64 px, with their scene cells"),
        CssConfig(name="queries", record_kind="queries", description="(source image id, text, target image id)"),
    ]
    DESCRIPTION = ("CSS: synthetic 3x3 scenes of shapes with modification texts (TIRG). Two configs of one "
                   "conversion: images (ids index the gallery of the same split) and queries. Skipped images and "
                   "queries are counted in info.json next to the prepared files.")
    HOMEPAGE = CSS_HOMEPAGE
    CITATION = CSS_CITATION
    MANUAL_DOWNLOAD_INSTRUCTIONS = CSS_MANUAL
    PREPARE_ALL_CONFIGS: ClassVar[bool] = True  # TIRG reads both (t2i_tf.data.css.record_dirs)

    def _features(self) -> tfds.features.FeaturesDict:
        config = self.builder_config
        if config.record_kind == "images":
            size = int(config.image_size)
            return tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(size, size, 3), encoding_format="png"),
                "image_id": tfds.features.Scalar(np.int64, doc="index of the image in its split"),
                "label": tfds.features.Scalar(np.int64, doc="the npy's label (else the image id)"),
                "scene_cells": tfds.features.Tensor(shape=(NUM_CELLS,), dtype=np.int64,
                                                    doc="cell codes (t2i_tf/data/css_cells.py); -1 x 9: not codable"),
            })

        def scalar(doc: str) -> tfds.features.Scalar:
            return tfds.features.Scalar(np.int64, doc=doc)

        return tfds.features.FeaturesDict({
            "source_id": scalar("image_id of the source image"), "target_id": scalar("image_id of the target"),
            "text": tfds.features.Text(doc="the modification, e.g. 'make middle-left large circle green'"),
            "source_label": scalar("label of the source image"), "target_label": scalar("label of the target"),
            "mod_id": scalar("index of the modification in the npy"),
        })

    def _convert(self, manual_dir: str, out_dir: str) -> dict[str, Any]:
        return css_convert.convert_css(_raw_dir(manual_dir), out_dir, image_size=int(self.builder_config.image_size))

    def _record_sets(self, info: dict[str, Any]) -> dict[str, str]:
        kind = self.builder_config.record_kind
        count = "num_images" if kind == "images" else "num_queries"
        return {f"{kind}_{s}": s for s, v in info.get("splits", {}).items() if v.get(count, 0) > 0}

    def _example(self, values: dict[str, list]) -> dict[str, Any]:
        if self.builder_config.record_kind == "images":
            return {"image": values["image"][0], "image_id": int(values["image_id"][0]),
                    "label": int(values["label"][0]), "scene_cells": np.asarray(values["scene_cells"], np.int64)}
        out: dict[str, Any] = {k: int(values[k][0]) for k in ("source_id", "target_id", "source_label",
                                                                "target_label", "mod_id")}
        out["text"] = values["text"][0].decode("utf-8")
        return out


@dataclasses.dataclass(eq=False)
class CssCaptionsConfig(T2IBuilderConfig):
    """The captioned-CSS converter's options."""

    image_size: int = 64
    captions_per_image: int = css_captions.DEFAULT_CAPTIONS_PER_IMAGE
    num_classes: int = css_captions.DEFAULT_NUM_CLASSES


class CssCaptions(T2IBuilder):
    """Captioned CSS scenes for text-to-image (GAN-CLS, StackGAN, AttnGAN): the text-to-image record schema plus
    each scene's 9 cell codes."""

    BUILDER_CONFIGS: ClassVar[list] = [
        CssCaptionsConfig(name="default", description="64 px scenes, 3 captions each, 50 hash-bucket classes"),
        CssCaptionsConfig(name="attributes", embeddings=True, embedding_dim=css_captions.ATTRIBUTE_DIM,
                          description="plus a 126-d oracle scene-attribute embedding per caption"),
    ]
    EXTRA_INT64: ClassVar[dict[str, int]] = {"scene_cells": NUM_CELLS}
    DESCRIPTION = ("CSS scenes rendered with a caption and paraphrases (t2i_tf captioned-CSS converter), one example "
                   "per distinct scene; class_id is a hash bucket of the caption (see info.json class_id_rule).")
    HOMEPAGE = CSS_HOMEPAGE
    CITATION = CSS_CITATION
    MANUAL_DOWNLOAD_INSTRUCTIONS = CSS_MANUAL

    def _convert(self, manual_dir: str, out_dir: str) -> dict[str, Any]:
        c = self.builder_config
        info = css_captions.convert_css_captions(_raw_dir(manual_dir), out_dir, image_size=int(c.image_size),
                                                 captions_per_image=int(c.captions_per_image),
                                                 num_classes=int(c.num_classes), attribute_embeddings=c.embeddings)
        return self._check_converted(info)
