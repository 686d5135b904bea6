"""The Siamese tracking loop, independent of the inference backend.

A backend turns crops into network outputs (`TrackerBackend`); this module does everything
around it: context crops with mean padding, anchor / anchor-free decoding, cosine window,
scale and ratio penalties, size smoothing and clipping to the frame (as pysot and NanoTrack do).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

from mlkd_model.frames import check_box, to_bgr
from mlkd_model.params import TrackerParams


class TrackerBackend(Protocol):
    """Runs the network. Crops are float32 1x3xSxS in the network's channel order, 0..255."""

    params: TrackerParams

    def set_template(self, z_crop: np.ndarray) -> None: ...

    def search(self, x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (cls, loc) raw head outputs for one search crop."""
        ...


def get_subwindow(
    image: np.ndarray, center: np.ndarray, model_size: int, original_size: float, pad_value: np.ndarray
) -> np.ndarray:
    """Square crop of side `original_size` around `center`, padded with `pad_value`, resized to model_size.

    Same sampling as pysot's get_subwindow; only the part of the frame inside the crop is copied.
    """
    size = round(original_size)
    size = max(size, 1)
    c = (size + 1) / 2
    x0 = int(np.floor(center[0] - c + 0.5))
    y0 = int(np.floor(center[1] - c + 0.5))
    x1, y1 = x0 + size, y0 + size  # exclusive
    h, w = image.shape[:2]
    left, top = max(0, -x0), max(0, -y0)
    right, bottom = max(0, x1 - w), max(0, y1 - h)
    if left or top or right or bottom:
        inner = image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
        if inner.size == 0:  # crop entirely outside the frame: all padding
            patch = np.empty((size, size, 3), np.uint8)
            patch[:] = pad_value
        else:
            patch = cv2.copyMakeBorder(
                inner, top, bottom, left, right, cv2.BORDER_CONSTANT, value=[float(v) for v in pad_value]
            )
    else:
        patch = image[y0:y1, x0:x1]
    if size != model_size:
        patch = cv2.resize(patch, (model_size, model_size))
    return patch


def to_blob(patch: np.ndarray, order: str) -> np.ndarray:
    """HxWx3 uint8 BGR patch -> 1x3xHxW float32 in the network's channel order."""
    if order == "rgb":
        patch = patch[:, :, ::-1]
    return np.ascontiguousarray(patch.transpose(2, 0, 1)[None], dtype=np.float32)


def generate_anchors(params: TrackerParams) -> np.ndarray:
    """pysot anchors as (cx, cy, w, h) rows, ordered anchor-major then row-major over the score map."""
    base = params.stride * params.stride
    shapes = []
    for ratio in params.anchor_ratios:
        ws = int(np.sqrt(base / ratio))
        hs = int(ws * ratio)
        for scale in params.anchor_scales:
            shapes.append((ws * scale, hs * scale))
    n, size = len(shapes), params.score_size
    origin = -(size // 2) * params.stride
    grid = origin + params.stride * np.arange(size, dtype=np.float32)
    xx, yy = np.meshgrid(grid, grid)
    anchors = np.zeros((n, size * size, 4), np.float32)
    anchors[:, :, 0] = xx.ravel()
    anchors[:, :, 1] = yy.ravel()
    anchors[:, :, 2] = np.array([s[0] for s in shapes], np.float32)[:, None]
    anchors[:, :, 3] = np.array([s[1] for s in shapes], np.float32)[:, None]
    return anchors.reshape(-1, 4)


def generate_points(params: TrackerParams) -> np.ndarray:
    """Anchor-free sample points (x, y) relative to the crop centre, row-major over the score map."""
    size = params.score_size
    origin = -(size // 2) * params.stride
    grid = origin + params.stride * np.arange(size, dtype=np.float32)
    xx, yy = np.meshgrid(grid, grid)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def _softmax_fg(cls: np.ndarray) -> np.ndarray:
    """Foreground probability from a 1 x (2*A) x H x W map laid out [class][anchor] (A = 1 anchor-free)."""
    logits = cls.reshape(2, -1).astype(np.float64)
    logits = logits - logits.max(axis=0, keepdims=True)
    e = np.exp(logits)
    return e[1] / e.sum(axis=0)


def decode(params: TrackerParams, cls: np.ndarray, loc: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network outputs -> (foreground score per candidate, boxes cx,cy,w,h in crop pixels from the centre)."""
    score = _softmax_fg(cls)
    if params.family == "siamrpn_alex":
        delta = loc.reshape(4, -1).astype(np.float64)
        boxes = np.empty_like(delta)
        boxes[0] = delta[0] * prior[:, 2] + prior[:, 0]
        boxes[1] = delta[1] * prior[:, 3] + prior[:, 1]
        boxes[2] = np.exp(delta[2]) * prior[:, 2]
        boxes[3] = np.exp(delta[3]) * prior[:, 3]
    else:  # anchor-free: distances to the left, top, right, bottom edges
        ltrb = loc.reshape(4, -1).astype(np.float64)
        x1, y1 = prior[:, 0] - ltrb[0], prior[:, 1] - ltrb[1]
        x2, y2 = prior[:, 0] + ltrb[2], prior[:, 1] + ltrb[3]
        boxes = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
    return score, boxes


def padded_size(w: np.ndarray | float, h: np.ndarray | float) -> np.ndarray:
    """Side of the square that the box covers with its context: sqrt((w + p)(h + p)), p = (w + h) / 2."""
    pad = (np.asarray(w) + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def context_size(size: np.ndarray, context_amount: float) -> float:
    """Side of the template's context square around a w,h target."""
    w = size[0] + context_amount * size.sum()
    h = size[1] + context_amount * size.sum()
    return float(np.sqrt(w * h))


class SiameseTracker:
    """init(frame, box) once, then track(frame) -> ((x, y, w, h), score) per frame."""

    def __init__(self, backend: TrackerBackend, params: TrackerParams | None = None) -> None:
        self.backend = backend
        self.params = params or backend.params
        p = self.params
        if p.family == "siamrpn_alex":
            self.prior = generate_anchors(p)
            window = np.tile(np.outer(np.hanning(p.score_size), np.hanning(p.score_size)).ravel(), p.anchor_num)
        else:
            self.prior = generate_points(p)
            window = np.outer(np.hanning(p.score_size), np.hanning(p.score_size)).ravel()
        self.window = window
        self.center = np.zeros(2)
        self.size = np.zeros(2)
        self.channel_average = np.zeros(3)
        self.initialized = False

    def _context_size(self) -> float:
        return context_size(self.size, self.params.context_amount)

    def penalty(self, boxes: np.ndarray, scale_z: float) -> np.ndarray:
        """Scale and aspect-ratio change penalty of each candidate against the current target size."""

        def change(r: np.ndarray) -> np.ndarray:
            return np.maximum(r, 1.0 / r)

        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            scale_change = change(padded_size(boxes[2], boxes[3]) / padded_size(*(self.size * scale_z)))
            ratio_change = change((self.size[0] / self.size[1]) / (boxes[2] / boxes[3]))
            penalty = np.exp(-(ratio_change * scale_change - 1) * self.params.penalty_k)
        return np.nan_to_num(penalty, nan=0.0)

    def init(self, frame: np.ndarray, box: Sequence[float], color: str = "bgr") -> None:
        """Start tracking the x,y,w,h box (top-left corner, pixels) in `frame`."""
        # Transactional: everything is computed into locals and committed at the end, so an init that
        # fails (bad box, backend error) leaves the current track exactly as it was.
        image = to_bgr(frame, color)
        x, y, w, h = check_box(box, image.shape[1], image.shape[0])
        center = np.array([x + (w - 1) / 2, y + (h - 1) / 2])
        size = np.array([w, h])
        channel_average = image.mean(axis=(0, 1))
        s_z = round(context_size(size, self.params.context_amount))
        z = get_subwindow(image, center, self.params.exemplar_size, s_z, channel_average)
        self.backend.set_template(to_blob(z, self.params.input_order))  # the backend's own commit point
        self.center, self.size, self.channel_average = center, size, channel_average
        self.initialized = True

    def track(self, frame: np.ndarray, color: str = "bgr") -> tuple[tuple[float, float, float, float], float]:
        """Locate the target in `frame`; returns the x,y,w,h box and the network's confidence (0..1)."""
        if not self.initialized:
            raise RuntimeError("track() called before init(): give the tracker a frame and a box first")
        p = self.params
        image = to_bgr(frame, color)
        s_z = self._context_size()
        scale_z = p.exemplar_size / s_z
        s_x = s_z * p.instance_size / p.exemplar_size
        x = get_subwindow(image, self.center, p.instance_size, round(s_x), self.channel_average)
        cls, loc = self.backend.search(to_blob(x, p.input_order))
        score, boxes = decode(p, cls, loc, self.prior)

        penalty = self.penalty(boxes, scale_z)
        pscore = penalty * score * (1 - p.window_influence) + self.window * p.window_influence
        best = int(np.argmax(pscore))
        box = boxes[:, best] / scale_z
        lr = penalty[best] * score[best] * p.lr
        cx, cy = box[0] + self.center[0], box[1] + self.center[1]
        w = self.size[0] * (1 - lr) + box[2] * lr
        h = self.size[1] * (1 - lr) + box[3] * lr
        height, width = image.shape[:2]
        cx, cy = float(np.clip(cx, 0, width)), float(np.clip(cy, 0, height))
        w, h = float(np.clip(w, 10, width)), float(np.clip(h, 10, height))
        self.center = np.array([cx, cy])
        self.size = np.array([w, h])
        return (cx - w / 2, cy - h / 2, w, h), float(score[best])
