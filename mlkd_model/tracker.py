"""The Siamese tracking loop, independent of the inference backend.

A backend turns crops into network outputs (`TrackerBackend`); this module does everything
around it: context crops with mean padding, anchor / anchor-free decoding, cosine window,
scale and ratio penalties, size smoothing and clipping to the frame (as pysot and NanoTrack do).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import cv2
import numpy as np

from mlkd_model.families import get_family
from mlkd_model.frames import check_box, check_frame
from mlkd_model.params import TrackerParams


class LastSearch(NamedTuple):
    """One track() call's search: the raw cls map (overwritten by the next search), the chosen candidate,
    its box (cx, cy, w, h in crop pixels from the crop centre), the target's size before this frame (crop
    pixels) and the crop's scale (crop pixels per frame pixel)."""

    cls: np.ndarray
    best: int
    box: tuple[float, float, float, float]
    target: tuple[float, float]
    scale: float


class TrackerBackend(Protocol):
    """Runs the network. Crops are float32 1x3xSxS in the network's channel order, 0..255."""

    params: TrackerParams

    def set_template(self, z_crop: np.ndarray) -> None: ...

    def search(self, x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (cls, loc) raw head outputs for one search crop."""
        ...


def get_subwindow(
    image: np.ndarray,
    center: np.ndarray | Sequence[float],
    model_size: int,
    original_size: float,
    pad_value: np.ndarray | Sequence[float],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Square crop of side `original_size` around `center`, padded with `pad_value`, resized to model_size.

    Same sampling as pysot's get_subwindow; only the part of the frame inside the crop is copied. `image` is
    HxWx3 or HxW (then `pad_value` is one number); `out` (model_size x model_size, like the image) is where
    resizing writes; a crop that needs no resizing comes back as a view. This stays a crop + cv2.resize
    rather than one cv2.warpAffine over the frame: the warp samples at 1/32 px and blends the crop's edge
    with what lies beyond it, which moved boxes by 0.02-0.12 px on the first frame of the fixtures and val
    sequences (up to 72 px later), and it took 2-3x longer than the resize.
    """
    size = max(round(original_size), 1)
    c = (size + 1) / 2
    x0 = int(np.floor(center[0] - c + 0.5))
    y0 = int(np.floor(center[1] - c + 0.5))
    x1, y1 = x0 + size, y0 + size  # exclusive
    h, w = image.shape[:2]
    left, top = max(0, -x0), max(0, -y0)
    right, bottom = max(0, x1 - w), max(0, y1 - h)
    if left or top or right or bottom:
        inner = _cv_view(image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)])
        values = [float(v) for v in np.ravel(pad_value)]
        if inner.size == 0:  # crop entirely outside the frame: all padding
            patch = np.empty((size, size, *image.shape[2:]), np.uint8)
            patch[:] = values if image.ndim == 3 else values[0]
        else:
            patch = cv2.copyMakeBorder(inner, top, bottom, left, right, cv2.BORDER_CONSTANT, value=values)
    else:
        patch = _cv_view(image[y0:y1, x0:x1])
    if size != model_size:
        return cv2.resize(patch, (model_size, model_size), dst=out)
    return patch


def _cv_view(a: np.ndarray) -> np.ndarray:
    """`a` itself when OpenCV can read it in place (rows of contiguous pixels), else a contiguous copy."""
    pixel = a.itemsize * (a.shape[2] if a.ndim == 3 else 1)
    if a.strides[-1] == a.itemsize and (a.ndim == 2 or a.strides[1] == pixel) and a.strides[0] > 0:
        return a
    return np.ascontiguousarray(a)


def to_blob(patch: np.ndarray, order: str, out: np.ndarray | None = None, planes: list | None = None) -> np.ndarray:
    """HxWx3 uint8 BGR patch (or HxW gray) -> 1x3xHxW float32 in the network's channel order.

    `out` (1x3xHxW float32) and `planes` (three HxW uint8 arrays) are buffers to reuse; cv2.split into
    planes and a cast per plane is about twice as fast as a strided transpose copy.
    """
    h, w = patch.shape[:2]
    if out is None:
        out = np.empty((1, 3, h, w), np.float32)
    if patch.ndim == 2:
        for c in range(3):
            np.copyto(out[0, c], patch)
        return out
    if planes is None:
        planes = [np.empty((h, w), np.uint8) for _ in range(3)]
    cv2.split(patch, planes)
    for c, plane in enumerate(reversed(planes) if order == "rgb" else planes):
        np.copyto(out[0, c], plane)
    return out


def _softmax_fg(cls: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Foreground probability from a 1 x (2*A) x H x W map laid out [class][anchor] (A = 1 anchor-free)."""
    logits = cls.reshape(2, -1).astype(dtype, copy=False)
    logits = logits - logits.max(axis=0, keepdims=True)
    e = np.exp(logits)
    return e[1] / e.sum(axis=0)


def decode(
    params: TrackerParams, cls: np.ndarray, loc: np.ndarray, prior: np.ndarray, dtype: type = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Network outputs -> (foreground score per candidate, boxes cx,cy,w,h in crop pixels from the centre)."""
    score = _softmax_fg(cls, dtype)
    delta = loc.reshape(4, -1).astype(dtype, copy=False)
    return score, get_family(params.family).decode(delta, prior)


def padded_size(w: np.ndarray | float, h: np.ndarray | float) -> np.ndarray:
    """Side of the square that the box covers with its context: sqrt((w + p)(h + p)), p = (w + h) / 2."""
    pad = (np.asarray(w) + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def context_size(size: np.ndarray, context_amount: float) -> float:
    """Side of the template's context square around a w,h target (Python floats: no per-frame arrays)."""
    w, h = float(size[0]), float(size[1])
    context = context_amount * (w + h)
    return math.sqrt((w + context) * (h + context))


def size_penalty(w: np.ndarray, h: np.ndarray, target_w: float, target_h: float, k: float) -> np.ndarray:
    """exp(-k (r s - 1)): r, s >= 1 the aspect-ratio and scale change of each candidate against the target."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = padded_size(w, h) / float(padded_size(target_w, target_h))  # a Python float keeps float32
        ratio = (target_w / target_h) / (w / h)
        change = np.maximum(ratio, 1 / ratio) * np.maximum(scale, 1 / scale)
        penalty = np.exp(-(change - 1) * k)
    return np.nan_to_num(penalty, nan=0.0)


def _pad_value(channel_average: np.ndarray, color: str) -> np.ndarray:
    """The BGR channel average in a `color` frame's own order (the padding of its crops)."""
    avg = channel_average
    return avg[:1] if color == "gray" else avg[::-1] if color == "rgb" else avg


class SiameseTracker:
    """init(frame, box) once, then track(frame) -> ((x, y, w, h), score) per frame.

    Per frame: one crop into a reused buffer, one blob into a reused buffer, the search branch, then the
    candidates ranked in float32 with constants made once per track by init(). The winner alone is decoded
    again in float64 scalars, so the state and the boxes carry the reference arithmetic (`decode`,
    `size_penalty`) and float32 only chooses among candidates; if any candidate is not finite, the whole
    choice falls back to that float64 reference.
    """

    def __init__(self, backend: TrackerBackend, params: TrackerParams | None = None) -> None:
        self.backend = backend
        self.params = params or backend.params
        self.center = np.zeros(2)
        self.size = np.zeros(2)
        self.channel_average = np.zeros(3)
        self.initialized = False
        self.last: LastSearch | None = None  # what the latest track() saw, for the confidence cues

    def _context_size(self) -> float:
        return context_size(self.size, self.params.context_amount)

    def _prepare(self) -> None:
        """Per-track constants and buffers from the current params (they may be replaced before init)."""
        p = self.params
        n = p.score_size
        family = self._family = get_family(p.family)
        self._prior = family.prior(p).astype(np.float64)
        window = np.outer(np.hanning(n), np.hanning(n)).ravel()
        window = np.tile(window, len(self._prior) // window.size)  # one window per anchor shape
        self._window = window
        self._rank_constants = family.rank_constants(self._prior)
        self._window_term = (window * p.window_influence).astype(np.float32)
        self._log_weight_k = math.log(1 - p.window_influence) + p.penalty_k if p.window_influence < 1 else -math.inf
        s = p.instance_size
        self._patch = np.empty((s, s, 3), np.uint8)
        self._gray_patch = np.empty((s, s), np.uint8)
        self._planes = [np.empty((s, s), np.uint8) for _ in range(3)]
        self._blob = np.empty((1, 3, s, s), np.float32)

    def init(self, frame: np.ndarray, box: Sequence[float], color: str = "bgr") -> None:
        """Start tracking the x,y,w,h box (top-left corner, pixels) in `frame`."""
        # Transactional: everything is computed into locals and committed at the end, so an init that
        # fails (bad box, backend error) leaves the current track exactly as it was.
        image = check_frame(frame, color)
        x, y, w, h = check_box(box, image.shape[1], image.shape[0])
        center = np.array([x + (w - 1) / 2, y + (h - 1) / 2])
        size = np.array([w, h])
        mean = image.mean(axis=(0, 1))  # in the frame's order; channel_average is BGR
        channel_average = np.repeat(mean, 3) if color == "gray" else mean[::-1] if color == "rgb" else mean
        self.backend.set_template(self.template_blob(image, center, size, channel_average, color))  # commit point
        self._prepare()
        self.center, self.size, self.channel_average = center, size, channel_average
        self.initialized = True

    def template_blob(
        self, image: np.ndarray, center: np.ndarray, size: np.ndarray, channel_average: np.ndarray, color: str
    ) -> np.ndarray:
        """The network's template input: the context crop around a target of `size` at `center`."""
        s_z = round(context_size(size, self.params.context_amount))
        z = get_subwindow(image, center, self.params.exemplar_size, s_z, _pad_value(channel_average, color))
        return to_blob(z, self._swap(color))

    def _pad_value(self, color: str) -> np.ndarray:
        return _pad_value(self.channel_average, color)

    def _swap(self, color: str) -> str:
        """to_blob's order for a crop of a `color` frame: "rgb" (swap) when the frame's order is not the network's."""
        return "bgr" if color in ("gray", self.params.input_order) else "rgb"

    def track(self, frame: np.ndarray, color: str = "bgr") -> tuple[tuple[float, float, float, float], float]:
        """Locate the target in `frame`; returns the x,y,w,h box and the network's confidence (0..1)."""
        if not self.initialized:
            raise RuntimeError("track() called before init(): give the tracker a frame and a box first")
        p = self.params
        image = check_frame(frame, color)
        s_z = self._context_size()
        scale_z = p.exemplar_size / s_z
        s_x = s_z * p.instance_size / p.exemplar_size
        out = self._gray_patch if color == "gray" else self._patch
        x = get_subwindow(image, self.center, p.instance_size, round(s_x), self._pad_value(color), out)
        cls, loc = self.backend.search(to_blob(x, self._swap(color), self._blob, self._planes))

        size_w, size_h = self.size.tolist()
        target = (size_w * scale_z, size_h * scale_z, size_w / size_h)
        best = self._rank(cls, loc, target)
        found = None if best is None else self._winner(cls, loc, best, target)
        if found is None:
            best, found = self._reference_choice(cls, loc, target)
        (dx, dy, bw, bh), score, penalty = found
        self.last = LastSearch(cls, int(best), (dx, dy, bw, bh), target[:2], scale_z)  # type: ignore[arg-type]
        lr = penalty * score * p.lr
        center_x, center_y = self.center.tolist()
        cx, cy = dx / scale_z + center_x, dy / scale_z + center_y
        w = size_w * (1 - lr) + bw / scale_z * lr
        h = size_h * (1 - lr) + bh / scale_z * lr
        height, width = float(image.shape[0]), float(image.shape[1])
        cx, cy = min(max(cx, 0.0), width), min(max(cy, 0.0), height)  # np.clip, without its per-call cost
        w, h = min(max(w, 10.0), width), min(max(h, 10.0), height)
        self.center = np.array([cx, cy])
        self.size = np.array([w, h])
        return (cx - w / 2, cy - h / 2, w, h), float(score)

    def _rank(self, cls: np.ndarray, loc: np.ndarray, target: tuple[float, float, float]) -> int | None:
        """Index of the best candidate by `decode` + `size_penalty` + cosine window, rearranged for float32.

        None when the best penalised score is not finite (argmax returns the first NaN if there is one).
        """
        k = self.params.penalty_k
        target_w, target_h, target_ratio = target
        pad = (target_w + target_h) * 0.5
        inv_target = 1.0 / math.sqrt((target_w + pad) * (target_h + pad))
        c, d = cls.reshape(2, -1), loc.reshape(4, -1)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            w, h = self._family.rank_sizes(d, self._rank_constants)
            pad = (w + h) * 0.5
            scale = np.sqrt((w + pad) * (h + pad)) * inv_target
            ratio = h / w * target_ratio
            change = np.maximum(ratio, 1 / ratio) * np.maximum(scale, 1 / scale)
            # penalty * softmax score * (1 - window_influence), the weight folded into the exponent
            pscore = np.exp(self._log_weight_k - k * change) / (1 + np.exp(c[0] - c[1])) + self._window_term
        best = int(pscore.argmax())
        return best if math.isfinite(pscore[best]) else None

    def _winner(
        self, cls: np.ndarray, loc: np.ndarray, best: int, target: tuple[float, float, float]
    ) -> tuple[tuple[float, float, float, float], float, float] | None:
        """(box cx,cy,w,h in crop pixels, score, penalty) of candidate `best`, as `decode` and `size_penalty`
        compute them in float64, in Python scalars; None where they would meet a NaN or infinity."""
        l0, l1 = (float(v) for v in cls.reshape(2, -1)[:, best])
        d0, d1, d2, d3 = (float(v) for v in loc.reshape(4, -1)[:, best])
        target_w, target_h, target_ratio = target
        try:
            m = max(l0, l1)
            e0, e1 = math.exp(l0 - m), math.exp(l1 - m)
            score = e1 / (e0 + e1)
            box = self._family.decode_one((d0, d1, d2, d3), self._prior[best])
            w, h = box[2], box[3]
            pad, target_pad = (w + h) * 0.5, (target_w + target_h) * 0.5
            scale = math.sqrt((w + pad) * (h + pad)) / math.sqrt((target_w + target_pad) * (target_h + target_pad))
            ratio = target_ratio / (w / h)
            penalty = math.exp(-(max(ratio, 1 / ratio) * max(scale, 1 / scale) - 1) * self.params.penalty_k)
        except (ValueError, ZeroDivisionError, OverflowError):
            return None
        return box, score, penalty

    def _reference_choice(
        self, cls: np.ndarray, loc: np.ndarray, target: tuple[float, float, float]
    ) -> tuple[int, tuple[tuple[float, float, float, float], float, float]]:
        """The choice in float64 over all candidates, NaN penalties as 0: for outputs the fast path cannot take."""
        p = self.params
        score, boxes = decode(p, cls, loc, self._prior)
        penalty = size_penalty(boxes[2], boxes[3], target[0], target[1], p.penalty_k)
        best = int(np.argmax(penalty * score * (1 - p.window_influence) + self._window * p.window_influence))
        box = tuple(float(v) for v in boxes[:, best])
        return best, (box, float(score[best]), float(penalty[best]))  # type: ignore[return-value]
