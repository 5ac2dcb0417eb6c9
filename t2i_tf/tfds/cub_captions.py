"""TFDS builder ``cub_captions``: CUB-200-2011 with 10 captions per image (Reed et al. 2016), through the CUB converter.

Configs: ``default`` (images + captions), ``stackgan_embeddings`` (+ StackGAN's char-CNN-RNN embeddings, 1024-d).
The prepared ``DATA_DIR/cub_captions/CONFIG/1.0.0`` folder is also a ``--data_dir`` for the trainers.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from t2i_tf.datasets.cub import convert as cub_convert
from t2i_tf.datasets.stackgan_pickles import EMBEDDINGS_FILE
from t2i_tf.tfds.base import T2IBuilder, T2IBuilderConfig, find_dir_with, locate


class CubCaptions(T2IBuilder):
    """CUB-200-2011 birds with captions: one example per image, cropped around its box as StackGAN/AttnGAN do."""

    BUILDER_CONFIGS: ClassVar[list] = [
        T2IBuilderConfig(name="default", description="images, boxes crop, 10 captions per image"),
        T2IBuilderConfig(name="stackgan_embeddings", embeddings=True,
                         description="plus StackGAN's char-CNN-RNN embeddings (1024-d, one per caption)"),
    ]
    DESCRIPTION = ("Caltech-UCSD Birds-200-2011 with Reed et al.'s captions; the 150/50 class-disjoint split "
                   "(StackGAN's filenames.pickle or Reed's class lists when present). The t2i_tf CUB converter's "
                   "records: skipped images are counted in info.json next to the prepared files.")
    HOMEPAGE = "https://www.vision.caltech.edu/datasets/cub_200_2011/"
    CITATION = """@techreport{WahCUB_200_2011, title={The Caltech-UCSD Birds-200-2011 Dataset},
author={Wah, C. and Branson, S. and Welinder, P. and Perona, P. and Belongie, S.}, year={2011},
institution={California Institute of Technology}, number={CNS-TR-2011-001}}
@inproceedings{reed2016learning, title={Learning Deep Representations of Fine-Grained Visual Descriptions},
author={Reed, Scott and Akata, Zeynep and Lee, Honglak and Schiele, Bernt}, booktitle={CVPR}, year={2016}}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put into manual_dir (nothing is downloaded):
    - CUB_200_2011/ from CUB_200_2011.tgz (images.txt, bounding_boxes.txt, images/);
    - the captions, <class>/<name>.txt: StackGAN's birds/text (manual_dir may be StackGAN's birds/ folder itself)
      or Reed's cvpr2016_cub/text_c10 (from cvpr2016_cub.tar.gz), next to CUB_200_2011/;
    - optional split files: StackGAN's {train,test}/filenames.pickle or Reed's trainvalclasses.txt/testclasses.txt
      (else classes 1-150 train, 151-200 test);
    - for the stackgan_embeddings config: StackGAN's birds/{train,test}/char-CNN-RNN-embeddings.pickle (manual_dir
      or a folder directly under it).
    """

    def _convert(self, manual_dir: str, out_dir: str) -> dict[str, Any]:
        config = self.builder_config
        embeddings_dir = None
        if config.embeddings:
            embeddings_dir = find_dir_with(manual_dir, os.path.join("train", EMBEDDINGS_FILE),
                                           "StackGAN's birds folder", "needed by the stackgan_embeddings config")
        # manual_dir holds CUB_200_2011/ (or is StackGAN's birds/ folder); else the converter names what is missing
        cub_dir = locate(manual_dir, os.path.join(cub_convert.CUB_FOLDER, "images.txt")) or manual_dir
        info = cub_convert.convert_cub(cub_dir, out_dir, embeddings_dir=embeddings_dir, max_side=config.max_side,
                                       test_classes=config.test_classes, test_fraction=config.test_fraction)
        return self._check_converted(info)
