"""t2i_tf.data.images: the one reader of outside images."""

import io

import numpy as np
import pytest
from PIL import Image

from t2i_tf.data.images import UnreadableImage, read_image


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def test_png_and_jpeg_are_read_as_rgb():
    rgb = np.random.default_rng(0).integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_image(encoded(Image.fromarray(rgb), "PNG")), rgb)
    jpeg = read_image(encoded(Image.fromarray(rgb), "JPEG", quality=95))
    assert jpeg.shape == (6, 5, 3) and jpeg.dtype == np.uint8


def test_sixteen_bit_greyscale_is_scaled_not_clipped_to_white():
    values = np.array([[0, 257 * 100], [65535, 257 * 7]], dtype=np.uint16)  # 8-bit 0, 100, 255, 7
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    out = read_image(encoded(image, "PNG"))
    np.testing.assert_array_equal(out[..., 0], [[0, 100], [255, 7]])
    assert (out[..., 0] == out[..., 2]).all()


def test_transparency_is_composited_on_white():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red; the rest fully transparent black
    out = read_image(encoded(Image.fromarray(rgba, mode="RGBA"), "PNG"))
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[1, 1], [255, 255, 255])


@pytest.mark.parametrize("data, message", [
    (encoded(Image.new("RGB", (4, 4)), "GIF"), "is not a PNG or JPEG image"),
    (encoded(Image.new("RGB", (4, 4)), "TIFF"), "is not a PNG or JPEG image"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "is not a PNG or JPEG image"),
    (encoded(Image.new("RGB", (64, 64), (9, 9, 9)), "PNG")[:-30], "is truncated or corrupt"),
    (b"not an image", "is not a PNG or JPEG image"),
])
def test_other_formats_and_broken_files_are_refused(data, message):
    with pytest.raises(UnreadableImage, match=f"upload {message}"):
        read_image(data, "upload")


def test_the_pixel_budget_is_checked_before_decoding(tmp_path):
    big = encoded(Image.new("L", (3000, 3000)), "PNG")  # a few kB that would decode to 9 MP
    with pytest.raises(UnreadableImage, match="upload is 3000x3000 = 9,000,000 pixels; at most 4,194,304 are read"):
        read_image(big, "upload", max_pixels=2048 * 2048)
    path = tmp_path / "x.png"
    path.write_bytes(big)
    assert read_image(str(path)).shape == (3000, 3000, 3)
    with pytest.raises(UnreadableImage, match="does not exist"):
        read_image(str(tmp_path / "missing.png"))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG signature + IHDR announcing width x height (8-bit RGB) + IEND: tiny, with no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def test_a_decompression_bomb_header_is_a_clear_error_not_pillows():
    """Pillow refuses > 2 x its MAX_IMAGE_PIXELS (about 179 MP) at open with DecompressionBombError, before our budget."""
    bomb = _png_header_only(30000, 30000)
    assert len(bomb) < 100
    with pytest.raises(UnreadableImage, match="--image announces too many pixels"):
        read_image(bomb, "--image")
