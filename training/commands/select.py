"""`mlkd select --runs RUN... --out OUT`: pick MLKD-Track among trained students on the validation split (needs torch).

Export every student of RUNS, score them (and the teacher) on the darkened validation split, write table.md
and selection.json to OUT, and with --export the chosen MLKD-Track. The selection itself is
mlkd_training/select.py (also runnable as `python -m mlkd_training.select`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="finished training run directories")
    parser.add_argument(
        "--val",
        type=Path,
        default=Path("training/splits/night_v2.yaml#val"),
        help="validation data (never a test set); default: the val part of training/splits/night_v2.yaml",
    )
    parser.add_argument("--seeds", default="1,2,3", help="darkening seeds of the validation protocol (default 1,2,3)")
    parser.add_argument("--out", type=Path, required=True, help="output: models/, eval/, table.md, selection.json")
    parser.add_argument("--export", type=Path, default=None, help="export MLKD-Track to this model directory")
    parser.add_argument(
        "--no-teacher",
        action="store_true",
        help="leave out the DarkLighter teacher row (it runs ~100x slower than the students on a CPU)",
    )
    parser.add_argument(
        "--soups",
        action="store_true",
        help="also score each run's weight average of its room students, and that average halfway back to "
        "the stock weights (mlkd_training/soup.py); MLKD-Track may be one of them",
    )


def run(args: argparse.Namespace) -> int:
    from mlkd_training.select import select

    seeds = [int(v) for v in args.seeds.split(",")]
    select(args.runs, args.val, args.out, seeds, args.export, not args.no_teacher, args.soups)
    sys.stdout.write((args.out / "table.md").read_text())
    return 0
