"""main.py's command line from tests: in this process (fast: most tests) or as a subprocess (a smoke test per mode)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


@dataclasses.dataclass
class Result:
    """What a command line run returned and printed."""

    returncode: int
    stdout: str
    stderr: str


def _checked(result: Result, args, check: bool) -> Result:
    if check and result.returncode != 0:
        raise AssertionError(f"main.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def run_cli(*args: str, check: bool = True) -> Result:
    """``python main.py *args`` run in this process (flags parsed afresh; their state restored after)."""
    from absl import flags

    from t2i_tf import cli

    out, err = io.StringIO(), io.StringIO()
    flags.FLAGS.unparse_flags()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            flags.FLAGS(["main.py", *args])
            code = cli.exit_code(["main.py"])
    finally:
        flags.FLAGS.unparse_flags()
    return _checked(Result(code, out.getvalue(), err.getvalue()), args, check)


def run_main(*args: str, check: bool = True) -> Result:
    """``python main.py *args`` as its own process (as a user runs it)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO_ROOT)
    proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "main.py"), *args], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=600)
    return _checked(Result(proc.returncode, proc.stdout, proc.stderr), args, check)
