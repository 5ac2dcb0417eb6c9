"""The demo server's content, without HTTP: every served export (one demo each), the shared gallery, and the
routes (GET pages, thumbnails and JSON; POST JSON actions). t2i_tf/serve/web.py puts it behind HTTP."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from t2i_tf.errors import UserError
from t2i_tf.serve.actions import DemoModel
from t2i_tf.serve.demos import Demo
from t2i_tf.serve.gallery import Gallery
from t2i_tf.serve.pages import render_index, render_page

KEY = re.compile(r"^[a-z0-9_]+$")


class NotFound(Exception):
    """A path the server has nothing at (HTTP 404)."""


class DemoApp:
    """One server for every export given: ``/demo/<key>`` pages, ``/api/...`` JSON (docs/demo.md)."""

    def __init__(self, export_dirs: str | list[str], gallery_dir: str | None = None, data_dir: str | None = None):
        dirs = [export_dirs] if isinstance(export_dirs, str) else list(export_dirs)
        if not dirs:
            raise UserError("give at least one export directory")
        self.gallery = Gallery(gallery_dir) if gallery_dir else None
        self.demos: dict[str, Demo] = {}
        for path in dirs:
            model = DemoModel(path)
            key = model.model_name.lower() if KEY.match(model.model_name.lower()) else "export"
            base, i = key, 2
            while key in self.demos:
                key, i = f"{base}_{i}", i + 1
            self.demos[key] = Demo(key, model, self.gallery, data_dir, lambda: list(self.demos.values()))

    @property
    def first(self) -> Demo:
        return next(iter(self.demos.values()))

    def demo(self, key: str) -> Demo:
        if key not in self.demos:
            raise NotFound(f"no export {key!r} is served (served: {', '.join(self.demos)})")
        return self.demos[key]

    def info(self) -> dict[str, Any]:
        """``/api/info``: every served export, the gallery, and (for a single export) its facts at the top level."""
        out: dict[str, Any] = {"exports": [d.info() for d in self.demos.values()],
                               "gallery": self.gallery.info() if self.gallery else None}
        first = self.first.info()
        out.update(model=first["model"], kind=first["kind"], actions=first["actions"])
        return out

    # ----------------------------------------------------------------------------------------- routes
    def get(self, target: str) -> tuple[str, Any]:
        """(content kind "html" | "json" | "png", body) for a GET of ``target``; NotFound / UserError."""
        url = urlsplit(target)
        path, query = url.path, parse_qs(url.query)
        if path == "/":
            return "html", (render_page(self.first, self.demos) if len(self.demos) == 1 else render_index(self.demos))
        if path.startswith("/demo/"):
            return "html", render_page(self.demo(path[len("/demo/"):]), self.demos)
        if path == "/healthz":
            return "json", {"ok": True}
        if path == "/api/info":
            return "json", self.info()
        m = re.fullmatch(r"/api/([a-z0-9_]+)/info", path)
        if m and m.group(1) in self.demos:
            return "json", self.demos[m.group(1)].info()
        if path == "/api/gallery" or path.startswith("/api/gallery/"):
            return self._gallery(path, query)
        raise NotFound(f"no page {path}")

    def _gallery(self, path: str, query: dict[str, list[str]]) -> tuple[str, Any]:
        if self.gallery is None:
            raise NotFound("this server has no gallery (start it with --gallery_dir)")
        if path == "/api/gallery":
            def number(key: str, default: int) -> int:
                value = (query.get(key) or [str(default)])[0]
                if not re.fullmatch(r"-?\d{1,9}", value):
                    raise UserError(f"{key} must be an integer; got {value!r}")
                return int(value)

            only = (query.get("with_queries") or ["0"])[0] in ("1", "true")
            return "json", self.gallery.page(number("offset", 0), number("limit", 48), only)
        m = re.fullmatch(r"/api/gallery/(\d{1,9})(\.png)?", path)
        if not m or int(m.group(1)) >= len(self.gallery):
            raise NotFound(f"no gallery item {path[len('/api/gallery/'):]!r} (ids 0..{len(self.gallery) - 1})")
        item = int(m.group(1))
        if m.group(2):
            return "png", self.gallery.thumbnail(item)
        return "json", self.gallery.item(item, with_queries=True)

    def post(self, path: str, payload: Any) -> dict[str, Any]:
        """``/api/<export>/<action>``, or ``/api/<action>`` for the first export that has ``action``."""
        parts = path[len("/api/"):].split("/") if path.startswith("/api/") else []
        if len(parts) == 2 and parts[0] in self.demos:
            return self.demos[parts[0]].run(parts[1], payload)
        if len(parts) == 1 and parts[0]:
            for demo in self.demos.values():
                if parts[0] in demo.actions:
                    return demo.run(parts[0], payload)
            return self.first.run(parts[0], payload)  # its error names the actions there are
        raise NotFound(f"no endpoint {path}")
