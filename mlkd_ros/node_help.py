"""`<node executable> --help`: list the node's parameters instead of starting it.

Read statically from the module's `declare(node, "name", default, "description", lo, hi)` calls
(mlkd_ros/ros_params.py): constructing the node to ask it would open the video, connect to the drone or
load a model. Stdlib only (the bridge answers from Olympe's virtualenv too).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def wants_help(args: list[str] | None) -> bool:
    """-h / --help before any --ros-args (after it, the words belong to ROS)."""
    argv = sys.argv[1:] if args is None else list(args)
    argv = argv[: argv.index("--ros-args")] if "--ros-args" in argv else argv
    return "-h" in argv or "--help" in argv


def _text(source: str, node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    seg = ast.get_source_segment(source, node) or "?"
    return seg[2:-1] if isinstance(node, ast.JoinedStr) else seg  # f"{a}_kp" -> {a}_kp


def _constants(tree: ast.Module, here: Path) -> dict[str, str]:
    """Module-level NAME = "literal" of the module, and of this package's modules it imports NAME from:
    a default written as a named constant is shown as its value."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            out.update({t.id: repr(node.value.value) for t in node.targets if isinstance(t, ast.Name)})
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlkd_ros."):
            path = here.joinpath(*node.module.split(".")[1:]).with_suffix(".py")
            if path.is_file():
                theirs = _constants(ast.parse(path.read_text()), here)
                out.update({a.asname or a.name: theirs[a.name] for a in node.names if a.name in theirs})
    return out


def _shown(source: str, node: ast.expr, constants: dict[str, str]) -> str:
    """A default as the source writes it, named constants (also inside a list) replaced by their values."""
    if isinstance(node, ast.List):
        return "[" + ", ".join(_shown(source, e, constants) for e in node.elts) + "]"
    seg = ast.get_source_segment(source, node) or "?"
    return constants.get(seg, seg)


def parameters(source: str | Path) -> list[tuple[str, str, str, str]]:
    """(name, default, description, range) of each parameter the module declares, in source order: the
    declare(node, "name", default, "description"[, lo, hi]) calls, and ("name", default, "description", lo,
    hi) tuples (tables of parameters declared in a loop)."""
    text = Path(source).read_text()
    tree = ast.parse(text)
    constants = _constants(tree, Path(__file__).resolve().parent)
    strings = (ast.Constant, ast.JoinedStr)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "declare" and len(node.args) >= 4:
            fields = node.args[1:]
        elif isinstance(node, ast.Tuple) and len(node.elts) == 5:
            fields = node.elts
            if any(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in fields[3:]):
                continue  # a range is numbers: five names (tracker_node's MODEL_PARAMS) are no parameter
        else:
            continue
        name, default, desc = fields[:3]
        if not (isinstance(name, strings) and isinstance(desc, strings)):
            continue
        if isinstance(name, ast.Constant) and not isinstance(name.value, str):
            continue
        rng = fields[3:5]
        span = " .. ".join(_text(text, a) for a in rng) if len(rng) == 2 else ""
        shown = _shown(text, default, constants)
        found.append((node.lineno, node.col_offset, _text(text, name), shown, _text(text, desc), span))
    return [f[2:] for f in sorted(found)]


def print_help(source: str | Path, prog: str, summary: str) -> int:
    """Print usage and the parameters to stdout; returns 0 (the exit code)."""
    lines = [f"usage: {prog} [--ros-args -p NAME:=VALUE | --params-file FILE ...]", "", summary, "", "parameters:"]
    for name, default, desc, span in parameters(source):
        lines.append(f"  {name} (default {default}{', range ' + span if span else ''}): {desc}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
