"""TFDS builder ``flowers_captions``: Oxford-102 Flowers with 10 captions per image (Reed et al. 2016), through the
Flowers converter.

Configs: ``default`` (images + captions), ``stackgan_embeddings`` (+ StackGAN's char-CNN-RNN embeddings, 1024-d).
The prepared ``DATA_DIR/flowers_captions/CONFIG/1.0.0`` folder is also a ``--data_dir`` for the trainers.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from t2i_tf.datasets.flowers import convert as flowers_convert
from t2i_tf.datasets.stackgan_pickles import EMBEDDINGS_FILE
from t2i_tf.tfds.base import T2IBuilder, T2IBuilderConfig, find_dir_with, locate


class FlowersCaptions(T2IBuilder):
    """Oxford-102 flowers with captions: one example per image (not cropped), named class_XXXXX/image_XXXXX."""

    BUILDER_CONFIGS: ClassVar[list] = [
        T2IBuilderConfig(name="default", description="images and 10 captions per image"),
        T2IBuilderConfig(name="stackgan_embeddings", embeddings=True,
                         description="plus StackGAN's char-CNN-RNN embeddings (1024-d, one per caption)"),
    ]
    DESCRIPTION = ("Oxford 102 Category Flower Dataset with Reed et al.'s captions; the 82/20 class-disjoint split "
                   "(StackGAN's filenames.pickle or Reed's class lists when present). The t2i_tf Flowers "
                   "converter's records: skipped images are counted in info.json next to the prepared files.")
    HOMEPAGE = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
    CITATION = """@inproceedings{nilsback2008automated, title={Automated Flower Classification over a Large Number of
Classes}, author={Nilsback, Maria-Elena and Zisserman, Andrew}, booktitle={ICVGIP}, year={2008}}
@inproceedings{reed2016learning, title={Learning Deep Representations of Fine-Grained Visual Descriptions},
author={Reed, Scott and Akata, Zeynep and Lee, Honglak and Schiele, Bernt}, booktitle={CVPR}, year={2016}}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put into manual_dir (nothing is downloaded):
    - jpg/image_XXXXX.jpg from 102flowers.tgz (manual_dir or a folder directly under it);
    - Reed's captions text_c10/class_XXXXX/image_XXXXX.txt (from cvpr2016_flowers.tar.gz: cvpr2016_flowers/text_c10)
      next to jpg/;
    - optional split files: StackGAN's {train,test}/filenames.pickle or Reed's trainvalclasses.txt/testclasses.txt
      (else classes 1-82 train, 83-102 test);
    - for the stackgan_embeddings config: StackGAN's flowers/{train,test}/char-CNN-RNN-embeddings.pickle (a folder
      directly under manual_dir).
    """

    def _convert(self, manual_dir: str, out_dir: str) -> dict[str, Any]:
        config = self.builder_config
        flowers_dir = locate(manual_dir, "jpg") or manual_dir  # else the converter names what is missing
        embeddings_dir = None
        if config.embeddings:
            embeddings_dir = find_dir_with(manual_dir, os.path.join("train", EMBEDDINGS_FILE),
                                           "StackGAN's flowers folder", "needed by the stackgan_embeddings config")
        info = flowers_convert.convert_flowers(flowers_dir, out_dir, embeddings_dir=embeddings_dir,
                                               max_side=config.max_side, test_classes=config.test_classes,
                                               test_fraction=config.test_fraction)
        return self._check_converted(info)
