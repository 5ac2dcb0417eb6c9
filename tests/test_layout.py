"""The package's import structure: datasets/ (entry points) may import t2i_tf, never the reverse; no import
cycles among the package's modules."""

import ast
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def _modules(package_dir: str, prefix: str) -> dict[str, str]:
    """module name -> file path for every .py under ``package_dir``."""
    out = {}
    for root, _, files in os.walk(os.path.join(REPO_ROOT, package_dir)):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, f), REPO_ROOT)[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__")] = os.path.join(root, f)
    return {k: v for k, v in out.items() if k.startswith(prefix)}


def _imports(path: str, top_level_only: bool) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_the_package_never_imports_the_top_level_datasets():
    for name, path in _modules("t2i_tf", "t2i_tf").items():
        bad = {m for m in _imports(path, top_level_only=False) if m == "datasets" or m.startswith("datasets.")}
        assert not bad, f"{name} imports {bad}"
    script = ("import importlib, pkgutil, sys, t2i_tf\n"
              "for m in pkgutil.walk_packages(t2i_tf.__path__, 't2i_tf.'):\n"
              "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] == 'datasets'))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, check=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_no_import_cycles_between_modules():
    modules = {**_modules("t2i_tf", "t2i_tf"), **_modules("configs", "configs")}
    graph = {name: {m for m in _imports(path, top_level_only=True) if m in modules and m != name}
             for name, path in modules.items()}
    # A package's __init__ importing its own submodules is not a cycle of the code; none of ours does.
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [node, nxt]))
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_the_top_level_datasets_holds_only_entry_points():
    for name, path in _modules("datasets", "datasets").items():
        imports = {m for m in _imports(path, top_level_only=True) if m.startswith("t2i_tf")}
        if name.count(".") == 0 or name.endswith("__init__") or os.path.basename(path) == "__init__.py":
            continue
        assert imports == {f"t2i_tf.{name}", f"t2i_tf.{name}.main"}, f"{name} should only run t2i_tf.{name}.main"
