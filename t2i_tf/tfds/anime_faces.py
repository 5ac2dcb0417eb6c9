"""TFDS builder ``anime_faces``: anime faces with their tags as the caption (deep_t2i / MLDS "simple anime faces"),
through the anime converter.

Configs: ``default`` (every tag as written; the deep_t2i / MLDS 2018 ``tags.csv``) and ``colours`` (only the
``<colour> hair`` / ``<colour> eyes`` tags: for the MLDS 2017 ``tags_clean.csv``). Both store 64 px PNG squares and a
stratified 80/20 split. The prepared ``DATA_DIR/anime_faces/CONFIG/1.0.0`` folder is also a ``--data_dir`` for the
trainers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import tensorflow_datasets as tfds

from t2i_tf.datasets.anime import convert as anime_convert
from t2i_tf.tfds.base import T2IBuilder, locate


@dataclasses.dataclass(eq=False)
class AnimeFacesConfig(tfds.core.BuilderConfig):
    """The anime converter's options."""

    tag_filter: str = "all"
    image_size: int = anime_convert.DEFAULT_IMAGE_SIZE
    image_format: str = "png"
    test_fraction: float = anime_convert.DEFAULT_TEST_FRACTION
    seed: int = 0


class AnimeFaces(T2IBuilder):
    """Anime faces: one example per image, its tags ("blue hair red eyes") as its one caption, its class the tag
    string."""

    BUILDER_CONFIGS: ClassVar[list] = [
        AnimeFacesConfig(name="default", description="64 px faces, every tag of the row"),
        AnimeFacesConfig(name="colours", tag_filter="colours",
                         description="64 px faces, only the hair and eye colour tags (MLDS 2017 tags_clean.csv)"),
    ]
    DESCRIPTION = ("Anime faces with hair / eye colour tags (the 'simple anime faces' data of the MLDS 2018 course "
                   "that deep_t2i trains on, or the MLDS 2017 faces). The t2i_tf anime converter's records: skipped "
                   "images are counted and listed in info.json next to the prepared files.")
    HOMEPAGE = "https://github.com/cwza/deep_t2i"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put into manual_dir (nothing is downloaded) one of the published layouts, directly or in a folder under it:
    - deep_t2i: imgs/<id>.jpg and tags.csv (rows '0,aqua hair aqua eyes');
    - MLDS 2018 extra_data: extra_data/images/<id>.jpg and extra_data/tags.csv;
    - MLDS 2017: faces/<id>.jpg and tags_clean.csv (rows '0,long hair:123<TAB>blue eyes:45'; use the colours config).
    """

    def _convert(self, manual_dir: str, out_dir: str) -> dict[str, Any]:
        c = self.builder_config
        root = next((r for r in (locate(manual_dir, f) for f in anime_convert.TAG_FILES + anime_convert.NESTED)
                     if r is not None), manual_dir)  # else the converter names what is missing
        info = anime_convert.convert_anime(root, out_dir, image_size=c.image_size, image_format=c.image_format,
                                           test_fraction=c.test_fraction, seed=c.seed, tag_filter=c.tag_filter)
        return self._check_converted(info)
