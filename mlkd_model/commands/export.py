"""`mlkd export CHECKPOINT`: export a tracker checkpoint to an ONNX model directory (needs torch).

Build the tracker of FAMILY, load CHECKPOINT (pysot / official MLKD / NanoTrack / this project's trainer),
and write OUT with template.onnx, search.onnx, the torch weights and manifest.json. With --enhancer the
teacher (DarkLighter + tracker) is exported too, for `mlkd track --enhance`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mlkd_model.families import family_names

log = logging.getLogger("mlkd.export")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="tracker checkpoint (.pth); loaded with torch.load(weights_only=True)")
    p.add_argument("--family", choices=family_names(), required=True, help="tracker family of the checkpoint")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument(
        "--enhancer", type=Path, default=None, help="DarkLighter checkpoint (e.g. Epoch193.pth) to export the teacher"
    )
    p.add_argument("--notes", default="", help="free text stored in the manifest")


def run(args: argparse.Namespace) -> int:
    from mlkd_model.export import export_checkpoint  # without torch: mlkd_model.cli says which profile
    from mlkd_model.nets.checkpoint import CheckpointError

    try:
        out = export_checkpoint(args.family, args.checkpoint, args.out, args.enhancer, notes=args.notes)
    except CheckpointError as exc:
        log.error("%s", exc)
        return 2
    print(f"model directory: {out}")
    return 0
