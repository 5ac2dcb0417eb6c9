"""A scratch copy of an official repository's files, for the fixture-making scripts (make_*_fixtures.py).

The official code is read from a fetched bare mirror with ``git show`` and written to a temporary directory,
never into this repository. The AttnGAN / StackGAN-Pytorch configs import ``easydict``; a stand-in is written
beside them so nothing needs installing.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

EASYDICT = '''
class EasyDict(dict):
    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k)
    def __setattr__(self, k, v):
        self[k] = v
'''


def git_show(mirror: str, path: str) -> str:
    """The text of ``path`` at HEAD of the bare mirror ``mirror``."""
    return subprocess.check_output(["git", "--git-dir", mirror, "show", f"HEAD:{path}"], text=True)


def scratch_copy(mirror: str, files: dict[str, str], prefix: str) -> str:
    """A new temporary directory holding ``files`` (destination -> text) plus ``easydict.py``; packages get an
    empty ``__init__.py``."""
    d = tempfile.mkdtemp(prefix=prefix)
    for dest, text in dict(files, **{"easydict.py": EASYDICT}).items():
        path = os.path.join(d, dest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        init = os.path.join(os.path.dirname(path), "__init__.py")
        if os.path.dirname(path) != d and not os.path.exists(init):
            open(init, "w").close()
        with open(path, "w") as f:
            f.write(text)
    return d
