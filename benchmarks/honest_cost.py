"""What honest tracking costs: the plain loop (SiameseTracker) against HonestTracker on the same frames.

Each has its own ONNX Runtime session of the embedded model; they take turns in blocks of --block frames over the
shipped night clip (as benchmarks/speed.py does, so a loaded machine slows both alike). Printed: median
track() of each, their ratio while the state is `tracking` (the issue's budget is 1.15x), and the frame rate
of a track held in `lost`, where every frame also runs a re-detection probe (budget: >= 30 frames/s).

    .venv/bin/python benchmarks/honest_cost.py [--frames 200] [--block 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from mlkd_model.honest_tracker import HonestTracker
from mlkd_model.load import load_tracker
from mlkd_model.target_state import StateRule
from mlkd_model.tracker import SiameseTracker

CLIP = Path(__file__).resolve().parents[1] / "demo" / "uavdark135_person11"
CLIP_BOX = (347, 171, 38, 125)


def timed(tracker, frame: np.ndarray) -> float:
    t0 = time.perf_counter()
    tracker.track(frame)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--block", type=int, default=10)
    args = ap.parse_args()
    frames = [cv2.imread(str(p)) for p in sorted(CLIP.glob("*.jpg"))]
    frames = (frames * (1 + args.frames // len(frames)))[: args.frames + 1]

    honest = load_tracker()
    plain = SiameseTracker(load_tracker().backend)
    # a state that never leaves `lost` after the first frame: every frame pays for a re-detection probe
    never_sure = StateRule(uncertain_below=1.0, tracking_above=1.0, lost_below=1.0, lost_after=1)
    lost = HonestTracker(load_tracker().backend, None, honest.confidence.model, never_sure)
    lost.redetection = honest.redetection
    rows = {"plain": (plain, []), "honest": (honest, []), "lost": (lost, [])}
    for name, (tracker, _) in rows.items():
        tracker.init(frames[0], CLIP_BOX)
        rows[name] = (tracker, [])
    states = []
    for start in range(1, len(frames), args.block):
        for name, (tracker, times) in rows.items():
            for frame in frames[start : start + args.block]:
                times.append(timed(tracker, frame))
                if name == "honest":
                    states.append(tracker.status.state)
    med = {name: float(np.median(times)) for name, (_, times) in rows.items()}
    tracking = [t for t, s in zip(rows["honest"][1], states, strict=True) if s == "tracking"]
    plain_times = rows["plain"][1]
    print(f"{len(frames) - 1} frames of {CLIP.name}, turns of {args.block}")
    print(f"plain loop        {med['plain'] * 1e3:6.2f} ms  ({1 / med['plain']:.0f} frames/s)")
    print(f"honest, all       {med['honest'] * 1e3:6.2f} ms  ratio {med['honest'] / med['plain']:.3f}x")
    if tracking:
        ratio = np.median(tracking) / np.median(plain_times)
        print(f"honest, tracking  {np.median(tracking) * 1e3:6.2f} ms  ratio {ratio:.3f}x  ({len(tracking)} frames)")
    print(f"lost (re-detect)  {med['lost'] * 1e3:6.2f} ms  ({1 / med['lost']:.0f} frames/s)")


if __name__ == "__main__":
    main()
