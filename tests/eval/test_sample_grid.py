"""Sample sheets: images laid out per caption row, enlarged without interpolation, captions wrapped."""

import numpy as np
import pytest
from PIL import ImageFont

from t2i_tf.eval.sample_grid import PAD, captioned_grid, wrap_text


def test_grid_places_each_image_enlarged_nearest():
    images = np.random.default_rng(0).integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
    sheet = np.asarray(captioned_grid(images, min_cell=32))  # 8 px -> 4x
    assert sheet.shape[1] == 3 * 32 + 4 * PAD
    for c in range(3):
        x = PAD + c * (32 + PAD)
        np.testing.assert_array_equal(sheet[PAD:PAD + 32:4, x:x + 32:4], images[0, c])
    y = PAD + 32 + PAD  # no captions: rows follow each other
    np.testing.assert_array_equal(sheet[y:y + 32:4, PAD:PAD + 32:4], images[1, 0])


def test_captions_are_written_and_wrapped():
    images = np.full((1, 2, 16, 16, 3), 255, np.uint8)
    long = "a large red circle at the top left and a small blue triangle in the center"
    plain = np.asarray(captioned_grid(images))
    sheet = np.asarray(captioned_grid(images, [long]))
    assert sheet.shape[0] > plain.shape[0] + 20  # several lines of text below the row
    assert (sheet[plain.shape[0]:] < 100).any()  # dark text pixels
    font = ImageFont.load_default()
    lines = wrap_text(long, 100, font)
    assert " ".join(lines) == long and len(lines) > 1
    assert all(font.getlength(line) <= 100 for line in lines)


def test_bad_inputs():
    with pytest.raises(ValueError, match="uint8"):
        captioned_grid(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="1 captions for 2 rows"):
        captioned_grid(np.zeros((2, 1, 8, 8, 3), np.uint8), ["x"])
