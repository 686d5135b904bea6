"""The one loop that runs a tracker over frames (mlkd track, mlkd eval, offline replay)."""

from __future__ import annotations

import math

import cv2
import numpy as np
from shared_paths import SEQUENCES

from mlkd_model.load import load_tracker
from mlkd_model.track_frames import NO_BOX, track_frames

CROSSING = SEQUENCES / "fixtures" / "otb_Crossing"


def test_frames_before_the_start_are_never_read_and_the_track_matches_direct_calls():
    images = [cv2.imread(str(p)) for p in sorted((CROSSING / "img").glob("*.jpg"))[:12]]
    gt = np.loadtxt(CROSSING / "groundtruth_rect.txt", delimiter=",")
    start = 3
    frames = [None] * start + images[start:]  # a read of a frame before the start would fail on None
    steps = list(track_frames(load_tracker(None), frames, tuple(gt[start]), start))

    direct = load_tracker(None)
    direct.init(images[start], tuple(float(v) for v in gt[start]))
    expected = [direct.track(f) for f in images[start + 1 :]]

    assert [s.index for s in steps] == list(range(len(frames)))
    assert all(s.box == NO_BOX and s.score is None and s.seconds == 0.0 for s in steps[:start])
    assert all(math.isnan(v) for v in steps[0].box)
    assert steps[start].box == tuple(float(v) for v in gt[start]) and steps[start].score is None
    for step, (box, score) in zip(steps[start + 1 :], expected, strict=True):
        np.testing.assert_allclose(step.box, box, atol=1e-9)
        assert step.score == score and step.seconds > 0 and step.frame is images[step.index]
    # and it tracks: the last box still overlaps the target's ground truth
    (x, y, w, h), (gx, gy, gw, gh) = steps[-1].box, gt[len(frames) - 1]
    assert abs(x + w / 2 - gx - gw / 2) < 10 and abs(y + h / 2 - gy - gh / 2) < 10
