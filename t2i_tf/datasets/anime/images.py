"""Images of the anime layouts: which file a row names, what format its bytes are, and the stored square.

Only PNG and JPEG are read (by extension and by content); an image file of another format (GIF, WebP, BMP, TIFF)
is an ``unsupported_format`` skip, a PNG/JPEG that does not decode a ``corrupt_image`` skip. The stored image is
the centre square resized to ``image_size`` (Pillow bicubic with antialiasing, when the size differs), encoded
as ``image_format`` (PNG lossless, or JPEG at quality 95), so every record has the same size and format.
"""

from __future__ import annotations

import io
import os

from PIL import Image

from t2i_tf.data import images as image_reader

EXTENSIONS = (".jpg", ".jpeg", ".png")
IMAGE_FORMATS = ("png", "jpeg")
JPEG_QUALITY = 95
_OTHER_MAGIC = ((b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


class ImageSkip(Exception):
    """An image that is not converted: ``reason`` (a skip reason of info.json) and a short ``detail``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def resolve(images_dir: str, name: str, listing: set[str]) -> str | None:
    """The file a row's image name means: the name itself, or ``name + .jpg/.jpeg/.png`` when it has no extension
    (deep_t2i's ``0`` -> ``imgs/0.jpg``). ``listing`` is the images folder's file names."""
    if name in listing:
        return os.path.join(images_dir, name)
    if not os.path.splitext(name)[1]:
        for ext in EXTENSIONS + tuple(e.upper() for e in EXTENSIONS):
            if name + ext in listing:
                return os.path.join(images_dir, name + ext)
    return None


def sniff(data: bytes) -> str | None:
    """'PNG', 'JPEG', another format's name, or None when the bytes start like no image format known here."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    for magic, fmt in _OTHER_MAGIC:
        if data.startswith(magic):
            return fmt
    return None


def square_image(path: str, image_size: int, image_format: str) -> bytes:
    """The file at ``path`` as an ``image_size`` x ``image_size`` RGB image encoded as ``image_format``;
    :class:`ImageSkip` when it cannot be."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise ImageSkip("unsupported_format", f"extension {ext or '(none)'!r}: only {', '.join(EXTENSIONS)} are read")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ImageSkip("unreadable_file", f"{type(e).__name__}: {e.strerror or e}") from None
    kind = sniff(data)
    if kind not in ("PNG", "JPEG"):
        if kind is not None:
            raise ImageSkip("unsupported_format", f"a {kind} file named {os.path.basename(path)}: only PNG and "
                                                  "JPEG are read")
        raise ImageSkip("corrupt_image", "not a PNG or JPEG file (unknown header)" if data else "empty file")
    try:
        img = image_reader.to_rgb(image_reader.open_image(data, os.path.basename(path)))
    except image_reader.UnreadableImage as e:
        raise ImageSkip("corrupt_image", f"a {kind} file that does not decode: {e}") from None
    except Exception as e:  # noqa: BLE001 -- a file Pillow opened but cannot convert is as bad as one it cannot open
        raise ImageSkip("corrupt_image", f"{type(e).__name__}: {e}") from None
    w, h = img.size
    if w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if img.size != (image_size, image_size):
        img = img.resize((image_size, image_size), Image.BICUBIC, reducing_gap=None)
    out = io.BytesIO()
    if image_format == "png":
        img.save(out, format="PNG")
    else:
        img.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
