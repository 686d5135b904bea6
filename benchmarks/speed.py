"""Tracking speed of each model and backend, measured in one run on the same frames.

Prints frames/s for NanoTrack v2 and SiamRPN++ AlexNet on ONNX Runtime and on torch, and for the teacher
(DarkLighter + tracker), with the student/teacher and ONNX/torch ratios. Ratios from one run are robust
on a noisy machine; absolute numbers are this machine's. SiamRPN AlexNet runs with random weights (no
pretrained ones exist here): speed does not depend on the weights.

    .venv/bin/python benchmarks/speed.py [--sequence DIR] [--frames N] [--providers cuda,cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mlkd_model.default_model import MODEL_DIR
from mlkd_model.load import load_tracker

REPO = Path(__file__).resolve().parents[1]


def frames_per_second(model_dir: Path, backend: str, enhance: bool, images: list[np.ndarray], box, providers) -> float:
    tracker = load_tracker(model_dir, backend, enhance, providers)
    tracker.init(images[0], box)
    tracker.track(images[1])  # warm-up: first-run allocations and graph optimisation
    start = time.perf_counter()
    for image in images[2:]:
        tracker.track(image)
    return (len(images) - 2) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequence", type=Path, default=REPO / "demo" / "uavdark135_person11")
    parser.add_argument("--frames", type=int, default=60, help="frames per measurement (default 60)")
    parser.add_argument("--providers", default="cpu", help="ONNX Runtime providers, e.g. tensorrt,cuda,cpu")
    args = parser.parse_args()
    providers = tuple(args.providers.split(","))
    paths = sorted(p for p in args.sequence.rglob("*.jpg"))[: args.frames + 2]
    images = [cv2.imread(str(p)) for p in paths]
    box = (347, 171, 38, 125) if args.sequence.name == "uavdark135_person11" else None
    if box is None:
        gt = np.loadtxt(args.sequence / "groundtruth_rect.txt", delimiter=",")
        box = tuple(gt[0])

    from mlkd_model.export import export_model
    from mlkd_model.nets.build import build_tracker

    with tempfile.TemporaryDirectory() as tmp:
        enhancer = MODEL_DIR / "darklighter.pth"
        alex_dir = export_model(build_tracker("siamrpn_alex"), Path(tmp) / "alex", enhancer_checkpoint=enhancer)
        models = {"NanoTrack v2": MODEL_DIR, "SiamRPN++ AlexNet": alex_dir}
        rows = []
        for name, model_dir in models.items():
            fps = {
                (backend, enhance): frames_per_second(model_dir, backend, enhance, images, box, providers)
                for backend in ("onnx", "torch")
                for enhance in (False, True)
            }
            rows.append((name, fps))

    print(f"{len(images) - 2} frames of {args.sequence.name}, providers {','.join(providers)}")
    print(
        "model                student onnx  student torch  teacher onnx  teacher torch  "
        "student/teacher (onnx)  onnx/torch (student)"
    )
    for name, fps in rows:
        print(
            f"{name:20s} {fps['onnx', False]:12.1f}  {fps['torch', False]:13.1f}  {fps['onnx', True]:12.1f}  "
            f"{fps['torch', True]:13.1f}  {fps['onnx', False] / fps['onnx', True]:22.1f}x  "
            f"{fps['onnx', False] / fps['torch', False]:19.2f}x"
        )


if __name__ == "__main__":
    main()
