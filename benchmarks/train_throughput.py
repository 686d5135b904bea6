"""Training throughput on this machine: data cost per sample, seconds per step and samples per second,
for one student and for the full room of the shipped CPU config, with one torch thread (the setting of
the CPU runs in docs/training.md). Prints figures; asserts nothing.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_throughput.py [--steps 6] [--batch 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "training/configs/nanotrack_night.yaml"


def data_cost(dataset, n: int, exact_noise: bool) -> float:
    """Milliseconds per training pair (template + search crops, darkened, targets)."""
    import mlkd_training.data as data_module

    real = data_module.darken
    data_module.darken = lambda *a, **kw: real(*a, **kw, exact_noise=exact_noise)
    try:
        dataset[(99, 0)]  # warm the file cache
        t0 = time.perf_counter()
        for i in range(n):
            dataset[(98, i)]
        return (time.perf_counter() - t0) / n * 1000
    finally:
        data_module.darken = real


def step_time(cfg, dataset, steps: int, batch: int) -> float:
    """Seconds per optimiser step (forward of teacher and students, backward, per-student clip, SGD)."""
    from mlkd_model.nets.build import build_tracker
    from mlkd_training.framework import MLKDFramework
    from mlkd_training.trainer import clip_per_student

    fw = MLKDFramework(cfg.framework, build_tracker(cfg.family, cfg.tracker_checkpoint)).train()
    groups = [[p for p in s.parameters() if p.requires_grad] for s in fw.students]
    opt = torch.optim.SGD([p for g in groups for p in g], lr=1e-3, momentum=0.9)
    samples = [dataset[(97, i)] for i in range(batch)]
    b = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
    if cfg.framework.normalize:
        fw.calibrate([b])
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        out = fw(b)
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        clip_per_student(groups, cfg.train.grad_clip)
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def main(argv: list[str] | None = None) -> int:
    from mlkd_training.config import load_config
    from mlkd_training.data import build_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--samples", type=int, default=40, help="pairs timed for the data cost")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    full = load_config(CONFIG)
    one = load_config(CONFIG, ["framework.mode=kd", "framework.students=[none]", "framework.room=null"])
    dataset = build_dataset(full.data, full.family, full.seed)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, 1 thread, batch {args.batch}, load average {load:.1f} on {os.cpu_count()} cores")
    gauss, poisson = data_cost(dataset, args.samples, False), data_cost(dataset, args.samples, True)
    print(f"data: {gauss:.1f} ms/pair (Gaussian shot noise), {poisson:.1f} ms/pair (Poisson), {poisson / gauss:.2f}x")
    data_step = gauss * args.batch / 1000
    for name, cfg in (("one student (KD only)", one), (f"full room ({len(full.framework.students)} students)", full)):
        sec = step_time(cfg, dataset, args.steps, args.batch)
        # One data worker prepares the next batch while the main process computes: the slower of the two paces.
        paced = max(sec, data_step)
        per_2h = int(7200 / paced)
        print(
            f"{name:<28} {sec:6.2f} s/step compute, {paced:6.2f} s/step with one data worker, "
            f"{args.batch / paced:6.1f} samples/s, {per_2h} steps in 2 h"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
