"""The one reader of images that come from outside (dataset files, uploads, ``--image``, demo galleries).

PNG and JPEG only (Pillow is never asked to guess: EPS would run Ghostscript, and GIF/TIFF are not what the
docs promise), a pixel budget checked from the header before anything is decoded, complete files only (a
truncated file is an error, not a grey band), 16-bit greyscale scaled to 8 bits (``convert("RGB")`` would
clip it to white), transparency composited on white.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from t2i_tf.errors import UserError

FORMATS = ("PNG", "JPEG")
# Pillow's own bomb guard warns at 89 MP; dataset images here are far smaller (CUB ~0.2 MP).
MAX_PIXELS = 50_000_000


class UnreadableImage(UserError):
    """An image file that is not a complete PNG / JPEG within the pixel budget."""


def open_image(data: bytes, what: str = "image", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """``data`` fully decoded, after its format and size were checked; UnreadableImage otherwise."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:
        raise UnreadableImage(f"{what} announces too many pixels; at most {max_pixels:,} are read") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UnreadableImage(f"{what} is not a PNG or JPEG image ({type(e).__name__})") from None
    width, height = image.size
    if width * height > max_pixels:
        raise UnreadableImage(f"{what} is {width}x{height} = {width * height:,} pixels; at most {max_pixels:,} are read")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise UnreadableImage(f"{what} is truncated or corrupt ({type(e).__name__}: {e})") from None
    return image


def image_header_size(data: bytes, what: str = "image") -> tuple[int, int]:
    """(width, height) from a PNG / JPEG header, without decoding the pixels; UnreadableImage otherwise."""
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            return image.size
    except Image.DecompressionBombError:
        raise UnreadableImage(f"{what} announces too many pixels (a decompression bomb)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UnreadableImage(f"{what} is not a PNG or JPEG image ({type(e).__name__})") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """An RGB version: 16-bit greyscale scaled to 8 bits, transparent pixels composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image).astype(np.int64)
        peak = 65535 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255
        grey = np.clip(np.round(values * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def read_image(source: str | bytes, what: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """uint8 RGB [H, W, 3] from a file path or encoded bytes; UnreadableImage (a UserError) when it is not one."""
    if isinstance(source, (str, os.PathLike)):
        what = what or str(source)
        if not os.path.isfile(source):
            raise UnreadableImage(f"{what} does not exist (or is not a regular file)")
        with open(source, "rb") as f:
            source = f.read()
    return np.asarray(to_rgb(open_image(source, what or "image", max_pixels)))
