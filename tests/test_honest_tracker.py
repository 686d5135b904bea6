"""The honest tracking loop (mlkd_model/honest_tracker.py) on real frames and on a two-object scene made here."""

from __future__ import annotations

import numpy as np
import pytest
from two_cars import CAR_A, CAR_B, car, leave_and_return, scene

from mlkd_model.load import load_tracker
from mlkd_model.metrics import iou


@pytest.fixture(scope="module")
def cars(shared):
    return car(CAR_A), car(CAR_B)


def test_target_leaves_a_look_alike_stays_then_the_target_returns(cars):
    """The target drives out of the frame while a similar car stays parked, then comes back. Whatever the loop
    wanders onto, it must never call the parked car `tracking`, re-detection must never take it, and once the
    target is back the re-detection takes it and the state returns to `tracking` on it."""
    a, b = cars
    positions = leave_and_return()
    images, truth_a = scene(len(positions), positions, (250, 150), a, b)
    box_b = np.array([[250, 150, b.shape[1], b.shape[0]]], float)

    tracker = load_tracker()
    tracker.init(images[0], tuple(truth_a[0]))
    states, on_b, on_a = [], [], []
    for i, img in enumerate(images[1:], 1):
        box, _ = tracker.track(img)
        states.append(tracker.status.state)
        on_b.append(float(iou(np.array([box]), box_b)[0]) > 0.3)
        on_a.append(float(np.nan_to_num(iou(np.array([box]), truth_a[i : i + 1])[0])) > 0.5)
    assert states[:38].count("tracking") >= 0.9 * 38, "on the moving car: tracking"
    assert not any(s == "tracking" and b_ for s, b_ in zip(states, on_b, strict=True)), (
        "the parked look-alike was reported as the target"
    )
    gone = states[43:83]
    assert gone[-1] != "tracking", "with the target gone for 40 frames the tracker still says tracking"
    assert tracker.reacquired >= 1, "the returned target was never re-detected"
    assert states[-1] == "tracking" and all(on_a[-10:]), "back on the returned target, the state says tracking"
