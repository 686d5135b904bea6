"""Tiny synthetic OTB-layout sequences for the data and trainer tests (no shared data needed)."""

from pathlib import Path

import cv2
import numpy as np


def make_sequences(root: Path, n_seq: int = 2, n_frames: int = 6) -> Path:
    """OTB-style sequences: a bright square moving over noise, boxes in groundtruth_rect.txt."""
    rng = np.random.default_rng(0)
    for s in range(n_seq):
        d = root / f"seq{s}" / "img"
        d.mkdir(parents=True)
        rows = []
        for i in range(n_frames):
            img = rng.integers(0, 120, (120, 160, 3), dtype=np.uint8)
            x, y = 40 + 3 * i + 10 * s, 30 + 2 * i
            img[y : y + 30, x : x + 24] = (40, 200, 230)
            cv2.imwrite(str(d / f"{i + 1:06d}.jpg"), img)
            rows.append(f"{x},{y},24,30")
        (root / f"seq{s}" / "groundtruth_rect.txt").write_text("\n".join(rows) + "\n")
    return root
