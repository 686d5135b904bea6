"""The layering rules, checked statically on the import graph (no module is imported or run).

- The ground station (every `mlkd_ros` module and the `mlkd_model` runtime) never reaches torch or
  `mlkd_training` through module-level imports: it must run on an install without them. Imports inside
  functions are the deliberate lazy paths (e.g. `load_tracker(backend="torch")`) and are not followed.
- `mlkd_model` never imports `mlkd_training` at all (the runtime does not depend on training).
The torch side of `mlkd_model` is listed in TORCH_SIDE; docs/architecture.md describes the layers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"mlkd_model": ROOT / "mlkd_model", "mlkd_ros": ROOT / "mlkd_ros", "mlkd_training": ROOT / "training"}
# mlkd_model modules that are torch by design (networks, export, the torch backend).
TORCH_SIDE = ("mlkd_model.nets", "mlkd_model.export", "mlkd_model.torch_backend")
FORBIDDEN = ("torch", "torchvision", "mlkd_training")


def _modules() -> dict[str, Path]:
    out = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(name: str) -> set[str]:
    """Names imported when `name` is imported: its top-level statements, through if/try/with blocks, but
    not function or class bodies' functions, nor `if TYPE_CHECKING:` blocks."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base]) if base else ".".join(anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)
            elif isinstance(node, ast.ClassDef):
                visit(node.body)  # a class body runs at import; its methods do not

    visit(ast.parse(path.read_text(), str(path)).body)
    # importing a.b.c imports a and a.b first
    for imported in list(found):
        parts = imported.split(".")
        found.update(".".join(parts[:k]) for k in range(1, len(parts)))
    return found


def _reachable(start: str) -> dict[str, str]:
    """Every module reachable from `start` -> the module that imports it (to print the chain)."""
    parent = {start: ""}
    todo = [start]
    while todo:
        name = todo.pop()
        for imported in _module_level_imports(name):
            if imported in parent:
                continue
            parent[imported] = name
            if imported in MODULES:
                todo.append(imported)
    return parent


def _chain(parent: dict[str, str], name: str) -> str:
    chain = [name]
    while parent[chain[-1]]:
        chain.append(parent[chain[-1]])
    return " <- ".join(chain)


def _torch_side(name: str) -> bool:
    return any(name == t or name.startswith(t + ".") for t in TORCH_SIDE)


GROUND_STATION = sorted(
    n for n in MODULES if n.startswith("mlkd_ros") or (n.startswith("mlkd_model") and not _torch_side(n))
)


def test_the_rules_see_the_code():
    assert {"mlkd_ros.tracker_node", "mlkd_model.tracker", "mlkd_model.families"} <= set(GROUND_STATION)
    assert all(any(n == t or n.startswith(t + ".") for n in MODULES) for t in TORCH_SIDE), "stale TORCH_SIDE"
    # the check would notice: the torch side does import torch at module level
    assert "torch" in _reachable("mlkd_model.export")


@pytest.mark.parametrize("module", GROUND_STATION)
def test_ground_station_never_imports_torch_or_training(module):
    parent = _reachable(module)
    bad = [n for n in parent if n.split(".")[0] in FORBIDDEN or _torch_side(n)]
    assert not bad, "the ground station must run without torch; imported at module level:\n" + "\n".join(
        _chain(parent, n) for n in bad
    )


def test_runtime_never_imports_training_even_lazily():
    """mlkd_model sits below mlkd_training and mlkd_ros: not even a function-level import of training goes
    up, and no module path of either is named as a string (the CLI finds their commands through entry
    points, setup.py's mlkd.commands)."""
    offenders = []
    for name, path in MODULES.items():
        if not name.startswith("mlkd_model"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{name}: {n}" for n in names if n.split(".")[0] == "mlkd_training"]
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.fullmatch(r"mlkd_(training|ros)(\.\w+)+(:\w+)?", node.value):
                    offenders.append(f"{name}: names {node.value!r}")
    assert not offenders, offenders
