"""One-pass evaluation (OPE) metrics as pysot-toolkit defines them; numpy only (runs on the ground station).

Boxes are N x 4 x,y,w,h (top-left, pixels). Conventions, and where they differ from pysot-toolkit:
- center = x + (w - 1) / 2 (pysot and got10k alike);
- IoU = intersection / union of the continuous boxes (no +1 on widths, as pysot's overlap_ratio), clipped
  to [0, 1]; got10k adds machine epsilon to the union, a relative difference of ~1e-16;
- success(t) = fraction of frames with IoU > t, t in linspace(0, 1, 21); AUC = mean of the curve
  (pysot builds its thresholds with arange(0, 1.05, 0.05), equal up to rounding in the last bit);
- precision(t) = fraction with center distance <= t px, t = 0..50; reported at 20 px;
- normalized precision: distance of the centers divided by the ground truth's w and h, t in
  linspace(0, 0.5, 51), reported at 0.2;
- frames whose ground truth is missing (NaN or a zero/negative size) are excluded and counted. pysot
  instead keeps them in the denominator (failures for success, *successes* for precision, a quirk of its
  -1 placeholder distance); excluding them is the documented choice (docs/evaluation.md);
- a predicted row of NaN (tracker gave no box) counts as a failure at every threshold;
- dataset scores are means over sequences of the per-sequence curves (pysot and got10k alike).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mlkd_model.boxes import labelled_mask

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS = np.arange(0, 51, 1).astype(np.float64)
NORM_PRECISION_THRESHOLDS = np.linspace(0.0, 0.5, 51)
PRECISION_AT = 20  # index of 20 px
NORM_PRECISION_AT = 20  # index of 0.2


def _as_boxes(boxes: np.ndarray | list) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 4:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must be N x 4 (x, y, w, h), got shape {arr.shape}")
    return arr


def valid_mask(gt: np.ndarray) -> np.ndarray:
    """Frames with usable ground truth: all finite and a positive width and height (labelled)."""
    return labelled_mask(_as_boxes(gt))


def centers(boxes: np.ndarray) -> np.ndarray:
    """N x 2 box centers, x + (w - 1) / 2 (the pysot / got10k convention, pixel centres at integers)."""
    boxes = _as_boxes(boxes)
    return boxes[:, :2] + (boxes[:, 2:] - 1.0) / 2.0


def iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame intersection over union of two N x 4 box arrays (NaN where either box is NaN)."""
    a, b = _as_boxes(pred), _as_boxes(gt)
    _check_same(a, b)
    w = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.maximum(w, 0.0) * np.maximum(h, 0.0)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    out = np.clip(out, 0.0, 1.0)
    out[~(np.all(np.isfinite(a), axis=1) & np.all(np.isfinite(b), axis=1))] = np.nan
    return out


def center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame center-location error (CLE) in pixels: Euclidean distance of the box centers."""
    a, b = _as_boxes(pred), _as_boxes(gt)
    _check_same(a, b)
    return np.hypot(*(centers(a) - centers(b)).T)


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame center distance with x divided by the ground truth's w and y by its h (pysot's norm. precision)."""
    a, b = _as_boxes(pred), _as_boxes(gt)
    _check_same(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.hypot(*((centers(a) - centers(b)) / b[:, 2:]).T)


def _check_same(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"predicted and ground-truth boxes differ in count: {len(a)} vs {len(b)}")


def _fraction(values: np.ndarray, thresholds: np.ndarray, above: bool) -> np.ndarray:
    if len(values) == 0:
        return np.full(len(thresholds), np.nan)
    with np.errstate(invalid="ignore"):  # NaN compares False: a missing prediction fails every threshold
        hits = values[:, None] > thresholds[None, :] if above else values[:, None] <= thresholds[None, :]
    return hits.mean(axis=0)


@dataclass
class _Curves:
    """The three OPE curves and the numbers reported from them."""

    success: np.ndarray
    precision_curve: np.ndarray
    norm_precision_curve: np.ndarray

    @property
    def auc(self) -> float:
        return float(np.mean(self.success))

    @property
    def precision(self) -> float:
        return float(self.precision_curve[PRECISION_AT])

    @property
    def norm_precision(self) -> float:
        return float(self.norm_precision_curve[NORM_PRECISION_AT])


@dataclass
class SequenceResult(_Curves):
    """OPE curves of one sequence; n_frames counts the frames scored, n_excluded those without ground truth."""

    n_frames: int
    n_excluded: int


def evaluate_sequence(pred: np.ndarray, gt: np.ndarray) -> SequenceResult:
    """Score one sequence's predicted boxes against its ground truth (frames without ground truth excluded)."""
    a, b = _as_boxes(pred), _as_boxes(gt)
    _check_same(a, b)
    keep = valid_mask(b)
    a, b = a[keep], b[keep]
    return SequenceResult(
        success=_fraction(iou(a, b), SUCCESS_THRESHOLDS, above=True),
        precision_curve=_fraction(center_error(a, b), PRECISION_THRESHOLDS, above=False),
        norm_precision_curve=_fraction(normalized_center_error(a, b), NORM_PRECISION_THRESHOLDS, above=False),
        n_frames=int(keep.sum()),
        n_excluded=int((~keep).sum()),
    )


@dataclass
class Summary(_Curves):
    """Scores over a set of sequences: means of the per-sequence curves (sequences with no scored frame skipped)."""

    n_sequences: int
    n_frames: int
    n_excluded: int


def summarize(results: Mapping[str, SequenceResult] | list[SequenceResult]) -> Summary:
    """Average per-sequence curves (each sequence weighs the same, as in pysot-toolkit and got10k)."""
    items = list(results.values()) if isinstance(results, Mapping) else list(results)
    scored = [r for r in items if r.n_frames > 0]

    def mean(curves: list[np.ndarray], size: int) -> np.ndarray:
        return np.mean(curves, axis=0) if curves else np.full(size, np.nan)

    return Summary(
        success=mean([r.success for r in scored], len(SUCCESS_THRESHOLDS)),
        precision_curve=mean([r.precision_curve for r in scored], len(PRECISION_THRESHOLDS)),
        norm_precision_curve=mean([r.norm_precision_curve for r in scored], len(NORM_PRECISION_THRESHOLDS)),
        n_sequences=len(scored),
        n_frames=sum(r.n_frames for r in items),
        n_excluded=sum(r.n_excluded for r in items),
    )


def attribute_summaries(
    results: Mapping[str, SequenceResult], attributes: Mapping[str, Mapping[str, np.ndarray]]
) -> dict[str, Summary]:
    """Per-attribute summaries: a sequence counts for an attribute when any of its frames carries it (pysot style).

    attributes maps sequence name -> {attribute: per-frame bool array (or a scalar flag)}.
    """
    names = sorted({a for flags in attributes.values() for a in flags})
    out: dict[str, Summary] = {}
    for name in names:
        members = {s: r for s, r in results.items() if np.any(attributes.get(s, {}).get(name, False))}
        if members:
            out[name] = summarize(members)
    return out


ON_TARGET_IOU = 0.3  # a frame whose box overlaps the ground truth this much is on the target
OFF_TARGET_IOU = 0.1  # and below this it is off the target (between the two: neither, not counted)


def honesty(pred: np.ndarray, gt: np.ndarray, states: list[str] | np.ndarray) -> dict[str, float | int]:
    """How truthfully a tracker's states describe where its boxes are, frame by frame.

    Off-target frames reported not `tracking` (caught) and on-target frames reported not `tracking` (false
    alarms); an off-target episode is a run of off-target frames, and its delay is the number of its frames
    before the state first leaves `tracking` (the whole episode when it never does: `missed`). Frames
    without ground truth are not counted and end an episode.
    """
    overlap = iou(pred, gt)
    states = np.asarray(states, dtype=object)
    if len(states) != len(overlap):
        raise ValueError(f"{len(states)} states for {len(overlap)} boxes")
    on, off = overlap >= ON_TARGET_IOU, overlap < OFF_TARGET_IOU  # NaN is neither
    flagged = states != "tracking"
    delays, missed, start = [], 0, None
    for i in range(len(overlap) + 1):
        if i < len(overlap) and off[i]:
            start = i if start is None else start
            continue
        if start is not None:
            hits = np.flatnonzero(flagged[start:i])
            delays.append(int(hits[0]) if len(hits) else i - start)
            missed += not len(hits)
            start = None
    return {
        "on_frames": int(on.sum()),
        "off_frames": int(off.sum()),
        "off_caught": int((off & flagged).sum()),
        "false_alarms": int((on & flagged).sum()),
        "episodes": len(delays),
        "missed_episodes": missed,
        "median_delay": float(np.median(delays)) if delays else float("nan"),
    }
