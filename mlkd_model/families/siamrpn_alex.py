"""SiamRPN++ AlexNet (pysot `siamrpn_alex_dwxcorr`): anchors, deltas (dx/w, dy/h, log tw/w, log th/h).

Training targets follow pysot: IoU > 0.6 positive, < 0.3 negative, 16 positives and 64 labelled anchors at
most. They sit here, beside the decoder they invert, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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


def anchor_grid(size: int, stride: int, ratios: Sequence[float], scales: Sequence[float]) -> np.ndarray:
    """pysot anchors as (cx, cy, w, h) rows, ordered anchor-major then row-major over the score map."""
    base = stride * stride
    shapes = []
    for ratio in ratios:
        ws = int(np.sqrt(base / ratio))
        hs = int(ws * ratio)
        for scale in scales:
            shapes.append((ws * scale, hs * scale))
    n = len(shapes)
    xx, yy = score_grid(size, stride)
    anchors = np.zeros((n, size * size, 4), np.float32)
    anchors[:, :, 0] = xx.ravel()
    anchors[:, :, 1] = yy.ravel()
    anchors[:, :, 2] = np.array([s[0] for s in shapes], np.float32)[:, None]
    anchors[:, :, 3] = np.array([s[1] for s in shapes], np.float32)[:, None]
    return anchors.reshape(-1, 4)


def generate_anchors(params: GridParams) -> np.ndarray:
    return anchor_grid(params.score_size, params.stride, params.anchor_ratios, params.anchor_scales)


class AnchorTarget:
    """Targets on the 17x17 training map: labels A x S x S, deltas 4A x S x S, weights A x S x S."""

    def __init__(self, cfg: TargetCounts) -> None:
        self.cfg = cfg
        size, stride = SiamRPNAlex.train_score
        ratios, scales = SiamRPNAlex.defaults["anchor_ratios"], SiamRPNAlex.defaults["anchor_scales"]
        self.size, self.stride, self.num = size, stride, len(ratios) * len(scales)
        a = anchor_grid(size, stride, ratios, scales)
        a = a.reshape(self.num, size, size, 4).transpose(3, 0, 1, 2).astype(np.float64)
        a[0] += TRAIN_SEARCH_SIZE // 2  # anchors are relative to the crop centre (pysot: 255 // 2)
        a[1] += TRAIN_SEARCH_SIZE // 2
        self.cx, self.cy, self.w, self.h = a

    def __call__(self, box: np.ndarray, neg: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
        cfg, size = self.cfg, self.size
        cls = -np.ones((self.num, size, size), np.int64)
        delta = np.zeros((4, self.num, size, size), np.float32)
        weight = np.zeros((self.num, size, size), np.float32)
        tcx, tcy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        tw, th = max(box[2] - box[0], 1.0), max(box[3] - box[1], 1.0)
        if neg:  # negatives only, near where the (wrong) object sits
            c = size // 2
            cx = c + int(np.ceil((tcx - TRAIN_SEARCH_SIZE // 2) / self.stride + 0.5))
            cy = c + int(np.ceil((tcy - TRAIN_SEARCH_SIZE // 2) / self.stride + 0.5))
            region = np.zeros_like(cls, dtype=bool)
            region[:, max(0, cy - 3) : min(size, cy + 4), max(0, cx - 3) : min(size, cx + 4)] = True
            idx, _ = keep_at_most(rng, np.where(region), cfg.neg_num)
            cls[idx] = 0
            return {"label_cls": cls, "label_loc": delta.reshape(-1, size, size), "label_loc_weight": weight}
        delta[0] = (tcx - self.cx) / self.w
        delta[1] = (tcy - self.cy) / self.h
        delta[2] = np.log(tw / self.w)
        delta[3] = np.log(th / self.h)
        x1, y1 = self.cx - self.w / 2, self.cy - self.h / 2
        x2, y2 = self.cx + self.w / 2, self.cy + self.h / 2
        iw = np.clip(np.minimum(x2, box[2]) - np.maximum(x1, box[0]), 0, None)
        ih = np.clip(np.minimum(y2, box[3]) - np.maximum(y1, box[1]), 0, None)
        inter = iw * ih
        iou = inter / (self.w * self.h + tw * th - inter)
        pos, pos_num = keep_at_most(rng, np.where(iou > 0.6), cfg.pos_num)
        negs, _ = keep_at_most(rng, np.where(iou < 0.3), cfg.total_num - pos_num)
        cls[pos] = 1
        weight[pos] = 1.0 / (pos_num + 1e-6)
        cls[negs] = 0
        return {"label_cls": cls, "label_loc": delta.reshape(-1, size, size), "label_loc_weight": weight}


@register
class SiamRPNAlex(Family):
    name = "siamrpn_alex"
    # pysot siamrpn_alex_dwxcorr / the MLKD configs: 287 -> 21x21, stride 8, 5 anchors.
    defaults: ClassVar[Mapping[str, Any]] = {
        "exemplar_size": 127,
        "instance_size": 287,
        "score_size": 21,
        "stride": 8,
        "penalty_k": 0.16,
        "window_influence": 0.40,
        "lr": 0.30,
        "anchor_ratios": (0.33, 0.5, 1.0, 2.0, 3.0),
        "anchor_scales": (8.0,),
    }
    anchor_based = True
    network = "mlkd_model.nets.alexnet_rpn:SiamRPNAlex"
    train_score = (17, 8)
    regression_loss = "smooth_l1"
    kd_reg_range = (-2.0, 2.0)  # deltas in anchor widths and log-scale: L_KDR bins them as they are
    target = AnchorTarget

    def prior(self, params: GridParams) -> np.ndarray:
        return generate_anchors(params)

    def decode(self, delta: np.ndarray, prior: np.ndarray) -> np.ndarray:
        px, py, aw, ah = prior[:, 0], prior[:, 1], prior[:, 2], prior[:, 3]
        return np.stack([delta[0] * aw + px, delta[1] * ah + py, np.exp(delta[2]) * aw, np.exp(delta[3]) * ah])

    def decode_one(self, d: tuple[float, float, float, float], prior_row: np.ndarray) -> tuple[float, ...]:
        px, py, aw, ah = (float(v) for v in prior_row[:4])
        return (d[0] * aw + px, d[1] * ah + py, math.exp(d[2]) * aw, math.exp(d[3]) * ah)

    def rank_constants(self, prior: np.ndarray) -> np.ndarray | None:
        return np.ascontiguousarray(prior[:, 2:].T, np.float32)

    def rank_sizes(self, delta: np.ndarray, constants: np.ndarray | None) -> np.ndarray:
        return np.exp(delta[2:]) * constants
