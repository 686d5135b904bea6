"""`mlkd eval DATA --tracker NAME[=MODEL] ...`: one-pass evaluation (success, precision, normalized precision).

Run trackers over every sequence of DATA and score them as pysot-toolkit does. Writes
DIR/results/<dataset>/<tracker>/<seq>.txt, DIR/summary.json and DIR/config.json; re-running skips finished
sequences.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mlkd_model.datasets import DatasetError

log = logging.getLogger(__name__)

FORMATTER = argparse.RawTextHelpFormatter  # the tracker table and --darken keep their lines

TRACKER_HELP = """tracker to run, repeatable: NAME[=MODEL].
  default            the embedded default model (ONNX Runtime); NAME=DIR runs any exported model directory
  teacher[=DIR]      DarkLighter enhancer then the tracker (enhance=True)
  nanotrack[=DIR]    the same model through the torch backend (checks the export)
  opencv_nano[=BACKBONE.onnx,HEAD.onnx]  OpenCV's cv2.TrackerNano; defaults to shared/weights/nanotrack_v2
  NAME+update[=DIR]  any of this project's trackers with the confidence-gated template update"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, help="dataset folder (OTB/UAV123/UAVDark135/NAT2021/... layout), or pysot JSON")
    p.add_argument("--tracker", "-t", action="append", required=True, metavar="NAME[=MODEL]", help=TRACKER_HELP)
    p.add_argument(
        "--darken",
        type=_seeds,
        metavar="SEED[,SEED...]",
        help="apply the night simulation with this seed; several seeds (1,2,3) run the validation protocol:\n"
        "each seed, plus the clean frames unless --no-clean, and a comparison with bootstrap CIs\n"
        "over sequences (DIR/comparison.md); the first --tracker is the baseline",
    )
    p.add_argument("--no-clean", action="store_true", help="with several seeds: skip the clean-frame run")
    p.add_argument("--out", type=Path, default=Path("eval_out"), help="output folder (default: eval_out)")


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected integer seeds separated by commas, e.g. 1,2,3") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: expected distinct seeds, e.g. 1,2,3")
    return seeds


def run(args: argparse.Namespace) -> int:
    from mlkd_training.evaluate import TrackerSpec, evaluate, evaluate_protocol

    try:
        specs = [TrackerSpec.parse(t) for t in args.tracker]
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        log.error("tracker names must be unique, got %s", names)
        return 2
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
    try:
        if args.darken and len(args.darken) > 1:
            evaluate_protocol(args.data, specs, args.out, args.darken, not args.no_clean, config=config)
            print((args.out / "comparison.md").read_text(), end="")
            return 0
        summary = evaluate(args.data, specs, args.out, args.darken[0] if args.darken else None, config)
    except (DatasetError, FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    print(f"{summary['dataset']}: {summary['sequences']} sequences -> {args.out}")
    print(f"{'tracker':<16}{'success':>9}{'norm.prec':>11}{'prec@20':>9}{'fps':>8}{'excluded':>10}")
    for name in names:
        t = summary["trackers"][name]
        fps = f"{t['fps']:.1f}" if t["fps"] else "-"
        print(
            f"{name:<16}{t['success_auc']:>9.3f}{t['norm_precision_20']:>11.3f}{t['precision_20']:>9.3f}"
            f"{fps:>8}{t['excluded_frames']:>10}"
        )
    return 0
