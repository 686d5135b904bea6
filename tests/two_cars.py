"""A two-object scene made from real frames: one car drives (and may leave), a similar car stays parked."""

from __future__ import annotations

import cv2
import numpy as np
from shared_paths import SEQUENCES

from mlkd_model.datasets import load_dataset

CAR_A = SEQUENCES / "val" / "uav123_car14"
CAR_B = SEQUENCES / "train" / "uav123_car10"


def car(folder, scale: float = 1.5) -> np.ndarray:
    """The labelled car of a sequence's first frame, with a margin of road around it."""
    seq = load_dataset(folder)[0]
    x, y, w, h = (round(v) for v in seq.boxes[0])
    patch = seq.image(0)[y : y + h, x : x + w]
    return cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)


def scene(frames: int, positions_a: list, position_b: tuple[int, int], a: np.ndarray, b: np.ndarray, seed: int = 0):
    """Road-like noise with car A at positions_a[i] (None: gone) and car B parked; returns frames and A's boxes."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.normal(90, 18, (240, 360, 3)).clip(0, 255).astype(np.uint8), (0, 0), 3)
    images, boxes = [], []
    for i in range(frames):
        img = base.copy()
        bx, by = position_b
        img[by : by + b.shape[0], bx : bx + b.shape[1]] = b
        pos = positions_a[i]
        if pos is None:
            boxes.append((np.nan,) * 4)
        else:
            x, y = pos
            img[y : y + a.shape[0], x : x + a.shape[1]] = a
            boxes.append((x, y, a.shape[1], a.shape[0]))
        noise = rng.normal(0, 4, img.shape)
        images.append((img + noise).clip(0, 255).astype(np.uint8))
    return images, np.array(boxes, float)


def leave_and_return() -> list:
    """Positions of the driving car: right for 40 frames, out at the top, gone 40 frames, back for 60."""
    moving = [(40 + 3 * i, 100) for i in range(40)]
    leaving = [(160, 100 - 25 * k) for k in range(1, 4)]
    return moving + [p if p[1] >= 0 else None for p in leaving] + [None] * 40 + [(150, 110)] * 60
