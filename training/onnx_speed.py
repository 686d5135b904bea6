"""Speed class check for the shipping rule: the search branch (run every frame) of each model directory on
ONNX Runtime, one thread, the models taking turns in blocks of frames so a loaded machine slows them alike.

    python -m mlkd_training.onnx_speed BASE_DIR OTHER_DIR... [--frames 400] [--block 10]

Prints each model's median search-branch time and frames/s relative to the first (the rule: within 5%, an
adapter within 10%). The network's cost does not depend on the pixels, so the crops are random.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mlkd_model.onnx_backend import session_options


def _session(path: Path) -> ort.InferenceSession:
    # The deployed session's options (one thread, no spinning, denormals flushed to zero).
    return ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])


def search_times(models: list[Path], frames: int, block: int, seed: int = 0) -> list[np.ndarray]:
    """Per model, the search branch's wall time of each of `frames` runs (seconds)."""
    rng = np.random.default_rng(seed)
    inputs = []
    sessions = []
    for model in models:
        manifest = json.loads((model / "manifest.json").read_text())
        t_shape, s_shape = manifest["inputs"]["template"], manifest["inputs"]["search"]
        template, search = _session(model / "template.onnx"), _session(model / "search.onnx")
        z = rng.uniform(0, 255, t_shape).astype(np.float32)
        kernels = template.run(None, {"template": z})
        feed = {f"kernel{i}": k for i, k in enumerate(kernels)}
        feed["search"] = rng.uniform(0, 255, s_shape).astype(np.float32)
        sessions.append(search)
        inputs.append(feed)
    times: list[list[float]] = [[] for _ in models]
    for _ in range(frames // block):
        for k, (session, feed) in enumerate(zip(sessions, inputs, strict=True)):
            session.run(None, feed)  # first run of the turn warms the caches, as on a ground station
            for _ in range(block):
                t = time.perf_counter()
                session.run(None, feed)
                times[k].append(time.perf_counter() - t)
    return [np.array(t) for t in times]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="model directories; the first is the reference")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--block", type=int, default=10)
    args = parser.parse_args(argv)
    times = search_times(args.models, args.frames, args.block)
    base = float(np.median(times[0]))
    for model, t in zip(args.models, times, strict=True):
        median = float(np.median(t))
        sys.stdout.write(f"{model}: search branch {median * 1e3:.2f} ms median, frames/s x{base / median:.3f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
