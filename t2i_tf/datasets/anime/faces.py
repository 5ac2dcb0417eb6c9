"""Simple face-like drawings whose hair and eye colours follow their tags, and the regions that show those colours.

A face is drawn on a 64-unit canvas (scaled to any size): a pastel background, a hair ellipse (some faces with
long side locks), a skin-coloured face under bangs, two iris ellipses and a mouth, with per-image jitter of
position (+-1 unit), hair size, colour shade (+-8 per channel), a top-to-bottom hair shading and pixel noise. The
colours come from :data:`PALETTE` by tag (``"blue hair red eyes"``), so the conditioning is learnable and can be
checked: :func:`region_colours` reads the median colour of the :data:`HAIR_BOX` (always hair) and the
:data:`EYE_BOXES` (always iris), whatever the jitter or a horizontal flip, and :func:`nearest` names it.
"""

from __future__ import annotations

import numpy as np

from t2i_tf.datasets.anime.tags import EYE_COLOURS, HAIR_COLOURS

PALETTE: dict[str, tuple[int, int, int]] = {
    "orange": (245, 130, 20), "white": (240, 240, 240), "aqua": (40, 210, 210), "gray": (130, 130, 130),
    "green": (40, 160, 60), "red": (200, 30, 40), "purple": (120, 50, 170), "pink": (245, 140, 190),
    "blue": (40, 70, 210), "black": (30, 30, 35), "brown": (115, 70, 35), "blonde": (245, 220, 120),
    "yellow": (235, 215, 20),
}
HAIR = HAIR_COLOURS  # deep_t2i's 12 hair colours
EYES = tuple(c for c in EYE_COLOURS if c != "gray")  # deep_t2i's 10 eye colours (MLDS 2017 adds gray)
SKIN = (250, 222, 195)
UNITS = 64.0
CENTRE = (31.5, 36.0)  # face centre (x, y) in units; symmetric under a horizontal flip
EYE_DX, EYE_DY, EYE_RX, EYE_RY = 7.0, 3.0, 4.0, 5.0
# Boxes (x0, y0, x1, y1) in units, end exclusive, that lie inside the hair / each iris for every jitter and flip.
HAIR_BOX = (24.0, 10.0, 40.0, 15.0)
EYE_BOXES = ((CENTRE[0] - EYE_DX - 1.5, CENTRE[1] + EYE_DY - 1.5, CENTRE[0] - EYE_DX + 1.5, CENTRE[1] + EYE_DY + 1.5),
             (CENTRE[0] + EYE_DX - 1.5, CENTRE[1] + EYE_DY - 1.5, CENTRE[0] + EYE_DX + 1.5, CENTRE[1] + EYE_DY + 1.5))


def caption(hair: str, eyes: str) -> str:
    """The tags of a face, as the data writes them: ``'blue hair red eyes'``."""
    return f"{hair} hair {eyes} eyes"


def draw_face(hair: str, eyes: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """uint8 [size, size, 3]: one face with ``hair`` and ``eyes`` colours (names of :data:`PALETTE`)."""
    k = size / UNITS
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / k
    jx, jy = rng.integers(-1, 2, size=2)
    cx, cy = CENTRE[0] + jx, CENTRE[1] + jy
    bg = rng.uniform(185, 235) + rng.uniform(-12, 12, size=3)
    img = np.broadcast_to(bg, (size, size, 3)).astype(np.float32).copy()

    hair_rgb = np.asarray(PALETTE[hair], np.float32) + rng.uniform(-8, 8, size=3)
    rx, ry = 23.0 + rng.uniform(0, 3), 27.0 + rng.uniform(0, 2)
    hair_mask = ((x - cx) / rx) ** 2 + ((y - (cy - 4)) / ry) ** 2 <= 1
    if rng.random() < 0.5:  # long side locks
        hair_mask |= (np.abs(x - cx) <= rx) & (np.abs(x - cx) >= 11) & (y >= cy - 4) & (y <= 62)
    shade = 1.0 - 0.18 * np.clip((y - 4) / 56, 0, 1)
    img[hair_mask] = (hair_rgb[None, :] * shade[hair_mask][:, None])

    face_mask = (((x - cx) / 15) ** 2 + ((y - (cy + 5)) / 17) ** 2 <= 1) & (y >= cy - 5 + rng.uniform(-1, 1))
    img[face_mask] = np.asarray(SKIN, np.float32) + rng.uniform(-6, 6, size=3)

    eye_rgb = np.asarray(PALETTE[eyes], np.float32) + rng.uniform(-8, 8, size=3)
    for side in (-1, 1):
        ex, ey = cx + side * EYE_DX, cy + EYE_DY
        iris = ((x - ex) / EYE_RX) ** 2 + ((y - ey) / EYE_RY) ** 2 <= 1
        img[iris] = eye_rgb
        lash = (np.abs(x - ex) <= EYE_RX + 0.5) & (np.abs(y - (ey - EYE_RY - 0.5)) <= 0.6)
        img[lash] = (40, 25, 25)
    mouth = (np.abs(x - cx) <= 2.5) & (np.abs(y - (cy + 14)) <= 0.6)
    img[mouth] = (190, 80, 90)
    img += rng.normal(0, 4, size=img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _box_pixels(img: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    k = img.shape[0] / UNITS
    x0, y0, x1, y1 = (round(v * k) for v in box)
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    return img[y0:y1, x0:x1].reshape(-1, 3)


def region_colours(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hair RGB, eye RGB): the per-channel medians of :data:`HAIR_BOX` and of both :data:`EYE_BOXES`."""
    hair = np.median(_box_pixels(img, HAIR_BOX), axis=0)
    eyes = np.median(np.concatenate([_box_pixels(img, b) for b in EYE_BOXES]), axis=0)
    return hair, eyes


def nearest(rgb: np.ndarray, names: tuple[str, ...]) -> str:
    """The name among ``names`` whose :data:`PALETTE` colour is nearest to ``rgb`` (Euclidean RGB)."""
    colours = np.asarray([PALETTE[n] for n in names], np.float32)
    return names[int(np.argmin(((colours - np.asarray(rgb, np.float32)[None, :]) ** 2).sum(axis=1)))]
