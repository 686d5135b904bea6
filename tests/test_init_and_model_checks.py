"""Transactional init (a failed init leaves the track as it was) and model directories checked at load."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from shared_paths import SEQUENCES

from mlkd_model.default_model import MODEL_DIR
from mlkd_model.frames import BoxError
from mlkd_model.load import load_tracker
from mlkd_model.manifest import MANIFEST, ModelDirError, sha256

CROSSING = SEQUENCES / "fixtures" / "otb_Crossing"


@pytest.fixture(scope="module")
def clip():
    import cv2

    if not CROSSING.is_dir():
        pytest.skip(f"fixture sequence missing: {CROSSING}")
    frames = [cv2.imread(str(p)) for p in sorted((CROSSING / "img").glob("*.jpg"))[:12]]
    gt = np.loadtxt(CROSSING / "groundtruth_rect.txt", delimiter=",")
    return frames, gt


def snapshot(tracker) -> tuple:
    return (
        tracker.center.copy(),
        tracker.size.copy(),
        tracker.channel_average.copy(),
        [k.copy() for k in tracker.backend._kernels],
    )


def tracking_twins(frames, gt) -> tuple:
    """Two trackers in the same state, one frame into the same track: one to spoil, one to compare with."""
    twins = load_tracker(), load_tracker()
    for t in twins:
        t.init(frames[0], gt[0])
        t.track(frames[1])
    return twins


def same(a: tuple, b: tuple) -> bool:
    kernels = len(a[3]) == len(b[3]) and all(np.array_equal(x, y) for x, y in zip(a[3], b[3], strict=True))
    return all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3], strict=True)) and kernels


@pytest.mark.parametrize(
    "box,reason",
    [
        ((0, 0, 5000, 5000), "larger than the 360x240 frame"),
        ((10, 10, 1e7, 20), "larger than"),
        ((1e30, 1e30, 1e30, 1e30), "larger than"),
        ((10, 10, 361, 20), "larger than"),
    ],
)
def test_oversized_boxes_are_refused_and_the_track_kept(clip, box, reason):
    frames, gt = clip
    tracker, reference = tracking_twins(frames, gt)
    before = snapshot(tracker)
    with pytest.raises(BoxError, match=reason):
        tracker.init(frames[2], box)
    assert same(before, snapshot(tracker))
    # The track goes on exactly as one that never saw the bad init.
    for f in frames[2:8]:
        assert tracker.track(f) == reference.track(f)


def test_whole_frame_box_is_accepted(clip):
    frames, _ = clip
    tracker = load_tracker()
    tracker.init(frames[0], (0, 0, 360, 240))
    tracker.track(frames[1])


def test_backend_failure_inside_init_keeps_the_track(clip):
    frames, gt = clip
    tracker, reference = tracking_twins(frames, gt)
    before = snapshot(tracker)
    real = tracker.backend.set_template

    def broken(_crop):
        raise RuntimeError("inference failed")

    tracker.backend.set_template = broken
    with pytest.raises(RuntimeError, match="inference failed"):
        tracker.init(frames[2], (100, 50, 40, 80))
    tracker.backend.set_template = real
    assert same(before, snapshot(tracker))
    for f in frames[2:8]:
        assert tracker.track(f) == reference.track(f)


def edited_model(tmp_path, change) -> str:
    """A copy of the embedded model with its manifest edited (hashes kept valid: the content is the test)."""
    out = tmp_path / "model"
    shutil.copytree(MODEL_DIR, out, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    data = json.loads((out / MANIFEST).read_text())
    change(data, out)
    (out / MANIFEST).write_text(json.dumps(data))
    return str(out)


def set_param(key, value):
    def change(data, _out):
        data["params"][key] = value

    return change


def swap_search_for_template(data, out):
    shutil.copy(out / data["files"]["template"]["name"], out / data["files"]["search"]["name"])
    data["files"]["search"]["sha256"] = sha256(out / data["files"]["search"]["name"])


@pytest.mark.parametrize(
    "change,reason",
    [
        (set_param("score_size", 21), "do not match the manifest"),
        (set_param("instance_size", 0), "instance_size must be an integer"),
        (set_param("stride", 2.5), "stride must be an integer"),
        (set_param("exemplar_size", 100), "do not run at the manifest's sizes"),
        (set_param("lr", 7.0), "lr must be in"),
        (set_param("context_amount", -1.0), "context_amount must be in"),
        (swap_search_for_template, "do not fit together"),
    ],
    ids=["score_size", "instance_size", "stride", "exemplar_size", "lr", "context", "graphs"],
)
def test_manifest_values_are_checked_at_load(tmp_path, change, reason):
    with pytest.raises(ModelDirError, match=reason):
        load_tracker(edited_model(tmp_path, change))


def test_the_embedded_model_passes_the_load_checks():
    load_tracker()
    load_tracker(enhance=True)
