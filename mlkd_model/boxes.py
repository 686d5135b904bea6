"""Box helpers shared by the tracker, evaluation, training and the ground station (numpy only).

Boxes are x, y, w, h: top-left corner and size in pixels. Two notions of a usable box, kept apart:
- `labelled`: finite with a positive width and height. A frame whose ground truth is not labelled is
  excluded from the metrics; a box that is not labelled is drawn / published as "no box".
- `trainable` (mlkd_training.data): wider and taller than one pixel, because a training crop is scaled
  around the box and a sub-pixel box gives a degenerate target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]


def labelled_mask(boxes: np.ndarray) -> np.ndarray:
    """Per row of an N x 4 array: all finite and a positive width and height."""
    with np.errstate(invalid="ignore"):
        return np.all(np.isfinite(boxes), axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def is_labelled(box: Sequence[float] | np.ndarray | None) -> bool:
    """`labelled_mask` for one box; None (no box) is not labelled."""
    return box is not None and all(math.isfinite(v) for v in box) and box[2] > 0 and box[3] > 0


def corners(box: Sequence[float] | np.ndarray) -> list[tuple[float, float]]:
    """The 4 corners clockwise from the top-left (image y points down), as Python floats."""
    x, y, w, h = (float(v) for v in box)
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


def bounding_box(xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray) -> np.ndarray:
    """Axis-aligned x, y, w, h of points (polygon corners) as float64; a NaN coordinate gives NaN."""
    x0, y0 = np.min(xs), np.min(ys)
    return np.array([x0, y0, np.max(xs) - x0, np.max(ys) - y0], dtype=np.float64)


def center(box: Sequence[float]) -> tuple[float, float]:
    """Pixel-centre convention of the OPE toolkit: x + (w - 1) / 2."""
    return box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2
