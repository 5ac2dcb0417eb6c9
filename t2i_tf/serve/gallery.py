"""The demo's image gallery (``--gallery_dir``): images by id, thumbnails, and on CSS the held-out queries.

``--gallery_dir`` is either a folder of .png/.jpg images, or a CSS dataset in its raw layout (official download or
generated: ``css_toy_dataset_novel2_small.dup.npy`` + ``images/``; also its ``images/`` folder itself). On CSS the
gallery is the test split's images and every test image knows its queries (modification text -> target image), so
the page can offer them and mark the expected target (an image of the target's scene: identical scenes share a
label, as the official evaluation counts hits). Items are known to clients by id and name only, never by path.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from PIL import Image

from t2i_tf.data.images import read_image
from t2i_tf.errors import UserError

GALLERY_SUFFIXES = (".png", ".jpg", ".jpeg")
THUMBNAIL_SIDE = 128  # larger gallery images are shrunk to this for the page
MAX_IMAGE_SIDE = 2048
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE  # any one upload or gallery image
MAX_PAGE_ITEMS = 200
CSS_TEST_FILE = re.compile(r"^css_test_(\d+)\.png$")


def bomb_refused(what: str, error: Exception) -> UserError:
    """Pillow's DecompressionBombError (raised by Image.open itself for images over ~179 MP) as a UserError."""
    return UserError(f"{what} has too many pixels ({error}); at most {MAX_IMAGE_PIXELS:,} are read")


def read_gallery_image(path: str) -> np.ndarray:
    """A gallery file as uint8 RGB [H, W, 3]; UserError if it is not a readable PNG / JPEG within the limit."""
    try:
        return read_image(path, os.path.basename(path), max_pixels=MAX_IMAGE_PIXELS)  # FIFOs etc. refused
    except Image.DecompressionBombError as e:
        raise bomb_refused(os.path.basename(path), e) from None


def png_bytes(image: np.ndarray) -> bytes:
    """PNG file bytes of a uint8 [H, W, 3] (or [H, W]) image."""
    out = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(out, format="PNG")
    return out.getvalue()


def _css_layout(gallery_dir: str) -> tuple[str, str | None]:
    """(images folder, CSS annotation npy or None) of ``gallery_dir``."""
    from t2i_tf.datasets.css.generate import IMAGES_DIR, NPY_NAME

    if os.path.isfile(os.path.join(gallery_dir, NPY_NAME)) and os.path.isdir(os.path.join(gallery_dir, IMAGES_DIR)):
        return os.path.join(gallery_dir, IMAGES_DIR), os.path.join(gallery_dir, NPY_NAME)
    parent = os.path.dirname(os.path.abspath(gallery_dir))
    if os.path.basename(os.path.abspath(gallery_dir)) == IMAGES_DIR and os.path.isfile(os.path.join(parent, NPY_NAME)):
        return gallery_dir, os.path.join(parent, NPY_NAME)
    return gallery_dir, None


def css_test_queries(npy: str) -> tuple[list[int], list[tuple[int, str, int]]]:
    """(labels of the test images, [(source index, text, target index)]) from a CSS annotation file."""
    from t2i_tf.data.safe_pickle import load_npy
    from t2i_tf.datasets.css.convert import _as_id, _field, _labels, _queries, _splits

    splits = _splits(load_npy(npy), npy)
    if "test" not in splits:
        raise UserError(f"{npy} has no 'test' split: the gallery's queries come from it")
    sd, where = splits["test"], f"{npy} split 'test'"
    n = len(_field(sd, "objects_img", where))
    labels = _labels(_field(sd, "labels", where), where) if ("labels" in sd or b"labels" in sd) else list(range(n))
    queries = []
    for _, source, target, text in _queries(_field(sd, "mods", where), where):
        s, t = _as_id(source, n), _as_id(target, n)
        if s is not None and t is not None and text:
            queries.append((s, text, t))
    return labels, queries


class Gallery:
    """Readable images of a folder (sorted by name, ids 0..n-1), their thumbnails and (CSS) test queries."""

    def __init__(self, gallery_dir: str):
        if not os.path.isdir(gallery_dir):
            raise UserError(f"--gallery_dir {gallery_dir} is not a directory")
        images_dir, npy = _css_layout(gallery_dir)
        names = sorted(n for n in os.listdir(images_dir) if n.lower().endswith(GALLERY_SUFFIXES))
        if npy and images_dir != gallery_dir:  # a CSS dataset root: its test split is the gallery
            names = [n for n in names if CSS_TEST_FILE.match(n)]
        self.files: list[str] = []
        self.skipped: list[str] = []
        self.shapes: list[tuple[int, ...]] = []
        for name in names:
            path = os.path.join(images_dir, name)
            try:
                self.shapes.append(read_gallery_image(path).shape)
            except (UserError, OSError):
                self.skipped.append(name)
                continue
            self.files.append(path)
        if not self.files:
            raise UserError(f"--gallery_dir {gallery_dir} has no readable .png/.jpg images ({len(self.skipped)} unreadable)")
        self.names = [os.path.basename(f) for f in self.files]
        self.is_css = npy is not None
        self.labels: list[int | None] = [None] * len(self.files)
        self.queries: list[list[dict[str, Any]]] = [[] for _ in self.files]
        if npy:
            self._link_css_queries(npy)
        self._thumbs: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        print(f"gallery: {len(self.files)} images from {gallery_dir} ({len(self.skipped)} unreadable, skipped)"
              + (f"; {sum(map(len, self.queries))} CSS test queries" if npy else ""), flush=True)

    def _link_css_queries(self, npy: str) -> None:
        labels, queries = css_test_queries(npy)
        by_index = {}
        for i, name in enumerate(self.names):
            m = CSS_TEST_FILE.match(name)
            if m and int(m.group(1)) < len(labels):
                by_index[int(m.group(1))] = i
                self.labels[i] = labels[int(m.group(1))]
        for source, text, target in queries:
            if source in by_index and target in by_index:
                self.queries[by_index[source]].append({"text": text, "target": by_index[target]})

    def __len__(self) -> int:
        return len(self.files)

    def check_id(self, item_id: Any, key: str = "gallery_id") -> int:
        """``item_id`` as a valid gallery id; a UserError otherwise."""
        if isinstance(item_id, bool) or not isinstance(item_id, int) or not 0 <= item_id < len(self.files):
            raise UserError(f"{key} must be a gallery image id in 0..{len(self.files) - 1}; got {item_id!r}")
        return item_id

    def image(self, item_id: int) -> np.ndarray:
        """uint8 RGB [H, W, 3] of gallery image ``item_id``."""
        return read_gallery_image(self.files[self.check_id(item_id)])

    def thumbnail_url(self, item_id: int) -> str:
        return f"/api/gallery/{item_id}.png"

    def thumbnail(self, item_id: int) -> bytes:
        """PNG bytes of the image, shrunk to at most THUMBNAIL_SIDE px (cached)."""
        with self._lock:
            if item_id in self._thumbs:
                self._thumbs.move_to_end(item_id)
                return self._thumbs[item_id]
        image = Image.fromarray(self.image(item_id))
        if max(image.size) > THUMBNAIL_SIDE:
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        data = png_bytes(np.asarray(image))
        with self._lock:
            self._thumbs[item_id] = data
            while len(self._thumbs) > 1024:
                self._thumbs.popitem(last=False)
        return data

    def item(self, item_id: int, with_queries: bool = False) -> dict[str, Any]:
        """The JSON of one item: id, file name, thumbnail URL, number of held-out queries (and the queries)."""
        out = {"id": item_id, "name": self.names[item_id], "thumbnail": self.thumbnail_url(item_id),
               "num_queries": len(self.queries[item_id])}
        if with_queries:
            out["queries"] = [dict(q) for q in self.queries[item_id]]
        return out

    def page(self, offset: int, limit: int, with_queries_only: bool = False) -> dict[str, Any]:
        """Items ``offset`` .. ``offset + limit`` (of those with queries when ``with_queries_only``)."""
        ids = [i for i in range(len(self.files)) if self.queries[i]] if with_queries_only else range(len(self.files))
        if not 1 <= limit <= MAX_PAGE_ITEMS:
            raise UserError(f"limit must be in 1..{MAX_PAGE_ITEMS}; got {limit}")
        if offset < 0:
            raise UserError(f"offset must be >= 0; got {offset}")
        return {"total": len(ids), "offset": offset, "items": [self.item(i) for i in list(ids)[offset:offset + limit]]}

    def expected(self, source_id: int | None, text: str) -> list[int] | None:
        """Gallery ids of the target scene when (source, text) is a held-out query (else None)."""
        if source_id is None:
            return None
        wanted = " ".join(text.split()).lower()
        for q in self.queries[source_id]:
            if " ".join(q["text"].split()).lower() == wanted:
                label = self.labels[q["target"]]
                return [i for i, lab in enumerate(self.labels) if lab == label and i != source_id]
        return None

    def info(self) -> dict[str, Any]:
        return {"images": len(self.files), "skipped": len(self.skipped), "css": self.is_css,
                "with_queries": sum(1 for q in self.queries if q)}
