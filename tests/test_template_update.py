"""The confidence-gated template update (mlkd_model/template_update.py) on a real sequence."""

from __future__ import annotations

import numpy as np
import pytest
from shared_paths import SHARED

from mlkd_model.datasets import load_dataset
from mlkd_model.load import load_tracker
from mlkd_model.template_update import TemplateUpdatingTracker
from mlkd_training.evaluate import TrackerSpec, make_tracker, run_sequence

CROSSING = SHARED / "data/sequences/fixtures/otb_Crossing"


@pytest.fixture(scope="module")
def crossing():
    return load_dataset(CROSSING)[0]


def test_never_confident_enough_is_the_plain_tracker(crossing):
    plain, _ = run_sequence(load_tracker(), crossing)
    never = TemplateUpdatingTracker(load_tracker(), threshold=1.0, interval=1)
    gated, _ = run_sequence(never, crossing)
    np.testing.assert_array_equal(plain, gated)
    assert never.updates == 0


def test_confident_frames_blend_a_new_template(crossing):
    tracker = TemplateUpdatingTracker(load_tracker(), threshold=0.0, interval=5, rate=0.5)
    boxes, _ = run_sequence(tracker, crossing)
    assert tracker.updates == (len(crossing) - 1) // 5
    plain, _ = run_sequence(load_tracker(), crossing)
    assert np.abs(boxes[1:] - plain[1:]).max() > 0  # the template really changed what the network sees


def test_eval_spec_option():
    spec = TrackerSpec.parse("default+update")
    assert spec.kind == "default" and spec.template_update
    assert isinstance(make_tracker(spec), TemplateUpdatingTracker)
    with pytest.raises(ValueError, match="only option"):
        TrackerSpec.parse("default+other")
    with pytest.raises(ValueError):
        TemplateUpdatingTracker(load_tracker(), rate=0.0)
