"""`mlkd report DIR`: plots and tables (success, precision, attributes, comparison) from an evaluation folder.

Score DIR/results/<dataset>/<tracker>/<seq>.txt (from `mlkd eval` or any toolkit using the pysot layout) and
write success/precision/norm. precision plots (PNG), comparison.md and attributes.md into DIR.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, metavar="DIR", help="evaluation folder (holds results/)")
    p.add_argument("--data", type=Path, help="dataset path (needed when DIR has no summary.json from `mlkd eval`)")


def run(args: argparse.Namespace) -> int:
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
