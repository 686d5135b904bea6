"""Boxes (x, y, w, h; top-left, pixels) <-> geometry_msgs/Polygon.

The box arithmetic itself (corners, bounding box, centre) and the ground-truth reader are the torch-free
core's (mlkd_model.boxes, mlkd_model.datasets), shared with evaluation and training.
"""

from __future__ import annotations

import math

from geometry_msgs.msg import Point32, Polygon

from mlkd_model.boxes import Box, bounding_box, center, corners
from mlkd_model.datasets import read_boxes as load_ground_truth
from mlkd_model.frames import BoxError

__all__ = ["Box", "box_to_polygon", "center", "load_ground_truth", "polygon_to_box"]


def polygon_to_box(polygon: Polygon) -> Box:
    """2 points (opposite corners) or 4 (any quadrilateral: its axis-aligned bounding box)."""
    pts = [(p.x, p.y) for p in polygon.points]
    if len(pts) not in (2, 4):
        raise BoxError(f"an init polygon needs 2 corner points or 4, got {len(pts)}")
    if not all(math.isfinite(v) for pt in pts for v in pt):
        raise BoxError(f"init polygon has a NaN or infinite coordinate: {pts}")
    x, y, w, h = (float(v) for v in bounding_box([p[0] for p in pts], [p[1] for p in pts]))
    return x, y, w, h


def box_to_polygon(box: Box | None) -> Polygon:
    """4 corners clockwise from the top-left (image y points down); None -> empty polygon (lost)."""
    if box is None:
        return Polygon()
    return Polygon(points=[Point32(x=cx, y=cy, z=0.0) for cx, cy in corners(box)])
