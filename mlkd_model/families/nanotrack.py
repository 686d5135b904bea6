"""NanoTrack v2: anchor-free, one point per score-map cell, ltrb distances to the box edges.

Training targets follow SiamBAN / NanoTrack: points inside the ellipse of radii w/4, h/4 around the target
centre are positive, outside radii w/2, h/2 negative. They sit here, beside the decoder they invert, so
the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from mlkd_model.families.registry import (
    TRAIN_SEARCH_SIZE,
    Family,
    GridParams,
    TargetCounts,
    keep_at_most,
    register,
    score_grid,
)


def point_grid(size: int, stride: int) -> np.ndarray:
    """Sample points (x, y) relative to the crop centre, row-major over the score map."""
    xx, yy = score_grid(size, stride)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def generate_points(params: GridParams) -> np.ndarray:
    return point_grid(params.score_size, params.stride)


class PointTarget:
    """Targets on the 16x16 training map: labels 1 x S x S, ltrb distances 4 x S x S."""

    def __init__(self, cfg: TargetCounts) -> None:
        self.cfg = cfg
        size, stride = NanoTrack.train_score
        pts = point_grid(size, stride).astype(np.float64) + TRAIN_SEARCH_SIZE // 2  # the tracker's decode grid
        self.size = size
        self.px, self.py = pts[:, 0].reshape(size, size), pts[:, 1].reshape(size, size)

    def __call__(self, box: np.ndarray, neg: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
        cfg, size = self.cfg, self.size
        cls = -np.ones((1, size, size), np.int64)
        ltrb = np.zeros((4, size, size), np.float32)
        weight = np.zeros((1, size, size), np.float32)
        tcx, tcy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        tw, th = max(box[2] - box[0], 1.0), max(box[3] - box[1], 1.0)
        ellipse = ((self.px - tcx) / (tw / 4)) ** 2 + ((self.py - tcy) / (th / 4)) ** 2
        if neg:
            idx, _ = keep_at_most(rng, np.where(ellipse[None] < 1), cfg.neg_num)
            cls[idx] = 0
            return {"label_cls": cls, "label_loc": ltrb, "label_loc_weight": weight}
        ltrb[0], ltrb[1] = self.px - box[0], self.py - box[1]
        ltrb[2], ltrb[3] = box[2] - self.px, box[3] - self.py
        outer = ((self.px - tcx) / (tw / 2)) ** 2 + ((self.py - tcy) / (th / 2)) ** 2
        pos, pos_num = keep_at_most(rng, np.where(ellipse[None] < 1), cfg.pos_num)
        negs, _ = keep_at_most(rng, np.where(outer[None] > 1), cfg.total_num - pos_num)
        cls[pos] = 1
        weight[pos] = 1.0 / max(pos_num, 1)
        cls[negs] = 0
        return {"label_cls": cls, "label_loc": ltrb, "label_loc_weight": weight}


@register
class NanoTrack(Family):
    name = "nanotrack"
    # NanoTrack v2 release config (penalty 0.148, window 0.462, lr 0.39); 255 -> 16x16, stride 16.
    defaults: ClassVar[Mapping[str, Any]] = {
        "exemplar_size": 127,
        "instance_size": 255,
        "score_size": 16,
        "stride": 16,
        "penalty_k": 0.148,
        "window_influence": 0.462,
        "lr": 0.39,
    }
    network = "mlkd_model.nets.nanotrack:NanoTrackV2"
    # The released nanotrackv2.pth carries a 64->64 `neck` that NanoTrack never applies (its AdjustLayer
    # is the identity when in and out widths agree).
    unused_checkpoint_keys = ("neck.",)
    train_score = (16, 16)
    regression_loss = "iou"
    # The outputs are exp'd pixel distances: L_KDR bins log(d / stride) on [-3, 3], which
    # undoes the exp, so a few pixels on a small box weigh as much as a proportional error on a large one.
    kd_reg_range = (-3.0, 3.0)
    target = PointTarget

    def prior(self, params: GridParams) -> np.ndarray:
        return generate_points(params)

    def decode(self, delta: np.ndarray, prior: np.ndarray) -> np.ndarray:
        px, py = prior[:, 0], prior[:, 1]
        x1, y1 = px - delta[0], py - delta[1]
        x2, y2 = px + delta[2], py + delta[3]
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])

    def decode_one(self, d: tuple[float, float, float, float], prior_row: np.ndarray) -> tuple[float, ...]:
        px, py = float(prior_row[0]), float(prior_row[1])
        x1, y1, x2, y2 = px - d[0], py - d[1], px + d[2], py + d[3]
        return ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)

    def rank_sizes(self, delta: np.ndarray, constants: np.ndarray | None) -> np.ndarray:
        return delta[:2] + delta[2:]  # w = left + right, h = top + bottom

    def kd_reg_values(self, loc: Any) -> Any:
        return (loc.float().clamp_min(1e-3) / float(self.defaults["stride"])).log()
