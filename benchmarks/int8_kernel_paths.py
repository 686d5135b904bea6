"""Accuracy of model directories on the first frames of the validation sequences, to compare CPUs.

ONNX Runtime picks its integer kernels by the CPU it runs on (uint8 x int8 products summed exactly with
VNNI, in saturating int16 pairs without it) and has no switch to choose them. To see the other path,
run this script twice: natively, and under an emulated CPU without AVX-512 / VNNI, then compare the box
files. `_ROS_WHEELS_BOOTSTRAP_COMPLETE=1` stops the venv's python from re-executing itself, which would
leave the emulator:

    .venv/bin/python benchmarks/int8_kernel_paths.py --out native.json default=mlkd_model/default_model int8=DIR
    _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 qemu-x86_64 -cpu Haswell .venv/bin/python \\
        benchmarks/int8_kernel_paths.py --out avx2.json int8=DIR          # apt-get install qemu-user; ~1 s a frame
    .venv/bin/python benchmarks/int8_kernel_paths.py --compare native.json avx2.json

Printed per model and condition (clean, darkened with each --darken seed): success AUC (sequences
weighted alike) and mean IoU over the labelled frames.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mlkd_model import metrics as M
from mlkd_model.datasets import Sequence, load_dataset
from mlkd_model.load import load_tracker
from mlkd_training.evaluate import run_sequence

VAL = f"{Path(__file__).resolve().parents[1] / 'training' / 'splits' / 'night_v2.yaml'}#val"


def measure(models: dict[str, str], frames: int, seeds: list[int | None]) -> dict[str, dict[str, list]]:
    sequences = [Sequence(s.name, s.frames[:frames], s.boxes[:frames]) for s in load_dataset(VAL)]
    results: dict[str, dict[str, list]] = {}
    for name, model in models.items():
        for seed in seeds:
            tracker = load_tracker(model)
            boxes = {s.name: run_sequence(tracker, s, seed)[0] for s in sequences}
            scores = M.summarize({s.name: M.evaluate_sequence(boxes[s.name], s.boxes) for s in sequences})
            ious = np.concatenate([M.iou(boxes[s.name], s.boxes)[M.valid_mask(s.boxes)] for s in sequences])
            key = f"{name} {'clean' if seed is None else f'dark{seed}'}"
            print(f"{key}: success AUC {scores.auc:.3f}, mean IoU {np.nanmean(ious):.3f}", flush=True)
            results[key] = {n: b.tolist() for n, b in boxes.items()}
    return results


def compare(a: Path, b: Path) -> None:
    first, second = json.loads(a.read_text()), json.loads(b.read_text())
    for key in sorted(first.keys() & second.keys()):
        gap = max(float(np.nanmax(np.abs(np.subtract(first[key][s], second[key][s])))) for s in first[key])
        print(f"{key}: largest box difference {gap:.3g} px")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", help="NAME=MODEL_DIR")
    p.add_argument("--frames", type=int, default=100, help="first frames of each sequence (default 100)")
    p.add_argument("--darken", default="1", help="night-simulation seeds, comma-separated (default 1)")
    p.add_argument("--out", type=Path, help="write the boxes here (JSON) for --compare")
    p.add_argument("--compare", nargs=2, type=Path, metavar="JSON", help="largest box difference of two runs")
    args = p.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    if not args.models or any("=" not in m for m in args.models):
        p.error("give models as NAME=MODEL_DIR")
    seeds: list[int | None] = [None, *(int(s) for s in args.darken.split(",") if s)]
    results = measure(dict(m.split("=", 1) for m in args.models), args.frames, seeds)
    if args.out:
        args.out.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
