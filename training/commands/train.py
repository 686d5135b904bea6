"""`mlkd train --config YAML --run-dir DIR`: train MLKD students from a YAML config (needs torch).

Distil a frozen teacher into n students with correlation losses and the mutual-learning room; checkpoints,
CSV/TensorBoard logs and run info go to RUN_DIR. Configs: training/configs/*.yaml.
One process runs in place (CPU or one GPU); --nproc N relaunches itself under torchrun with N processes on
this machine (one per GPU; gloo on CPU). For several machines call torchrun directly (docs/training.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys

log = logging.getLogger("mlkd.train")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a run, shared by `mlkd train` and `python -m mlkd_training.trainer` (torchrun's)."""
    parser.add_argument("--config", required=True, help="YAML run configuration (see training/configs/)")
    parser.add_argument("--run-dir", required=True, help="output folder: checkpoints, logs, students, run info")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt if it exists")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=2 (repeatable)",
    )
    parser.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (a partial run)")


def run_argv(args: argparse.Namespace) -> list[str]:
    """The run arguments of `args` as a command line for `python -m mlkd_training.trainer`, read off the
    parser that add_run_arguments builds, so an argument added there is passed on to torchrun's processes."""
    parser = argparse.ArgumentParser(add_help=False)
    add_run_arguments(parser)
    argv: list[str] = []
    for action in parser._actions:
        value, flag = getattr(args, action.dest), action.option_strings[0]
        if isinstance(action, argparse._StoreTrueAction):
            argv += [flag] if value else []
        elif isinstance(action, argparse._AppendAction):
            argv += [f"{flag}={v}" for v in value]
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)
    p.add_argument("--nproc", type=int, default=1, help="processes on this machine (torchrun + DDP), e.g. #GPUs")


def run(args: argparse.Namespace) -> int:
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(args.nproc),
            "-m",
            "mlkd_training.trainer",
            *run_argv(args),
        ]
        log.info("launching: %s", " ".join(cmd))
        return subprocess.call(cmd)
    from mlkd_training.trainer import run_from_args  # without torch: mlkd_model.cli says which profile

    return run_from_args(args)
