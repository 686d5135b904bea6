"""`mlkd` command line: one sub-command per module.

A command module holds the whole command: its docstring ("`mlkd NAME ARGS`: one-line help", then what
`mlkd NAME --help` describes), `add_arguments(parser)` and `run(args) -> int`; it may set
`FORMATTER` (an argparse help formatter; default: keep the docstring's line breaks).

The modules are found through the `mlkd.commands` entry points that the packages declare (setup.py),
so this runtime module names none of the training or ground-station modules above it. They are imported
when the parser is built, so `mlkd track` on a ground-station install (no torch) never imports the
training stack. A command whose optional dependencies are not installed (torch, the ROS wheels) says
which install profile brings them and exits with 2 (`mlkd_model.commands.missing_dependency`), whether
its module or its run lacks them. An error the user can fix (mlkd_model.errors.UserError: a bad model
directory, source, box, dataset or bag) that a command does not handle itself ends here as one line,
`ERROR mlkd: MESSAGE`, and exit status 2: never a traceback for a mistake the message explains.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import logging
import sys
from types import ModuleType

from mlkd_model.commands import missing_dependency
from mlkd_model.errors import UserError

COMMAND_GROUP = "mlkd.commands"  # entry points: NAME = command module (setup.py)


def commands() -> list[importlib.metadata.EntryPoint]:
    """The installed `mlkd` commands, in the order the packages declare them."""
    found = list(importlib.metadata.entry_points(group=COMMAND_GROUP))
    if not found:
        raise SystemExit("mlkd: no commands are installed (no 'mlkd.commands' entry points): run scripts/setup.sh")
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlkd",
        description="Nighttime UAV object tracking after MLKD (mutual-learning knowledge distillation): "
        "track, export, evaluate and train Siamese trackers.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands():
        try:
            module = command.load()  # the module, imported only now
        except ImportError as exc:  # e.g. training commands on a runtime-only install
            stub = sub.add_parser(command.name, help=f"(unavailable: needs {exc.name})")
            stub.set_defaults(func=lambda _a, e=exc: missing_dependency(e))
            continue
        add_command(sub, command.name, module)
    return parser


def add_command(sub: argparse._SubParsersAction, name: str, module: ModuleType) -> None:
    """The sub-parser of a command module (see the module docstring): help and description from its docstring."""
    doc = inspect.cleandoc(module.__doc__ or "")
    summary = doc.partition("\n")[0]
    short = (summary.partition("`: ")[2] or summary).rstrip(".")
    formatter = getattr(module, "FORMATTER", argparse.RawDescriptionHelpFormatter)
    p = sub.add_parser(name, help=short, description=doc, formatter_class=formatter)
    module.add_arguments(p)
    p.set_defaults(func=module.run)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except UserError as exc:  # a mistake its message explains (mlkd_model/errors.py): that one line, no traceback
        logging.getLogger("mlkd").error("%s", exc)
        return 2
    except ModuleNotFoundError as exc:  # an optional dependency a command imports when it runs
        if (exc.name or "").split(".")[0].startswith("mlkd"):
            raise  # our own module missing is a bug, not an install profile
        return missing_dependency(exc)


if __name__ == "__main__":
    sys.exit(main())
