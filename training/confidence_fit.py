"""Fit the tracker's confidence on the training split and measure it on the validation protocol.

    python -m mlkd_training.confidence_fit collect --data training/splits/night_v2.yaml#train --seeds 11 12 \
        --out runs/conf/train.npz
    python -m mlkd_training.confidence_fit collect --data training/splits/night_v2.yaml#val --seeds 1 2 3 \
        --out runs/conf/val.npz
    python -m mlkd_training.confidence_fit fit runs/conf/train.npz --choose-on runs/conf/val.npz \
        --out mlkd_model/confidence_default.json
    python -m mlkd_training.confidence_fit report runs/conf/val.npz --model mlkd_model/confidence_default.json

`collect` runs the plain loop (no re-detection, the checks against the init frame on every frame) over
every sequence, darkened with each seed and clean, and keeps per frame the cues, the score and the IoU
with the ground truth; with --judged it runs the shipped tracker and keeps its live state and
re-detections instead. `fit` is a logistic regression of on-target (IoU >= 0.3) against off-target
(IoU < 0.1 and the box beside the target) training frames; then the smoothing and the state thresholds
are chosen so that at most 3 % of on-target frames are reported not `tracking` in the night and the
clean part of the training *and* the validation frames (thresholds chosen on the 6 validation sequences
alone flagged 28-45 % of the training split's on-target frames). `report` prints, night and clean, the
AUROC of the raw score and of the confidence and the share of off-target frames not `tracking`.
The fixtures are never used here.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mlkd_model.confidence import FEATURES, ConfidenceModel, read_judgement, write_judgement
from mlkd_model.datasets import load_dataset
from mlkd_model.honest_tracker import HonestTracker
from mlkd_model.metrics import SUCCESS_THRESHOLDS, iou
from mlkd_model.target_state import STATES, StateRule, TargetState
from mlkd_training.protocol import bootstrap_mean_ci

log = logging.getLogger(__name__)

ON_IOU, OFF_IOU = 0.3, 0.1
KEEP_ON = 0.97  # share of on-target frames that must stay `tracking`


def collect(
    data: str, seeds: list[int], clean: bool, model_dir: str | None = None, judged: bool = False, redetect: bool = True
) -> dict[str, np.ndarray]:
    """Per frame: the cues, score, IoU and, with `judged`, the live confidence, state and re-detections of the
    tracker as load_tracker builds it (re-detection on or off); without it the plain loop with the checks
    against the init frame on every frame (what the fit needs; `check_hold` replays the shipped cadence)."""
    from mlkd_model.load import load_tracker
    from mlkd_training.evaluate import first_valid, frame_source

    tracker = load_tracker(model_dir)
    if judged:
        tracker.redetection = replace(tracker.redetection, enabled=redetect)
    else:
        tracker = HonestTracker(tracker.backend, check_every=1)
    keys = (*FEATURES, "score", "iou", "far", "seq", "seed", "frame", "confidence", "state", "reacquired")
    rows: dict[str, list] = {k: [] for k in keys}
    sequences = load_dataset(data)
    for seed in [*seeds, *([None] if clean else [])]:
        for s, seq in enumerate(tqdm(sequences, desc=f"seed {seed}", unit="seq")):
            frame = frame_source(seq, seed)
            start = first_valid(seq.boxes)
            tracker.init(frame(start), tuple(seq.boxes[start]))
            for i in range(start + 1, len(seq)):
                before = tracker.reacquired
                box, score = tracker.track(frame(i))
                for k in FEATURES:
                    rows[k].append(tracker.confidence.features[k])
                rows["score"].append(score)
                rows["iou"].append(float(iou(np.array([box]), seq.boxes[i : i + 1])[0]))
                rows["far"].append(far_from_target(box, seq.boxes[i]))
                rows["seq"].append(s)
                rows["seed"].append(-1 if seed is None else seed)
                rows["frame"].append(i)
                rows["confidence"].append(tracker.status.confidence)
                rows["state"].append(STATES.index(tracker.status.state))
                rows["reacquired"].append(tracker.reacquired - before)
    return {k: np.asarray(v, np.float64) for k, v in rows.items()}


def far_from_target(box: tuple[float, ...], gt: np.ndarray) -> float:
    """Centre distance over the target's size (its larger side, at least the loop's 10 px minimum box): above
    1 the box is beside the target, not on it. IoU alone calls a box on a 7x6 px target off it (NaN: no truth)."""
    bx, by = box[0] + box[2] / 2, box[1] + box[3] / 2
    gx, gy = gt[0] + gt[2] / 2, gt[1] + gt[3] / 2
    return float(math.hypot(bx - gx, by - gy) / max(gt[2], gt[3], 10.0))


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a random on-target frame scores above a random off-target one), ties half."""
    values = np.concatenate([positive, negative])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values))
    sorted_v = values[order]
    # average ranks of ties
    _, first, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0
    ranks[order] = np.repeat(avg, counts) + 1
    n_p, n_n = len(positive), len(negative)
    if not n_p or not n_n:
        return math.nan
    return float((ranks[:n_p].sum() - n_p * (n_p + 1) / 2) / (n_p * n_n))


def feature_matrix(d: dict[str, np.ndarray], model: ConfidenceModel) -> np.ndarray:
    cols = []
    for name in model.weights:
        v = d[name].copy()
        v[~np.isfinite(v)] = model.mean.get(name, 0.0)
        cols.append((v - model.mean.get(name, 0.0)) / model.scale.get(name, 1.0))
    return np.stack(cols, axis=1)


def fit_logistic(d: dict[str, np.ndarray], features: tuple[str, ...], l2: float = 1e-3) -> ConfidenceModel:
    # off-target for the fit: no overlap *and* beside the target (tiny targets have low IoU when tracked well)
    on, off = d["iou"] >= ON_IOU, (d["iou"] < OFF_IOU) & (d["far"] > 1.0)
    use = on | off
    mean = {f: float(np.nanmean(d[f][use])) for f in features}
    scale = {f: float(np.nanstd(d[f][use])) or 1.0 for f in features}
    model = ConfidenceModel(weights={f: 0.0 for f in features}, mean=mean, scale=scale)
    x = feature_matrix(d, model)[use]
    y = on[use].astype(np.float64)
    # classes weighted equally: off-target frames are few, and missing them is what matters
    sw = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    xb = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    w = np.zeros(xb.shape[1])
    for _ in range(50):  # Newton's method
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -50, 50)))
        g = xb.T @ (sw * (p - y)) / len(y) + l2 * np.r_[w[:-1], 0]
        h = (xb * (sw * p * (1 - p))[:, None]).T @ xb / len(y) + l2 * np.eye(len(w))
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return replace(model, weights=dict(zip(features, map(float, w[:-1]), strict=True)), bias=float(w[-1]))


def replay_confidence(d: dict[str, np.ndarray], model: ConfidenceModel) -> np.ndarray:
    """The smoothed confidence of every recorded frame, restarted at every sequence."""
    z = feature_matrix(d, model) @ np.array(list(model.weights.values())) + model.bias
    inst = 1 / (1 + np.exp(-np.clip(z, -50, 50)))
    conf = np.empty_like(inst)
    key = d["seq"] * 1000 + d["seed"]
    a = model.smoothing
    for i in range(len(inst)):
        restart = i == 0 or key[i] != key[i - 1]
        conf[i] = inst[i] if restart else a * conf[i - 1] + (1 - a) * inst[i]
    return conf


def run_states(d: dict[str, np.ndarray], model: ConfidenceModel, rule: StateRule) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed confidence and state of every frame, replayed sequence by sequence."""
    conf = replay_confidence(d, model)
    return conf, replay_states(d, conf, rule)


def replay_states(d: dict[str, np.ndarray], conf: np.ndarray, rule: StateRule) -> np.ndarray:
    """The state machine over recorded confidences, restarted at every sequence."""
    key = d["seq"] * 1000 + d["seed"]
    states = np.empty(len(conf), dtype=object)
    machine = TargetState(rule)
    for i in range(len(conf)):
        if i == 0 or key[i] != key[i - 1]:
            machine.start()
        states[i] = machine.update(conf[i])
    return states


def flag_rates(d: dict[str, np.ndarray], states: np.ndarray, strict: bool = False) -> tuple[float, float]:
    """(share of off-target frames not `tracking`, share of on-target frames not `tracking`); `strict`: off
    target means beside it too (the fit's labels)."""
    on, off = d["iou"] >= ON_IOU, d["iou"] < OFF_IOU
    if strict:
        off &= d["far"] > 1.0
    flagged = states != "tracking"
    return float(flagged[off].mean()), float(flagged[on].mean())


def choose_rule(datasets: list[dict[str, np.ndarray]], model: ConfidenceModel) -> tuple[ConfidenceModel, StateRule]:
    """The smoothing and thresholds that catch the most off-target frames (the mean share over the night
    and clean parts of every dataset) with at most 3 % of on-target frames reported not `tracking` in each
    part: a rule must hold on every split it is chosen on, not on their pooled frames."""
    parts = [(d, m) for d in datasets for m in (d["seed"] >= 0, d["seed"] < 0) if m.any()]
    best = (-1.0, model, StateRule())
    for smoothing in (0.0, 0.5, 0.8, 0.9, 0.95):
        m = replace(model, smoothing=smoothing)
        replayed = {id(d): replay_confidence(d, m) for d in datasets}
        for t in np.linspace(0.05, 0.9, 35):
            for gap in (0.05, 0.1, 0.2):
                rule = StateRule(
                    uncertain_below=float(t), tracking_above=float(min(t + gap, 1.0)), lost_below=float(t / 4)
                )
                rates = []
                for d, mask in parts:
                    states = replay_states(d, replayed[id(d)], rule)
                    rates.append(flag_rates({k: v[mask] for k, v in d.items()}, states[mask], strict=True))
                caught = float(np.mean([c for c, _ in rates]))
                if all(false <= 1 - KEEP_ON for _, false in rates) and caught > best[0]:
                    best = (caught, m, rule)
    return best[1], best[2]


def report(d: dict[str, np.ndarray], model: ConfidenceModel, rule: StateRule) -> dict:
    on, off = d["iou"] >= ON_IOU, d["iou"] < OFF_IOU
    conf, states = run_states(d, model, rule)
    out = {}
    for part, mask in (("night", d["seed"] >= 0), ("clean", d["seed"] < 0)):
        if not mask.any():
            continue
        sub = {k: v[mask] for k, v in d.items()}
        caught, false = flag_rates(sub, states[mask])
        caught_beside, _ = flag_rates(sub, states[mask], strict=True)
        # the raw score with the best single threshold that keeps 97 % of on-target frames
        s_on, s_off = d["score"][mask & on], d["score"][mask & off]
        t = np.quantile(s_on, 1 - KEEP_ON) if len(s_on) else math.nan
        out[part] = {
            "frames": int(mask.sum()),
            "on": int((mask & on).sum()),
            "off": int((mask & off).sum()),
            "auroc_score": auroc(s_on, s_off),
            "auroc_confidence": auroc(conf[mask & on], conf[mask & off]),
            "score_threshold_caught": float((s_off < t).mean()) if len(s_off) else math.nan,
            "state_caught": caught,
            "state_caught_beside": caught_beside,
            "state_false": false,
        }
    return out


def success_auc(overlap: np.ndarray) -> float:
    """One-pass success AUC of a sequence from its per-frame IoU (unlabelled frames left out)."""
    v = overlap[np.isfinite(overlap)]
    return float(np.mean([(v > t).mean() for t in SUCCESS_THRESHOLDS])) if len(v) else math.nan


def live_report(d: dict[str, np.ndarray], base: dict[str, np.ndarray] | None = None) -> dict:
    """What a judged run (collect --judged) reported: night and clean, the share of off-target frames not
    `tracking`, of on-target frames not `tracking`, the re-acquisitions (correct: IoU >= 0.3 on the frame
    taken, wrong: < 0.1) and the success AUC; with `base` (the same data without an option) the paired
    difference in success with a bootstrap CI over sequences."""
    on, off = d["iou"] >= ON_IOU, d["iou"] < OFF_IOU
    flagged = d["state"] != STATES.index("tracking")
    taken = d["reacquired"] > 0
    out = {}
    for part, mask in (("night", d["seed"] >= 0), ("clean", d["seed"] < 0)):
        if not mask.any():
            continue
        seqs = np.unique(d["seq"][mask])

        def per_seq(data: dict[str, np.ndarray], part: str = part, seqs: np.ndarray = seqs) -> np.ndarray:
            m = data["seed"] >= 0 if part == "night" else data["seed"] < 0
            values = []
            for s in seqs:  # each sequence's success averaged over its darkening seeds
                keys = np.unique(data["seed"][m & (data["seq"] == s)])
                values.append(
                    np.mean([success_auc(data["iou"][m & (data["seq"] == s) & (data["seed"] == k)]) for k in keys])
                )
            return np.array(values)

        auc = per_seq(d)
        row = {
            "off_caught": float(flagged[mask & off].mean()),
            "on_flagged": float(flagged[mask & on].mean()),
            "reacquired_correct": int((taken & mask & on).sum()),
            "reacquired_wrong": int((taken & mask & off).sum()),
            "success": bootstrap_mean_ci(auc),
        }
        if base is not None:
            row["success_delta"] = bootstrap_mean_ci(auc - per_seq(base))
        out[part] = row
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(prog="python -m mlkd_training.confidence_fit", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--data", required=True)
    c.add_argument("--seeds", type=int, nargs="*", default=[])
    c.add_argument("--no-clean", action="store_true")
    c.add_argument("--model", default=None)
    c.add_argument("--judged", action="store_true", help="the tracker as shipped: live confidence, state, re-detection")
    c.add_argument("--no-redetect", action="store_true", help="with --judged: re-detection off")
    c.add_argument("--out", type=Path, required=True)
    f = sub.add_parser("fit")
    f.add_argument("frames", type=Path)
    f.add_argument("--features", nargs="+", default=["score_logit", "recall"], choices=FEATURES)
    f.add_argument("--choose-on", type=Path, nargs="*", default=[], help="more frames the rule must hold on")
    f.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("report")
    r.add_argument("frames", type=Path)
    r.add_argument("--model", type=Path, default=None, help="confidence.json to replay the states with")
    r.add_argument(
        "--base", type=Path, default=None, help="judged frames without the option, for the paired difference"
    )
    args = ap.parse_args(argv)
    if args.cmd == "collect":
        d = collect(args.data, args.seeds, not args.no_clean, args.model, args.judged, not args.no_redetect)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.out, **d)
        log.info("%d frames -> %s", len(d["iou"]), args.out)
        return 0
    d = dict(np.load(args.frames))
    if args.cmd == "fit":
        model = fit_logistic(d, tuple(args.features))
        model, rule = choose_rule([d, *(dict(np.load(p)) for p in args.choose_on)], model)
        model = replace(model, fitted_on=" ".join(map(str, [args.frames, *args.choose_on])))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_judgement(args.out, model, rule)
        print(json.dumps({"model": model.weights, "smoothing": model.smoothing, "rule": rule.__dict__}, indent=1))
        print(json.dumps(report(d, model, rule), indent=1))
        return 0
    if args.model is None:
        base = dict(np.load(args.base)) if args.base else None
        print(json.dumps(live_report(d, base), indent=1))
        return 0
    model, rule = read_judgement(args.model)
    print(json.dumps(report(d, model, rule), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
