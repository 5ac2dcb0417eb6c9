"""Writing small files so that readers (other processes, other workers on shared storage) never see half
of one: a uniquely named temporary file in the same directory, fsync'd, then renamed over the target."""

from __future__ import annotations

import os
import shutil
import tempfile


def write_text_atomic(path: str | os.PathLike, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; concurrent writers never share a temporary file.

    Creates the directory. OSError propagates (callers turn it into a UserError naming what was written).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + "-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise
    return path


def start_staging(final_dir: str) -> str:
    """A new, empty sibling directory to build ``final_dir``'s next version in (see :func:`publish_staging`).

    Staging directories an interrupted build left for ``final_dir`` are removed first.
    """
    final_dir = os.path.abspath(final_dir)
    parent, base = os.path.dirname(final_dir), os.path.basename(final_dir)
    os.makedirs(parent, exist_ok=True)
    prefix = f".{base}.staging-"
    for name in os.listdir(parent):
        if name.startswith(prefix):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
    return tempfile.mkdtemp(prefix=prefix, dir=parent)


def publish_staging(staging: str, final_dir: str) -> None:
    """Replace ``final_dir`` by the finished ``staging`` directory; the old version is removed only after.

    Until this runs (e.g. a conversion fails half-way), ``final_dir`` keeps its previous, complete contents.
    """
    final_dir = os.path.abspath(final_dir)
    old = None
    if os.path.exists(final_dir):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(final_dir)}.old-", dir=os.path.dirname(final_dir))
        os.rmdir(old)
        os.rename(final_dir, old)
    os.rename(staging, final_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
