"""PNG sample sheets: one row of generated images per caption, the caption written under its row."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PAD = 4
LINE_HEIGHT = 13  # Pillow's built-in font is about 11 px high


def wrap_text(text: str, width: float, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> list[str]:
    """Greedy word wrap of ``text`` into lines no wider than ``width`` pixels (a longer word gets its own line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(lines[-1] + " " + word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def captioned_grid(images: np.ndarray, captions: Sequence[str] | None = None, min_cell: int = 64) -> Image.Image:
    """``images`` uint8 [rows, cols, H, W, 3] -> one RGB sheet; ``captions[r]`` (wrapped) under row ``r``.

    Images smaller than ``min_cell`` are enlarged with nearest-neighbour (pixels stay visible, nothing is
    invented) so a 32 px sample is still readable next to its caption.
    """
    images = np.asarray(images)
    if images.ndim != 5 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [rows, cols, H, W, 3]; got {images.dtype} {images.shape}")
    rows, cols, h, w, _ = images.shape
    if captions is not None and len(captions) != rows:
        raise ValueError(f"{len(captions)} captions for {rows} rows")
    zoom = max(1, -(-min_cell // max(h, w)))
    ch, cw = h * zoom, w * zoom
    width = cols * cw + (cols + 1) * PAD
    font = ImageFont.load_default()
    lines = [wrap_text(c, width - 2 * PAD, font) or [""] for c in captions] if captions else [[] for _ in range(rows)]
    height = PAD + sum(ch + PAD + len(ls) * LINE_HEIGHT + (PAD if ls else 0) for ls in lines)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = PAD
    for r in range(rows):
        for c in range(cols):
            tile = Image.fromarray(images[r, c]).resize((cw, ch), Image.NEAREST)
            sheet.paste(tile, (PAD + c * (cw + PAD), y))
        y += ch + PAD
        for line in lines[r]:
            draw.text((PAD, y), line, fill=(0, 0, 0), font=font)
            y += LINE_HEIGHT
        if lines[r]:
            y += PAD
    return sheet
