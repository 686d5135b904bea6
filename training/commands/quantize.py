"""`mlkd quantize MODEL_DIR --out DIR`: INT8 search branch by ONNX Runtime static quantisation (training crops).

Write OUT, a model directory like MODEL_DIR's with its search branch quantised to INT8 (QDQ, 7-bit weights per
channel) and the float template branch; calibrated on --crops template/search pairs from the training
sequences in --data (half of them darkened). Validation folders are refused.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("mlkd.quantize")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", type=Path, help="float32 model directory (from `mlkd export`, or the embedded one)")
    p.add_argument("--out", type=Path, required=True, help="INT8 model directory to write")
    p.add_argument(
        "--data",
        default=None,
        help="training sequences to calibrate on: a folder or SPLIT.yaml#part (default: the train part of "
        "training/splits/night_v2.yaml, whose validation sequences it never reads)",
    )
    p.add_argument("--crops", type=int, default=300, help="calibration pairs (default 300)")
    p.add_argument("--seed", type=int, default=0, help="seed of the crop sampling and darkening (default 0)")


def run(args: argparse.Namespace) -> int:
    from mlkd_model.datasets import DatasetError
    from mlkd_model.manifest import ModelDirError
    from mlkd_training.quantize import TRAIN_SPLIT, QuantizeError, quantize_model

    if args.crops < 1:
        log.error("--crops must be at least 1, got %d", args.crops)
        return 2
    try:
        data = args.data or TRAIN_SPLIT
        out = quantize_model(args.model_dir, args.out, data, args.crops, args.seed)
    except (QuantizeError, ModelDirError, DatasetError) as exc:
        log.error("%s", exc)
        return 2
    print(f"model directory: {out}")
    return 0
