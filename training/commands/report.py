"""`mlkd report DIR [--data DATA]`: success / precision plots and Markdown tables from an evaluation folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="plots and tables (success, precision, attributes, comparison) from an evaluation folder",
        description="Score DIR/results/<dataset>/<tracker>/<seq>.txt (from `mlkd eval` or any toolkit using the "
        "pysot layout) and write success/precision/norm. precision plots (PNG), comparison.md and attributes.md "
        "into DIR.",
    )
    p.add_argument("folder", type=Path, metavar="DIR", help="evaluation folder (holds results/)")
    p.add_argument("--data", type=Path, help="dataset path (needed when DIR has no summary.json from `mlkd eval`)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from mlkd_model.datasets import DatasetError
    from mlkd_training.report import make_report

    try:
        written = make_report(args.folder, args.data)
    except (DatasetError, OSError) as exc:
        log.error("%s", exc)
        return 1
    print((args.folder / "comparison.md").read_text())
    for path in written.values():
        print(f"wrote {path}")
    return 0
