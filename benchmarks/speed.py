"""Tracking speed of every model and backend, and of OpenCV's TrackerNano, on the same frames in one run.

For each resolution (the shipped night clip at 640x360 and upscaled to 1280x720, the Anafi's stream) and
each tracker, per frame: track() (crop, blob, network, post-processing), then the search branch alone on
the crop track() just made (the same kernels, the same input). The trackers take turns in blocks of
--block frames (default 10), so a loaded machine slows them all alike and the ratios stay meaningful,
while within a block a tracker runs as it does alone on a ground station: its weights still in the
caches from its last frame. (Turns of one frame put the teacher's 60-100 ms between every two frames of
the others, which evicts their weights and charges the reload to track() but not to the search branch
re-run right after it: the loop's share came out 0.1-0.3x of the search branch larger than alone.) Printed
per tracker: frames/s (1 / median track()), median track() and search-branch times, the loop around the
network (track - search) and its share of the frame, and the frame rate relative to cv2.TrackerNano
(the same NanoTrack v2 weights, OpenCV's own loop and DNN backend). JPEG decoding is not counted.

Rows: NanoTrack v2 (the embedded model) on ONNX Runtime in float32 and INT8 (`mlkd quantize`, made here
from 100 training crops unless --int8 DIR is given), on torch, and its teacher (DarkLighter + tracker) on
ONNX Runtime; with --all also the teacher on torch and SiamRPN++ AlexNet (random weights: speed does not
depend on them) in float32, on torch and as teacher.

    .venv/bin/python benchmarks/speed.py [--frames 100] [--threads 1] [--int8 DIR] [--all] [--providers cuda,cpu]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mlkd_model.default_model import MODEL_DIR
from mlkd_model.load import load_tracker

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CLIP = REPO / "demo" / "uavdark135_person11"
CLIP_BOX = (347, 171, 38, 125)
RESOLUTIONS = ((640, 360), (1280, 720))


class Row:
    """One tracker under measurement; `search_alone` re-runs its search branch on its last crop."""

    def __init__(self, name: str, tracker) -> None:
        self.name, self.tracker = name, tracker
        self.track_s: list[float] = []
        self.search_s: list[float] = []

    def init(self, frame: np.ndarray, box) -> None:
        self.tracker.init(frame, box)

    def step(self, frame: np.ndarray) -> None:
        t0 = time.perf_counter()
        self.tracker.track(frame)
        t1 = time.perf_counter()
        self.search_alone()
        self.track_s.append(t1 - t0)

    def search_alone(self) -> None:
        blob = self.tracker._blob  # the buffer the tracker filled for this frame
        t0 = time.perf_counter()
        self.tracker.backend.search(blob)
        self.search_s.append(time.perf_counter() - t0)


class OpenCVRow(Row):
    def search_alone(self) -> None:  # OpenCV's loop is one call; there is no branch to time on its own
        pass


def make_rows(int8_dir: Path, alex_dir: Path | None, providers, threads: int) -> list[Row]:
    from mlkd_training.evaluate import OpenCVNano

    def onnx(model_dir, enhance=False):
        return load_tracker(model_dir, "onnx", enhance, providers, threads)

    def torch_(model_dir, enhance=False):
        return load_tracker(model_dir, "torch", enhance, providers)

    rows = [
        Row("NanoTrack v2  float32 onnx", onnx(MODEL_DIR)),
        Row("NanoTrack v2  int8 onnx", onnx(int8_dir)),
        Row("NanoTrack v2  torch", torch_(MODEL_DIR)),
        Row("NanoTrack v2  teacher onnx", onnx(MODEL_DIR, True)),
    ]
    if alex_dir is not None:
        rows += [
            Row("NanoTrack v2  teacher torch", torch_(MODEL_DIR, True)),
            Row("SiamRPN++ Alex float32 onnx", onnx(alex_dir)),
            Row("SiamRPN++ Alex torch", torch_(alex_dir)),
            Row("SiamRPN++ Alex teacher onnx", onnx(alex_dir, True)),
        ]
    weights = SHARED / "weights" / "nanotrack_v2"
    nano = OpenCVNano(weights / "nanotrack_backbone_sim.onnx", weights / "nanotrack_head_sim.onnx")
    return [*rows, OpenCVRow("cv2.TrackerNano (same weights)", nano)]


def measure(rows: list[Row], frames: list[np.ndarray], box, block: int) -> None:
    for row in rows:
        row.track_s.clear()
        row.search_s.clear()
        row.init(frames[0], box)
        row.tracker.track(frames[1])  # warm-up: first-run allocations and graph optimisation
    for start in range(2, len(frames), block):
        for row in rows:
            for frame in frames[start : start + block]:
                row.step(frame)


def report(rows: list[Row], title: str) -> None:
    ms = {row.name: 1e3 * float(np.median(row.track_s)) for row in rows}
    nano = ms[rows[-1].name]
    print(f"\n{title}")
    print(
        f"{'tracker':32s} {'frames/s':>9s} {'track ms':>9s} {'search ms':>10s} {'loop ms':>8s} "
        f"{'loop share':>10s} {'track/search':>12s} {'x TrackerNano':>13s}"
    )
    for row in rows:
        track = ms[row.name]
        line = f"{row.name:32s} {1e3 / track:9.1f} {track:9.2f} "
        if row.search_s:
            search = 1e3 * float(np.median(row.search_s))
            loop = track - search
            line += f"{search:10.2f} {loop:8.2f} {loop / track:10.0%} {track / search:11.2f}x "
        else:
            line += f"{'-':>10s} {'-':>8s} {'-':>10s} {'-':>12s} "
        print(line + f"{nano / track:12.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames per resolution (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    parser.add_argument("--int8", type=Path, default=None, help="INT8 model directory (default: quantised here)")
    parser.add_argument("--providers", default="cpu", help="ONNX Runtime providers, e.g. tensorrt,cuda,cpu")
    parser.add_argument("--block", type=int, default=10, help="frames a tracker runs before the next (default 10)")
    parser.add_argument("--all", action="store_true", help="also the NanoTrack teacher on torch and SiamRPN++ AlexNet")
    parser.add_argument(
        "--cv-threads", type=int, default=1, help="OpenCV threads (TrackerNano's DNN, our crop); default 1"
    )
    args = parser.parse_args()
    providers = tuple(args.providers.split(","))
    # One thread everywhere by default: on a loaded 2-core machine a parallel region waits for its slowest
    # thread, which the scheduler may have parked for a whole time slice, so multi-threaded rows would be
    # measured at the machine's load rather than at their own cost.
    cv2.setNumThreads(args.cv_threads)
    import torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    paths = sorted(CLIP.rglob("*.jpg"))[: args.frames + 2]
    clip = [cv2.imread(str(p)) for p in paths]

    from mlkd_model.export import export_model
    from mlkd_model.nets.alexnet_rpn import SiamRPNAlex
    from mlkd_training.quantize import quantize_model

    with tempfile.TemporaryDirectory() as tmp:
        alex_dir = None
        if args.all:
            alex = SiamRPNAlex().eval()
            alex_dir = export_model(alex, Path(tmp) / "alex", enhancer_checkpoint=MODEL_DIR / "darklighter.pth")
        int8_dir = args.int8 or quantize_model(MODEL_DIR, Path(tmp) / "int8", crops=100)
        rows = make_rows(int8_dir, alex_dir, providers, args.threads)
        load = os.getloadavg()
        print(
            f"{len(clip) - 2} frames of {CLIP.name} per resolution, providers {','.join(providers)}, "
            f"{args.threads or 'default'} ONNX Runtime / torch thread(s), {args.cv_threads} OpenCV thread(s), "
            f"turns of {args.block} frame(s), "
            f"{os.cpu_count()} CPUs, "
            f"load average at start {load[0]:.1f}"
        )
        for width, height in RESOLUTIONS:
            sx, sy = width / clip[0].shape[1], height / clip[0].shape[0]
            frames = [cv2.resize(f, (width, height)) if (sx, sy) != (1, 1) else f for f in clip]
            box = (CLIP_BOX[0] * sx, CLIP_BOX[1] * sy, CLIP_BOX[2] * sx, CLIP_BOX[3] * sy)
            measure(rows, frames, box, max(args.block, 1))
            report(rows, f"{width}x{height}")
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
