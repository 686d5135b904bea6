"""One-pass evaluation (OPE): run trackers over a dataset, write pysot-toolkit result files, score them.

Layout written under the output folder DIR:
    results/<dataset>/<tracker>/<sequence>.txt         one x,y,w,h line per frame (pysot-toolkit layout)
    results/<dataset>/<tracker>/times/<sequence>_time.txt   seconds per frame (got10k layout; gives fps)
    summary.json   per tracker: success AUC, precision@20, normalized precision@0.2, fps, frame counts,
                   per-sequence values, curves and per-attribute results
    config.json    the command's arguments and the git revision
The first frame is initialised with the ground truth and its line is the ground-truth box, as pysot does.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mlkd_model import metrics as M
from mlkd_model.datasets import (
    DatasetError,
    Sequence,
    dataset_name,
    ground_truth_attributes,
    load_dataset,
    read_boxes,
    shared_dir,
)
from mlkd_model.provenance import git_revision
from mlkd_model.track_frames import Tracker, track_frames
from mlkd_training.opencv_nano import OpenCVNano
from mlkd_training.protocol import cached_night_frames, compare, comparison_markdown

log = logging.getLogger(__name__)

BUILTIN = ("default", "teacher", "nanotrack", "opencv_nano")


@dataclass(frozen=True)
class TrackerSpec:
    """`NAME[=MODEL]` from the command line. NAME picks the kind when it is a built-in, else MODEL is a model dir."""

    name: str
    model: str | None = None

    @classmethod
    def parse(cls, text: str) -> TrackerSpec:
        name, _, model = text.partition("=")
        name = name.strip()
        kind, plus, option = name.partition("+")
        if not name or "/" in name:
            raise ValueError(f"bad tracker {text!r}: expected NAME or NAME=MODEL")
        if plus and option != "update":
            raise ValueError(f"bad tracker {text!r}: the only option is NAME+update (template update)")
        if kind not in BUILTIN and not model:
            raise ValueError(f"tracker {name!r} is not one of {BUILTIN}: give its model directory as {name}=DIR")
        return cls(name, model or None)

    @property
    def kind(self) -> str:
        """The tracker kind: the name without its `+update` option."""
        return self.name.partition("+")[0]

    @property
    def template_update(self) -> bool:
        return self.name.endswith("+update")


def make_tracker(spec: TrackerSpec) -> Tracker:
    """Build the tracker a spec names (see `mlkd eval --help`); NAME+update adds the template update."""
    tracker = _make_plain_tracker(spec)
    if spec.template_update:
        from mlkd_model.template_update import TemplateUpdatingTracker

        if spec.kind == "opencv_nano":
            raise ValueError("+update needs one of this project's trackers, not opencv_nano")
        return TemplateUpdatingTracker(tracker)  # type: ignore[arg-type]
    return tracker


def _make_plain_tracker(spec: TrackerSpec) -> Tracker:
    from mlkd_model.load import load_tracker

    if spec.kind == "opencv_nano":
        if spec.model:
            parts = [Path(p) for p in spec.model.split(",")]
            if len(parts) != 2:
                raise ValueError(f"opencv_nano={spec.model}: expected BACKBONE.onnx,HEAD.onnx")
            backbone, head = parts
        else:
            weights = Path(shared_dir()) / "weights" / "nanotrack_v2"  # $MLKD_SHARED, else shared/ beside
            backbone = weights / "nanotrack_backbone_sim.onnx"
            head = weights / "nanotrack_head_sim.onnx"
        return OpenCVNano(backbone, head)
    if spec.kind == "teacher":
        return load_tracker(spec.model, backend="onnx", enhance=True)
    if spec.kind == "nanotrack":  # the torch network itself (the model dir's tracker.pth), a check on the export
        return load_tracker(spec.model, backend="torch")
    return load_tracker(spec.model, backend="onnx")


# --------------------------------------------------------------------------- running


def first_valid(boxes: np.ndarray) -> int:
    valid = np.flatnonzero(M.valid_mask(boxes))
    if len(valid) == 0:
        raise DatasetError("sequence has no valid ground-truth box to initialise on")
    return int(valid[0])


def frame_source(seq: Sequence, darken_seed: int | None) -> Callable[[int], np.ndarray]:
    """Frame i of seq, darkened (per-sequence parameters, per-frame noise) when a seed is given: from the
    on-disk cache of darkened frames (training/protocol.py), filled on first use."""
    if darken_seed is None:
        return seq.image
    return cached_night_frames(seq, darken_seed)


def run_sequence(
    tracker: Tracker, seq: Sequence, darken_seed: int | None = None, progress: Callable[[], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Track one sequence; returns (N x 4 boxes, N seconds per frame). Frames before the first labelled one are NaN."""
    frame = frame_source(seq, darken_seed)
    start = first_valid(seq.boxes)
    boxes = np.full((len(seq), 4), np.nan)
    times = np.zeros(len(seq))
    frames = (frame(i) if i >= start else None for i in range(len(seq)))
    for step in track_frames(tracker, frames, tuple(seq.boxes[start]), start):
        boxes[step.index], times[step.index] = step.box, step.seconds
        if progress is not None and step.index >= start:
            progress()
    return boxes, times


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)  # a killed run leaves no half-written file that would count as finished


def write_boxes(path: Path, boxes: np.ndarray) -> None:
    _write_atomic(path, "".join(",".join(f"{v:.4f}" for v in row) + "\n" for row in boxes))


def is_finished(path: Path, n_frames: int) -> bool:
    try:
        return len(read_boxes(path)) == n_frames
    except (DatasetError, OSError):
        return False


def run_tracker(
    spec: TrackerSpec, sequences: list[Sequence], tracker_dir: Path, darken_seed: int | None = None
) -> list[str]:
    """Run spec over every unfinished sequence, writing results as each finishes; returns the names it ran."""
    todo = [s for s in sequences if not is_finished(tracker_dir / f"{s.name}.txt", len(s))]
    if len(todo) < len(sequences):
        log.info("%s: %d of %d sequences already done, skipped", spec.name, len(sequences) - len(todo), len(sequences))
    if not todo:
        return []
    tracker = make_tracker(spec)
    with tqdm(total=sum(len(s) for s in todo), desc=spec.name, unit="frame", leave=False) as bar:
        for seq in todo:
            bar.set_postfix_str(seq.name)
            boxes, times = run_sequence(tracker, seq, darken_seed, lambda: bar.update(1))
            _write_atomic(tracker_dir / "times" / f"{seq.name}_time.txt", "".join(f"{t:.6f}\n" for t in times))
            write_boxes(tracker_dir / f"{seq.name}.txt", boxes)
    return [s.name for s in todo]


# --------------------------------------------------------------------------- scoring


def read_times(tracker_dir: Path, name: str) -> np.ndarray | None:
    path = tracker_dir / "times" / f"{name}_time.txt"
    if not path.is_file():
        return None
    times = np.loadtxt(path, ndmin=1)
    return times[times > 0]


def _fps(times: Iterable[np.ndarray | None]) -> float | None:
    known = [t for t in times if t is not None and len(t)]
    return float(sum(len(t) for t in known) / sum(t.sum() for t in known)) if known else None


def _scores(s: M.Summary | M.SequenceResult) -> dict[str, float]:
    return {"success_auc": s.auc, "precision_20": s.precision, "norm_precision_20": s.norm_precision}


def sequence_attributes(sequences: list[Sequence]) -> tuple[dict[str, dict[str, np.ndarray]], str]:
    """The dataset's attributes, or where it ships none, those computable from its ground truth."""
    if any(s.attributes for s in sequences):
        return {s.name: s.attributes for s in sequences}, "dataset"
    return {s.name: ground_truth_attributes(s.boxes) for s in sequences}, "ground truth (UAV123 definitions)"


def score_tracker(tracker_dir: Path, sequences: list[Sequence], attributes: dict | None = None) -> dict:
    """Score one tracker's result folder against the dataset; missing result files are reported, not fatal."""
    results: dict[str, M.SequenceResult] = {}
    per_seq: dict[str, dict] = {}
    all_times = []
    missing = []
    for seq in sequences:
        path = tracker_dir / f"{seq.name}.txt"
        if not path.is_file():
            missing.append(seq.name)
            continue
        pred = read_boxes(path)
        if len(pred) != len(seq):
            raise DatasetError(f"{path} has {len(pred)} boxes but sequence {seq.name} has {len(seq)} frames")
        r = M.evaluate_sequence(pred, seq.boxes)
        results[seq.name] = r
        times = read_times(tracker_dir, seq.name)
        all_times.append(times)
        per_seq[seq.name] = {**_scores(r), "fps": _fps([times]), "frames": r.n_frames, "excluded_frames": r.n_excluded}
    if missing:
        log.warning("%s: no results for %d sequence(s): %s", tracker_dir, len(missing), ", ".join(missing))
    summary = M.summarize(results)
    attrs = M.attribute_summaries(results, attributes if attributes is not None else sequence_attributes(sequences)[0])
    return {
        **_scores(summary),
        "fps": _fps(all_times),
        "sequences_scored": summary.n_sequences,
        "frames": summary.n_frames,
        "excluded_frames": summary.n_excluded,
        "missing_sequences": missing,
        "curves": {
            "success": summary.success.tolist(),
            "precision": summary.precision_curve.tolist(),
            "norm_precision": summary.norm_precision_curve.tolist(),
        },
        "attributes": {a: {**_scores(s), "sequences": s.n_sequences} for a, s in attrs.items()},
        "sequences": per_seq,
    }


def score_results(
    results_dir: Path, sequences: list[Sequence], trackers: Iterable[str] | None = None
) -> dict[str, dict]:
    """Score every tracker folder under results/<dataset>/ (or the named ones)."""
    names = list(trackers) if trackers is not None else sorted(d.name for d in results_dir.iterdir() if d.is_dir())
    attributes, _ = sequence_attributes(sequences)
    return {name: score_tracker(results_dir / name, sequences, attributes) for name in names}


# --------------------------------------------------------------------------- the whole run


def results_name(data: Path, darken_seed: int | None) -> str:
    """Dataset folder name under results/; darkened runs get their own (`val_dark1`) so day and night never mix."""
    name = dataset_name(data)
    return name if darken_seed is None else f"{name}_dark{darken_seed}"


def evaluate(
    data: Path, specs: list[TrackerSpec], out: Path, darken_seed: int | None = None, config: dict | None = None
) -> dict:
    """Run and score every tracker; writes results, summary.json and config.json under out; returns the summary."""
    sequences = load_dataset(data)
    dataset = results_name(data, darken_seed)
    results_dir = out / "results" / dataset
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(
        out / "config.json",
        json.dumps(
            {
                "args": config or {},
                "data": str(Path(data).resolve()),
                "dataset": dataset,
                "darken_seed": darken_seed,
                "trackers": [s.name + (f"={s.model}" if s.model else "") for s in specs],
                "git_revision": git_revision(),
                "python": platform.python_version(),
                "host": platform.node(),
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        ),
    )
    for spec in specs:
        run_tracker(spec, sequences, results_dir / spec.name, darken_seed)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if summary.get("dataset") != dataset:
        summary = {}
    trackers = dict(summary.get("trackers", {}))
    trackers.update(score_results(results_dir, sequences, [s.name for s in specs]))
    summary = {
        "dataset": dataset,
        "data": str(Path(data).resolve()),
        "darken_seed": darken_seed,
        "sequences": len(sequences),
        "attribute_source": sequence_attributes(sequences)[1],
        "thresholds": {
            "success": M.SUCCESS_THRESHOLDS.tolist(),
            "precision": M.PRECISION_THRESHOLDS.tolist(),
            "norm_precision": M.NORM_PRECISION_THRESHOLDS.tolist(),
        },
        "trackers": trackers,
    }
    _write_atomic(summary_path, json.dumps(summary, indent=1))
    return summary


def evaluate_protocol(
    data: Path,
    specs: list[TrackerSpec],
    out: Path,
    seeds: list[int],
    clean: bool = True,
    labels: dict[str, str] | None = None,
    config: dict | None = None,
    night_only: tuple[str, ...] = (),
) -> dict:
    """The validation protocol: evaluate on every darkening seed (out/dark<S>/) and on the clean frames
    (out/clean/), then compare the trackers with bootstrap CIs; writes out/comparison.{json,md}.
    The first spec is the baseline of the paired differences; trackers named in night_only skip the
    clean frames (the DarkLighter teacher: an enhancer for night, 100x slower)."""
    night = [evaluate(data, specs, out / f"dark{seed}", seed, config) for seed in seeds]
    day_specs = [s for s in specs if s.name not in night_only]
    day = evaluate(data, day_specs, out / "clean", None, config) if clean else None
    names = [s.name for s in specs]
    rows = compare(night, day, names, names[0])
    table = comparison_markdown(rows, labels or {}, names[0], seeds)
    result = {
        "data": str(data),
        "seeds": seeds,
        "baseline": names[0],
        "trackers": rows,
        "sequences": night[0]["sequences"],
    }
    _write_atomic(out / "comparison.json", json.dumps(result, indent=1))
    _write_atomic(out / "comparison.md", table)
    return result
