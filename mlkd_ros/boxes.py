"""Boxes (x, y, w, h; top-left, pixels) <-> geometry_msgs/Polygon, and ground-truth files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from geometry_msgs.msg import Point32, Polygon

from mlkd_model.frames import BoxError

Box = tuple[float, float, float, float]


def polygon_to_box(polygon: Polygon) -> Box:
    """2 points (opposite corners) or 4 (any quadrilateral: its axis-aligned bounding box)."""
    pts = [(p.x, p.y) for p in polygon.points]
    if len(pts) not in (2, 4):
        raise BoxError(f"an init polygon needs 2 corner points or 4, got {len(pts)}")
    if not all(math.isfinite(v) for pt in pts for v in pt):
        raise BoxError(f"init polygon has a NaN or infinite coordinate: {pts}")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def box_to_polygon(box: Box | None) -> Polygon:
    """4 corners clockwise from the top-left (image y points down); None -> empty polygon (lost)."""
    if box is None:
        return Polygon()
    x, y, w, h = (float(v) for v in box)
    corners = ((x, y), (x + w, y), (x + w, y + h), (x, y + h))
    return Polygon(points=[Point32(x=cx, y=cy, z=0.0) for cx, cy in corners])


def center(box: Box) -> tuple[float, float]:
    """Pixel-centre convention of the OPE toolkit: x + (w - 1) / 2."""
    return box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2


def load_ground_truth(path: str | Path) -> np.ndarray:
    """N x 4 array of x,y,w,h rows (commas, spaces or tabs; `nan` rows kept as NaN)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        parts = line.replace(",", " ").replace("\t", " ").split()
        if parts:
            rows.append([float(v) for v in parts[:4]])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)
