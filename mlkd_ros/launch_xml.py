"""Run a ROS 2 launch XML file without `ros2 launch` (not available as a wheel).

Understands, with ros2 launch's meaning: <arg> (with <choice>s), <let>, <set_env>, <group> (scoped: its
<let>/<arg>/<set_env>/<push-ros-namespace> end with it), <push-ros-namespace>, if/unless, <node pkg exec
name namespace output> with <param name value/>, nested <param name><param .../></param>, <param from/>,
<remap/>, <env/>, and $(var), $(env), $(find-pkg-share), $(dirname), $(equals), $(not-equals). Anything
else (<include>, node args / ros_args / launch-prefix, <param type>, $(optenv), ...) is refused with a
LaunchError rather than silently ignored. Every parameter value a node gets (inline or from a parameter
file) is checked against the type and range its module declares (read statically, mlkd_ros/node_help.py),
so `image_width:=abc` is a LaunchError here, not a node that dies with a traceback or runs on a default.
Each node becomes
`python -c "<run its main>" --ros-args ...` with the same parameters (in the same order) and remaps
that `ros2 launch` would give it. Used by the tests and as the `mlkd-launch` command.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.util
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlkd_ros.node_help import parameters

log = logging.getLogger("mlkd_launch")

# exec name -> "module:function", used when the package is not installed with its console scripts.
KNOWN_EXECUTABLES = {
    "tracker_node": "mlkd_ros.tracker_node:main",
    "follow_controller": "mlkd_ros.follow_controller:main",
    "cle_logger": "mlkd_ros.cle_logger:main",
    "olympe_bridge": "mlkd_ros.olympe_bridge:main",
    "bag_player": "mlkd_ros.bag_player:main",
    "operator_console": "mlkd_ros.operator_console:main",
}
_SUBST = re.compile(r"\$\(([a-z\-]+)((?:\s+[^()\s]+)*)\s*\)")


class LaunchError(ValueError):
    """A launch file this runner cannot interpret (missing arg, unknown substitution, bad tag)."""


@dataclass
class NodeSpec:
    pkg: str
    exec: str
    name: str
    namespace: str = ""
    params: list[Path | dict] = field(default_factory=list)  # files and inline groups, in launch order
    remaps: list[tuple[str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # the node's own <env>
    launch_env: dict[str, str] = field(default_factory=dict)  # <set_env> in force where the node is declared

    @property
    def target(self) -> str:
        """module:function of the node's main()."""
        for ep in importlib.metadata.entry_points(group="console_scripts", name=self.exec):
            if ep.value.split(".")[0] == self.pkg:
                return ep.value
        if self.exec in KNOWN_EXECUTABLES:
            return KNOWN_EXECUTABLES[self.exec]
        raise LaunchError(f"no executable {self.exec!r} in package {self.pkg!r}")

    def command(self, param_dir: Path, python: str = sys.executable) -> list[str]:
        """argv for this node; inline parameters are written as YAML files under param_dir."""
        module, func = self.target.split(":")
        code = f"import sys; from {module} import {func} as _main; sys.exit(_main())"
        ros = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            ros += ["-r", f"__ns:={self.namespace if self.namespace.startswith('/') else '/' + self.namespace}"]
        for i, group in enumerate(self.params):
            if isinstance(group, dict):
                path = param_dir / f"{self.name}_{i}.yaml"
                path.write_text(yaml.safe_dump({"/**": {"ros__parameters": group}}))
                group = path
            ros += ["--params-file", str(group)]
        for src, dst in self.remaps:
            ros += ["-r", f"{src}:={dst}"]
        return [python, "-c", code, *ros]


@dataclass
class LaunchDescription:
    nodes: list[NodeSpec]
    env: dict[str, str]
    args: dict[str, str]


def find_pkg_share(pkg: str) -> Path:
    """The package's share dir: ament index (colcon install), else a source checkout or a pip install."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(pkg))
    except Exception:  # no ament index, or the package is not in it
        pass
    if pkg == "mlkd_ros":
        # Source checkout: launch/ beside the package; pip install: setup.py's data_files under the prefix.
        for candidate in (Path(__file__).resolve().parents[1], Path(sys.prefix) / "share" / pkg):
            if (candidate / "launch").is_dir():
                return candidate
    raise LaunchError(f"package {pkg!r} not found (no ament index entry, no launch/ folder)")


class _Context:
    def __init__(self, path: Path, args: dict[str, str]) -> None:
        self.path, self.given, self.vars, self.env = path, dict(args), {}, {}
        self.top_env: dict[str, str] = {}  # <set_env> outside any group: LaunchDescription.env
        self.namespace = ""  # <push-ros-namespace> in force
        self.depth = 0

    def sub(self, text: str | None) -> str:
        if text is None:
            return ""
        for _ in range(10):  # nested substitutions resolve innermost first
            new = _SUBST.sub(self._one, text)
            if new == text:
                return new
            text = new
        return text

    def _one(self, m: re.Match) -> str:
        kind, rest = m.group(1), m.group(2).split()
        if kind == "var":
            if rest[0] not in self.vars:
                raise LaunchError(f"{self.path.name}: $(var {rest[0]}) used before its <arg>/<let>")
            return self.vars[rest[0]]
        if kind == "optenv":
            raise LaunchError(f"{self.path.name}: $(optenv) is ROS 1; ROS 2 launch writes $(env NAME default)")
        if kind == "env":
            default = " ".join(rest[1:]) if len(rest) > 1 else None
            value = os.environ.get(rest[0], self.env.get(rest[0], default))
            if value is None and kind == "env":
                raise LaunchError(f"{self.path.name}: environment variable {rest[0]} is not set")
            return value or ""
        if kind == "find-pkg-share":
            return str(find_pkg_share(rest[0]))
        if kind == "dirname":
            return str(self.path.parent)
        if kind in ("equals", "not-equals"):
            if len(rest) != 2:
                raise LaunchError(f"{self.path.name}: $({kind}) takes two values, got {rest}")
            return str((_comparable(rest[0]) == _comparable(rest[1])) == (kind == "equals")).lower()
        raise LaunchError(f"{self.path.name}: substitution $({kind}) is not supported by mlkd-launch")

    def enabled(self, el: ET.Element) -> bool:
        truth = {"true": True, "1": True, "false": False, "0": False}
        for attr, want in (("if", True), ("unless", False)):
            if attr in el.attrib:
                value = self.sub(el.get(attr)).strip().lower()
                if value not in truth:
                    raise LaunchError(f"{self.path.name}: {attr}={value!r} is not true/false")
                if truth[value] != want:
                    return False
        return True


def _comparable(text: str):
    """As launch's EqualsSubstitution compares: booleans as booleans, numbers as numbers, else the text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        return text


def _param_value(text: str):
    """Typed like launch_ros: the value string is read as YAML (empty string stays a string)."""
    if text == "":
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if value is None or isinstance(value, dict) else value


def parse_launch(path: str | Path, args: dict[str, str] | None = None) -> LaunchDescription:
    path = Path(path)
    ctx = _Context(path, args or {})
    nodes: list[NodeSpec] = []
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise LaunchError(f"{path} is not a launch XML file ({exc})") from exc
    if root.tag != "launch":
        raise LaunchError(f"{path} is not a launch file: its root element is <{root.tag}>, not <launch>")
    _walk(root, ctx, nodes)
    unknown = set(ctx.given) - set(ctx.vars)
    if unknown:
        raise LaunchError(f"{path.name} declares no argument(s) {sorted(unknown)}; it has {sorted(ctx.vars)}")
    for spec in nodes:
        _check_params(spec, path)
    return LaunchDescription(nodes, ctx.top_env, dict(ctx.vars))


def _declared(spec: NodeSpec) -> dict[str, tuple[Any, tuple | None]]:
    """name -> (default, (lo, hi) or None) of each parameter the node declares with a literal default (a computed
    one tells no type statically and is left to the node): in its module, or in a module of this package it
    imports from (the operator console declares its parameters in console/ros_side.py)."""
    try:
        module = spec.target.split(":")[0]
        found = importlib.util.find_spec(module)
    except (LaunchError, ImportError):  # an unknown executable: start() says so
        return {}
    if found is None or not (found.origin or "").endswith(".py"):
        return {}
    out: dict[str, tuple[Any, tuple | None]] = {}
    for source in _sources(Path(found.origin)):
        for name, default, _desc, span in parameters(source):
            try:
                value = ast.literal_eval(default)
                bounds = tuple(ast.literal_eval(v) for v in span.split(" .. ")) if span else None
            except (ValueError, SyntaxError):
                continue
            if "{" not in name:
                out.setdefault(name, (value, bounds))
    return out


def _sources(path: Path) -> list[Path]:
    """A node's module, then the modules of its package that it imports names from at its top level."""
    root = Path(__file__).resolve().parent
    out = [path]
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{root.name}."):
            module = root.joinpath(*node.module.split(".")[1:]).with_suffix(".py")
            if module.is_file() and module not in out:
                out.append(module)
    return out


def _kind(default: Any) -> str:
    """How a value of `default`'s type is described to the user."""
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, list):
        return "a list" + (f" of {_kind(default[0]).removeprefix('a ').removeprefix('an ')}s" if default else "")
    return "a string"


def _fits(value: Any, default: Any) -> bool:
    """Whether rclpy takes `value` for a parameter declared with `default` (an integer for a float is widened by
    mlkd_ros/ros_params.py declare)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, int | float)
    if isinstance(default, list):
        return isinstance(value, list) and (not default or all(_fits(v, default[0]) for v in value))
    return isinstance(default, str) and isinstance(value, str)


def _file_params(path: Path, node: str) -> dict[str, Any]:
    """The parameters a --params-file gives a node named `node` (its /** section and its own), dotted names."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}  # the node reports an unreadable file itself
    out: dict[str, Any] = {}

    def flatten(prefix: str, group: dict) -> None:
        for key, value in group.items():
            if isinstance(value, dict):
                flatten(f"{prefix}{key}.", value)
            else:
                out[f"{prefix}{key}"] = value

    for key, section in data.items() if isinstance(data, dict) else ():
        if (key == "/**" or str(key).rstrip("/").rsplit("/", 1)[-1] == node) and isinstance(section, dict):
            flatten("", section.get("ros__parameters") or {})
    return out


def _check_params(spec: NodeSpec, path: Path) -> None:
    """Each parameter value the node gets against the type and range its module declares: a LaunchError that
    names the node and the parameter, before any process starts."""
    declared = _declared(spec)
    if not declared:
        return
    for group in spec.params:
        given = group if isinstance(group, dict) else _file_params(group, spec.name)
        where = path.name if isinstance(group, dict) else group.name
        for name, value in given.items():
            if name not in declared:
                continue
            default, bounds = declared[name]
            span = f" in {bounds[0]} .. {bounds[1]}" if bounds else ""
            ok = _fits(value, default)
            if ok and bounds and not isinstance(value, bool | list | str):
                ok = bounds[0] <= value <= bounds[1]
            if not ok:
                raise LaunchError(
                    f"{where}: parameter {name} of node {spec.name} must be {_kind(default)}{span}, got {value!r}"
                )


# What mlkd-launch implements, per element; anything else is refused rather than silently ignored.
_ATTRS = {
    "arg": {"name", "default", "description"},
    "let": {"name", "value"},
    "set_env": {"name", "value"},
    "group": {"scoped"},
    "push-ros-namespace": {"namespace"},
    "node": {"pkg", "exec", "name", "namespace", "output"},
    "param": {"name", "value", "from"},
    "remap": {"from", "to"},
    "env": {"name", "value"},
}


def _check(el: ET.Element, ctx: _Context, where: str = "") -> None:
    allowed = _ATTRS.get(el.tag)
    if allowed is None:
        raise LaunchError(f"{ctx.path.name}: <{el.tag}>{where} is not supported by mlkd-launch (use ros2 launch)")
    extra = set(el.attrib) - allowed - {"if", "unless"}
    if extra:
        raise LaunchError(f"{ctx.path.name}: <{el.tag}> attribute(s) {sorted(extra)} not supported by mlkd-launch")


def _join_ns(outer: str, inner: str) -> str:
    if inner.startswith("/"):
        return inner.rstrip("/") or "/"
    return "/".join(p for p in (outer.strip("/"), inner.strip("/")) if p)


def _walk(root: ET.Element, ctx: _Context, nodes: list[NodeSpec]) -> None:
    for el in root:
        if not isinstance(el.tag, str):
            continue
        _check(el, ctx)
        if not ctx.enabled(el):
            continue
        if el.tag == "arg":
            name = el.get("name")
            if name in ctx.given:
                ctx.vars[name] = ctx.given[name]
            elif "default" in el.attrib:
                ctx.vars[name] = ctx.sub(el.get("default"))
            else:
                raise LaunchError(f"{ctx.path.name}: argument {name!r} is required ({el.get('description', '')})")
            choices = []
            for c in el:
                if isinstance(c.tag, str) and c.tag != "choice":
                    raise LaunchError(f"{ctx.path.name}: <{c.tag}> inside <arg> is not supported by mlkd-launch")
                choices += [c.get("value")] if isinstance(c.tag, str) else []
            if choices and ctx.vars[name] not in choices:
                raise LaunchError(f"{ctx.path.name}: argument {name}:={ctx.vars[name]!r} is not one of {choices}")
        elif el.tag == "let":
            ctx.vars[el.get("name")] = ctx.sub(el.get("value"))
        elif el.tag == "set_env":
            ctx.env[el.get("name")] = ctx.sub(el.get("value"))
            if ctx.depth == 0:
                ctx.top_env[el.get("name")] = ctx.env[el.get("name")]
        elif el.tag == "push-ros-namespace":
            ctx.namespace = _join_ns(ctx.namespace, ctx.sub(el.get("namespace")))
        elif el.tag == "group":
            # As ros2 launch: a (scoped, the default) group keeps its <let>, <arg>, <set_env> and
            # <push-ros-namespace> to itself.
            saved = dict(ctx.vars), dict(ctx.env), ctx.namespace
            scoped = ctx.sub(el.get("scoped", "true")).strip().lower() not in ("false", "0")
            ctx.depth += 1
            _walk(el, ctx, nodes)
            ctx.depth -= 1
            if scoped:
                ctx.vars, ctx.env, ctx.namespace = saved
        elif el.tag == "node":
            nodes.append(_node(el, ctx))
        else:
            raise LaunchError(f"{ctx.path.name}: <{el.tag}> is not supported at this level by mlkd-launch")


def _params(el: ET.Element, ctx: _Context, prefix: str, out: dict) -> None:
    """<param name value/> and nested <param name><param .../></param> (-> dotted names, as ROS 2 does)."""
    name = prefix + ctx.sub(el.get("name"))
    children = [c for c in el if isinstance(c.tag, str)]
    if children:
        if "value" in el.attrib:
            raise LaunchError(f"{ctx.path.name}: <param name={name!r}> has both a value and nested params")
        for c in children:
            _check(c, ctx, " inside <param>")
            if c.tag != "param" or "from" in c.attrib:
                raise LaunchError(f"{ctx.path.name}: only <param name ...> may nest inside <param name={name!r}>")
            if ctx.enabled(c):
                _params(c, ctx, name + ".", out)
    elif "value" in el.attrib:
        out[name] = _param_value(ctx.sub(el.get("value")))
    else:
        raise LaunchError(f"{ctx.path.name}: <param name={name!r}> has no value")


def _node(el: ET.Element, ctx: _Context) -> NodeSpec:
    spec = NodeSpec(
        pkg=ctx.sub(el.get("pkg")),
        exec=ctx.sub(el.get("exec")),
        name=ctx.sub(el.get("name")) or ctx.sub(el.get("exec")),
        namespace=_join_ns(ctx.namespace, ctx.sub(el.get("namespace"))),
        launch_env=dict(ctx.env),
    )
    for child in el:
        if not isinstance(child.tag, str):
            continue
        _check(child, ctx, " inside <node>")
        if not ctx.enabled(child):
            continue
        if child.tag == "param" and "from" in child.attrib:
            spec.params.append(Path(ctx.sub(child.get("from"))))
        elif child.tag == "param":
            if not spec.params or not isinstance(spec.params[-1], dict):
                spec.params.append({})
            _params(child, ctx, "", spec.params[-1])
        elif child.tag == "remap":
            spec.remaps.append((ctx.sub(child.get("from")), ctx.sub(child.get("to"))))
        elif child.tag == "env":
            spec.env[ctx.sub(child.get("name"))] = ctx.sub(child.get("value"))
        else:
            raise LaunchError(f"{ctx.path.name}: <{child.tag}> inside <node> is not supported by mlkd-launch")
    return spec


def select(desc: LaunchDescription, only: list[str] | None) -> list[NodeSpec]:
    """Nodes whose name (or exec) is in `only`; all when only is None."""
    if only is None:
        return list(desc.nodes)
    known = {n.name for n in desc.nodes} | {n.exec for n in desc.nodes}
    missing = set(only) - known
    if missing:
        raise LaunchError(f"no node(s) {sorted(missing)} in the launch file; it has {sorted(known)}")
    return [n for n in desc.nodes if n.name in only or n.exec in only]


def start(
    desc: LaunchDescription,
    only: list[str] | None = None,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
) -> dict[str, subprocess.Popen]:
    """Start the selected nodes as processes; stdout+stderr go to log_dir/<name>.log when given."""
    param_dir = Path(tempfile.mkdtemp(prefix="mlkd_launch_")) if log_dir is None else log_dir
    procs = {}
    for spec in select(desc, only):
        node_env = dict(os.environ if env is None else env)
        node_env.update(spec.launch_env)  # the <set_env>s in force where the node is declared
        if env is not None:  # the caller's explicit environment wins over <set_env> (tests pin DDS settings)
            node_env.update(env)
        node_env.update(spec.env)
        # rcutils writes INFO to stdout, fully buffered when that is a file: line-buffer it for live logs.
        node_env.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "1")
        out = open(log_dir / f"{spec.name}.log", "wb") if log_dir else None  # closed by the child when it exits
        procs[spec.name] = subprocess.Popen(
            spec.command(param_dir),
            env=node_env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us once; we forward it
        )
        log.info("started %s (%s) pid %d", spec.name, spec.target, procs[spec.name].pid)
    return procs


def stop(procs: dict[str, subprocess.Popen], timeout: float = 5.0) -> None:
    """SIGINT (what ros2 launch sends), then SIGTERM, then SIGKILL for what is still running."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in procs.values() if p.poll() is None]
        for p in alive:
            p.send_signal(sig)
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mlkd-launch", description=__doc__.splitlines()[0])
    ap.add_argument("launch", nargs="+", help="FILE.launch.xml, or PACKAGE FILE.launch.xml, then name:=value args")
    ap.add_argument("--only", nargs="+", metavar="NODE", help="start only these nodes (name or exec)")
    ap.add_argument("--print", action="store_true", help="print the commands instead of running them")
    ns = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[mlkd-launch] %(message)s")
    extra = [w for w in ns.only or [] if ":=" in w]  # `--only a b x:=1` swallows the launch args
    ns.only = [w for w in ns.only if ":=" not in w] if ns.only else None
    words = [w for w in ns.launch if ":=" not in w]
    launch_args = dict(w.split(":=", 1) for w in ns.launch + extra if ":=" in w)
    if len(words) == 2:
        path = find_pkg_share(words[0]) / "launch" / words[1]
    elif len(words) == 1:
        path = Path(words[0])
        if not path.exists():
            path = find_pkg_share("mlkd_ros") / "launch" / words[0]
    else:
        ap.error("give one launch file (or a package and a launch file)")
    try:
        if not path.is_file():
            raise LaunchError(f"launch file {' '.join(words)} not found (looked at {path})")
        desc = parse_launch(path, launch_args)
        if ns.print:
            tmp = Path(tempfile.mkdtemp(prefix="mlkd_launch_"))
            for spec in select(desc, ns.only):
                print(shlex.join(spec.command(tmp)))
            return 0
        procs = start(desc, ns.only)
    except LaunchError as exc:
        log.error("%s", exc)
        return 2
    failed = False
    try:
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.2)
        for name, p in procs.items():
            if p.poll() is not None:
                log.warning("%s exited with %s; stopping the others", name, p.returncode)
                failed = failed or p.returncode != 0  # a node that failed makes the launch fail
    except KeyboardInterrupt:
        pass
    finally:
        stop(procs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
