"""Center-location-error evaluation of a replayed flight: per-frame CLE, OPE success/precision, Fig. 5 plot.

Input: ground truth boxes (N x 4, x,y,w,h, NaN = unlabeled) and, per tracker, its boxes on the same N
frames (NaN = no box / target lost). Metrics come from mlkd_model.metrics (pysot conventions: center =
x + (w - 1)/2, precision at 20 px, frames without ground truth excluded). Outputs, next to the bag:
  <bag>_cle.csv  one row per frame: frame, stamp, gt box, then per tracker x,y,w,h,cle
  <bag>_cle.png  CLE against frame number, one line per tracker, dashed threshold line at 20 px (MLKD Fig. 5)
  <bag>_cle.json success AUC, precision@20, normalized precision, frames scored/excluded per tracker
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlkd_model.boxes import labelled_mask
from mlkd_model.metrics import center_error, evaluate_sequence

log = logging.getLogger("mlkd.cle")
THRESHOLD_PX = 20.0


@dataclass
class TrackerCle:
    name: str
    boxes: np.ndarray  # N x 4
    cle: np.ndarray  # N, NaN where no ground truth or no box
    auc: float
    precision: float
    norm_precision: float
    n_frames: int
    n_excluded: int


def evaluate(gt: np.ndarray, results: Mapping[str, np.ndarray]) -> list[TrackerCle]:
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    out = []
    for name, boxes in results.items():
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) != len(gt):
            raise ValueError(f"{name}: {len(boxes)} boxes for {len(gt)} ground-truth frames")
        res = evaluate_sequence(boxes, gt)
        cle = center_error(boxes, gt)  # NaN-safe per frame: NaN rows give NaN (or inf for lost, below)
        cle = np.where(labelled_mask(gt), cle, np.nan)
        out.append(
            TrackerCle(name, boxes, cle, res.auc, res.precision, res.norm_precision, res.n_frames, res.n_excluded)
        )
    return out


def output_paths(bag: str | Path) -> dict[str, Path]:
    bag = Path(bag)
    stem = bag.parent / f"{bag.name}_cle"
    return {"csv": stem.with_suffix(".csv"), "png": stem.with_suffix(".png"), "json": stem.with_suffix(".json")}


def write_csv(path: Path, gt: np.ndarray, stamps: np.ndarray, trackers: list[TrackerCle]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        head = ["frame", "stamp", "gt_x", "gt_y", "gt_w", "gt_h"]
        for t in trackers:
            head += [f"{t.name}_{k}" for k in ("x", "y", "w", "h", "cle")]
        w.writerow(head)

        def fmt(v: float) -> str:
            return "" if not math.isfinite(v) else f"{v:.2f}"

        for i in range(len(gt)):
            row = [i + 1, f"{stamps[i] * 1e-9:.9f}", *(fmt(v) for v in gt[i])]
            for t in trackers:
                row += [fmt(v) for v in t.boxes[i]] + [fmt(t.cle[i])]
            w.writerow(row)


def plot(path: Path, trackers: list[TrackerCle], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a ground station run from a terminal / CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=120)
    top = THRESHOLD_PX * 3
    for t in trackers:
        frames = np.arange(1, len(t.cle) + 1)
        ax.plot(frames, t.cle, lw=1.4, label=f"{t.name} (P@20 {t.precision:.3f}, AUC {t.auc:.3f})")
        finite = t.cle[np.isfinite(t.cle)]
        if finite.size:
            top = max(top, float(np.percentile(finite, 98)) * 1.1)
    ax.axhline(THRESHOLD_PX, color="k", ls="--", lw=1.0, label=f"threshold {THRESHOLD_PX:.0f} px")
    ax.set_xlabel("frame")
    ax.set_ylabel("center location error (px)")
    ax.set_ylim(0, top)
    ax.set_xlim(1, max(len(t.cle) for t in trackers) if trackers else 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(bag: str | Path, gt: np.ndarray, stamps: np.ndarray, results: Mapping[str, np.ndarray]) -> dict:
    """Evaluate, then write CSV, PNG and JSON next to the bag; returns the JSON summary."""
    trackers = evaluate(gt, results)
    paths = output_paths(bag)
    write_csv(paths["csv"], np.asarray(gt, dtype=np.float64).reshape(-1, 4), np.asarray(stamps), trackers)
    plot(paths["png"], trackers, f"CLE on {Path(bag).name}")
    summary = {
        t.name: {
            "success_auc": t.auc,
            "precision_20px": t.precision,
            "norm_precision": t.norm_precision,
            "mean_cle_px": float(np.nanmean(t.cle)) if np.isfinite(t.cle).any() else None,
            "frames_scored": t.n_frames,
            "frames_excluded": t.n_excluded,
        }
        for t in trackers
    }
    paths["json"].write_text(json.dumps(summary, indent=2) + "\n")
    for name, s in summary.items():
        mean = "n/a" if s["mean_cle_px"] is None else f"{s['mean_cle_px']:.2f}"
        log.info(
            "%s: success AUC %.3f, precision@20 %.3f, mean CLE %s px (%d frames, %d without ground truth)",
            name,
            s["success_auc"],
            s["precision_20px"],
            mean,
            s["frames_scored"],
            s["frames_excluded"],
        )
    log.info("wrote %s, %s, %s", paths["csv"], paths["png"], paths["json"])
    return summary


def boxes_from_cle_log(csv_path: str | Path, stamps_ns: np.ndarray, tol_ns: int = 500_000) -> np.ndarray:
    """A cle_logger CSV (stamp,x,y,w,h,...) -> N x 4 boxes aligned to the bag's frame stamps (NaN if none).

    The logger writes the stamp as float seconds, which keeps only ~0.1 us of a 2026 epoch time: match each
    line to the nearest frame stamp within `tol_ns` instead of exactly.
    """
    stamps = np.asarray(stamps_ns, dtype=np.int64)
    order = np.argsort(stamps)
    sorted_stamps = stamps[order]
    boxes = np.full((len(stamps), 4), np.nan)
    with Path(csv_path).open() as f:
        for row in csv.DictReader(f):
            if not row["x"]:
                continue  # target lost on that frame: stays NaN
            sec, _, frac = row["stamp"].partition(".")
            t = int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
            j = int(np.clip(np.searchsorted(sorted_stamps, t), 1, len(sorted_stamps) - 1)) if len(stamps) > 1 else 0
            best = min((j - 1, j), key=lambda k: abs(int(sorted_stamps[k]) - t)) if len(stamps) > 1 else 0
            if abs(int(sorted_stamps[best]) - t) <= tol_ns:
                boxes[order[best]] = [float(row[k]) for k in ("x", "y", "w", "h")]
    return boxes
