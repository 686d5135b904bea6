"""OPE metrics: hand-computed cases, and equality with the independent got10k package on real tracker output."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mlkd_model import metrics as M

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
VAL = SHARED / "data" / "sequences" / "val"
NANO = SHARED / "weights" / "nanotrack_v2"


def _gt(n: int = 10, w: float = 40.0, h: float = 40.0) -> np.ndarray:
    x = np.arange(n, dtype=np.float64) * 3.0 + 10.0
    return np.stack([x, x / 2 + 5.0, np.full(n, w), np.full(n, h)], axis=1)


def test_thresholds_are_pysots() -> None:
    assert len(M.SUCCESS_THRESHOLDS) == 21 and M.SUCCESS_THRESHOLDS[-1] == 1.0
    np.testing.assert_allclose(M.SUCCESS_THRESHOLDS, np.arange(0, 1.05, 0.05), atol=1e-15)
    assert M.PRECISION_THRESHOLDS[M.PRECISION_AT] == 20
    assert M.NORM_PRECISION_THRESHOLDS[M.NORM_PRECISION_AT] == pytest.approx(0.2, abs=1e-15)


def test_perfect_tracking() -> None:
    gt = _gt()
    r = M.evaluate_sequence(gt, gt)
    # IoU = 1 exceeds every threshold but the last (1 > 1 is false, as in pysot and got10k): AUC = 20/21
    np.testing.assert_array_equal(r.success, [1.0] * 20 + [0.0])
    assert r.auc == pytest.approx(20 / 21, abs=1e-15)
    assert r.precision == 1.0 and r.norm_precision == 1.0
    assert np.all(r.precision_curve == 1.0) and np.all(r.norm_precision_curve == 1.0)
    assert (r.n_frames, r.n_excluded) == (10, 0)


def test_constant_offset_gives_exact_curves() -> None:
    gt = _gt(w=40.0, h=40.0)
    pred = gt + np.array([3.0, 4.0, 0.0, 0.0])  # 5 px center error, 0.125 normalized
    r = M.evaluate_sequence(pred, gt)
    np.testing.assert_array_equal(r.precision_curve, (M.PRECISION_THRESHOLDS >= 5).astype(float))
    np.testing.assert_array_equal(r.norm_precision_curve, (M.NORM_PRECISION_THRESHOLDS >= 0.125).astype(float))
    overlap = 37.0 * 36.0 / (2 * 1600.0 - 37.0 * 36.0)  # 0.713
    np.testing.assert_allclose(M.iou(pred, gt), overlap, rtol=1e-15)
    np.testing.assert_array_equal(r.success, (M.SUCCESS_THRESHOLDS < overlap).astype(float))
    assert r.auc == pytest.approx(15 / 21, abs=1e-15)
    np.testing.assert_allclose(M.center_error(pred, gt), 5.0, rtol=1e-15)


def test_missing_ground_truth_excluded_and_counted() -> None:
    gt = _gt()
    pred = gt.copy()
    pred[:5, :2] += 100.0  # first half lost
    gt[0] = np.nan
    gt[1, 2] = 0.0  # zero width: missing as well
    r = M.evaluate_sequence(pred, gt)
    assert (r.n_frames, r.n_excluded) == (8, 2)
    assert r.precision == pytest.approx(5 / 8) and r.success[0] == pytest.approx(5 / 8)


def test_missing_prediction_is_a_failure() -> None:
    gt = _gt(4)
    pred = gt.copy()
    pred[1] = np.nan
    r = M.evaluate_sequence(pred, gt)
    assert r.precision == 0.75 and r.success[0] == 0.75 and r.norm_precision == 0.75


def test_summary_and_attributes() -> None:
    gt = _gt()
    good = M.evaluate_sequence(gt, gt)
    bad = M.evaluate_sequence(gt + np.array([100.0, 0, 0, 0]), gt)
    s = M.summarize({"a": good, "b": bad})
    assert s.precision == 0.5 and s.n_sequences == 2 and s.n_frames == 20
    flags = {"a": {"IV": np.ones(10, bool)}, "b": {"IV": np.zeros(10, bool)}}
    att = M.attribute_summaries({"a": good, "b": bad}, flags)
    assert att["IV"].precision == 1.0 and att["IV"].n_sequences == 1


def test_mismatched_counts_rejected() -> None:
    with pytest.raises(ValueError, match="differ in count"):
        M.evaluate_sequence(_gt(5), _gt(6))


def test_center_convention_cancels() -> None:
    """x + (w-1)/2 (pysot, got10k) and x + w/2 give the same distance: the -1/2 cancels in the difference."""
    rng = np.random.default_rng(0)
    a = np.abs(rng.normal(50, 20, (100, 4))) + 1
    b = np.abs(rng.normal(50, 20, (100, 4))) + 1
    half = np.hypot(*((a[:, :2] + a[:, 2:] / 2) - (b[:, :2] + b[:, 2:] / 2)).T)
    np.testing.assert_allclose(M.center_error(a, b), half, rtol=1e-12)


# --------------------------------------------------------------------------- got10k cross-check


def _run_trackers(stride: int = 3) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Two real trackers on every `stride`-th frame of the val sequences: {tracker: {seq: (pred, gt)}}."""
    from mlkd_model.datasets import load_dataset
    from mlkd_model.load import load_tracker

    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {"default": {}, "opencv_nano": {}}
    for seq in load_dataset(VAL):
        idx = range(0, len(seq), stride)
        frames = [seq.image(i) for i in idx]
        gt = seq.boxes[list(idx)]
        ours = load_tracker()
        ours.init(frames[0], tuple(gt[0]))
        params = cv2.TrackerNano_Params()
        params.backbone = str(NANO / "nanotrack_backbone_sim.onnx")
        params.neckhead = str(NANO / "nanotrack_head_sim.onnx")
        cv = cv2.TrackerNano_create(params)
        cv.init(frames[0], tuple(round(v) for v in gt[0]))
        pred_a, pred_b = [gt[0]], [gt[0]]
        for frame in frames[1:]:
            pred_a.append(ours.track(frame)[0])
            ok, box = cv.update(frame)
            pred_b.append(box if ok else (np.nan,) * 4)
        out["default"][seq.name] = (np.asarray(pred_a, float), gt)
        out["opencv_nano"][seq.name] = (np.asarray(pred_b, float), gt)
    return out


@pytest.mark.skipif(not (VAL.is_dir() and NANO.is_dir()), reason="shared data not found next to the repo")
def test_equals_got10k_on_real_tracker_output() -> None:
    from got10k.experiments.otb import ExperimentOTB
    from got10k.utils.metrics import center_error, rect_iou

    # got10k's curve code needs only the bin counts from `self`: 21 IoU bins over [0, 1], 51 error bins 0..50
    fake = SimpleNamespace(nbins_iou=21, nbins_ce=51)
    runs = _run_trackers()
    excluded = 0
    for tracker, seqs in runs.items():
        ours, theirs = {}, []
        for name, (pred, gt) in seqs.items():
            # got10k has no notion of missing ground truth (NaN frames would count as failures):
            # hand it only the frames we score, which is what "excluded" means here
            keep = M.valid_mask(gt)
            excluded += int((~keep).sum())
            p, g = pred[keep], gt[keep]
            ious, errs = ExperimentOTB._calc_metrics(fake, p.copy(), g.copy())
            succ, prec = ExperimentOTB._calc_curves(fake, ious, errs)
            np.testing.assert_allclose(M.iou(p, g), rect_iou(p.copy(), g.copy()), atol=1e-9, rtol=0)
            np.testing.assert_allclose(M.center_error(p, g), center_error(p, g), atol=1e-9, rtol=0)
            r = M.evaluate_sequence(pred, gt)
            np.testing.assert_allclose(r.success, succ, atol=1e-9, rtol=0)
            np.testing.assert_allclose(r.precision_curve, prec, atol=1e-9, rtol=0)
            assert abs(r.auc - np.mean(succ)) < 1e-9 and abs(r.precision - prec[20]) < 1e-9
            ours[name] = r
            theirs.append((succ, prec))
        # dataset level: got10k's report() averages the per-sequence curves, then takes the mean / bin 20
        s = M.summarize(ours)
        assert abs(s.auc - np.mean(np.mean([t[0] for t in theirs], axis=0))) < 1e-9
        assert abs(s.precision - np.mean([t[1] for t in theirs], axis=0)[20]) < 1e-9
        assert 0.05 < s.auc < 0.95, f"{tracker} scores {s.auc}: the check should run on non-trivial results"
    assert excluded > 0  # uav123_car14's NaN rows reached the comparison and were excluded on both sides


def test_honesty_counts_caught_frames_false_alarms_and_delays():
    gt = np.tile([10.0, 10.0, 20.0, 20.0], (10, 1))
    far = [200.0, 200.0, 20.0, 20.0]
    pred = gt.copy()
    pred[3:7] = far  # one off-target episode of 4 frames
    gt[8] = np.nan  # unlabelled: not counted
    states = [
        "tracking",
        "uncertain",
        "tracking",
        "tracking",
        "tracking",
        "lost",
        "lost",
        "tracking",
        "lost",
        "tracking",
    ]
    h = M.honesty(pred, gt, states)
    assert h["on_frames"] == 5 and h["off_frames"] == 4
    assert h["off_caught"] == 2 and h["false_alarms"] == 1  # frame 1 flagged on target; frame 8 unlabelled
    assert h["episodes"] == 1 and h["median_delay"] == 2 and h["missed_episodes"] == 0
    never = M.honesty(pred, gt, ["tracking"] * 10)
    assert never["missed_episodes"] == 1 and never["median_delay"] == 4 and never["off_caught"] == 0
    with pytest.raises(ValueError, match="states for"):
        M.honesty(pred, gt, ["tracking"])
