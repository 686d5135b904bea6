"""The honest tracking loop (mlkd_model/honest_tracker.py) on real frames and on a two-object scene made here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from shared_paths import SEQUENCES

from mlkd_model.datasets import load_dataset
from mlkd_model.load import load_tracker
from mlkd_model.metrics import iou

CAR_A = SEQUENCES / "val" / "uav123_car14"
CAR_B = SEQUENCES / "train" / "uav123_car10"


def car(folder, scale: float = 1.5) -> np.ndarray:
    """The labelled car of a sequence's first frame, with a margin of road around it."""
    seq = load_dataset(folder)[0]
    x, y, w, h = (round(v) for v in seq.boxes[0])
    patch = seq.image(0)[y : y + h, x : x + w]
    return cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)


def scene(frames: int, positions_a: list, position_b: tuple[int, int], a: np.ndarray, b: np.ndarray, seed: int = 0):
    """Road-like noise with car A at positions_a[i] (None: gone) and car B parked; returns frames and A's boxes."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.normal(90, 18, (240, 360, 3)).clip(0, 255).astype(np.uint8), (0, 0), 3)
    images, boxes = [], []
    for i in range(frames):
        img = base.copy()
        bx, by = position_b
        img[by : by + b.shape[0], bx : bx + b.shape[1]] = b
        pos = positions_a[i]
        if pos is None:
            boxes.append((np.nan,) * 4)
        else:
            x, y = pos
            img[y : y + a.shape[0], x : x + a.shape[1]] = a
            boxes.append((x, y, a.shape[1], a.shape[0]))
        noise = rng.normal(0, 4, img.shape)
        images.append((img + noise).clip(0, 255).astype(np.uint8))
    return images, np.array(boxes, float)


@pytest.fixture(scope="module")
def cars(shared):
    return car(CAR_A), car(CAR_B)


def test_target_leaves_a_look_alike_stays_then_the_target_returns(cars):
    """The target drives out of the frame while a similar car stays parked, then comes back. Whatever the loop
    wanders onto, it must never call the parked car `tracking`, re-detection must never take it, and once the
    target is back the re-detection takes it and the state returns to `tracking` on it."""
    a, b = cars
    moving = [(40 + 3 * i, 100) for i in range(40)]  # A drives right, then leaves upwards
    leaving = [(160, 100 - 25 * k) for k in range(1, 4)]
    back = [(150, 110)] * 60
    positions = moving + [p if p[1] >= 0 else None for p in leaving] + [None] * 40 + back
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
