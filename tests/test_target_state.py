"""The core state machine (mlkd_model/target_state.py), driven with made-up confidences."""

from __future__ import annotations

import math

import pytest

from mlkd_model.target_state import StateRule, TargetState

RULE = StateRule(uncertain_below=0.5, tracking_above=0.6, lost_below=0.1, lost_after=4, recover_frames=2)


def run(values: list[float], rule: StateRule = RULE) -> list[str]:
    machine = TargetState(rule)
    return [machine.update(v) for v in values]


def test_a_short_dip_is_uncertain_not_lost():
    assert run([0.9, 0.4, 0.45, 0.9, 0.9]) == ["tracking", "uncertain", "uncertain", "uncertain", "tracking"]


def test_a_long_stretch_below_the_threshold_becomes_lost():
    assert run([0.9] + [0.3] * 5)[-2:] == ["lost", "lost"]
    assert run([0.9] + [0.3] * 5)[3] == "uncertain", "three frames below: still uncertain"


def test_a_very_low_confidence_is_lost_at_once():
    assert run([0.9, 0.05]) == ["tracking", "lost"]


def test_recovery_needs_consecutive_sure_frames():
    states = run([0.2] * 5 + [0.7, 0.55, 0.7, 0.7])
    assert states[4] == "lost"
    assert states[5:] == ["lost", "lost", "lost", "tracking"], "0.55 is between the thresholds: the count restarts"


def test_between_the_thresholds_tracking_stays_tracking():
    assert run([0.55] * 20) == ["tracking"] * 20


def test_nan_confidence_counts_as_low():
    assert run([0.9, math.nan]) == ["tracking", "lost"]


def test_start_resets_a_lost_track():
    machine = TargetState(RULE)
    for v in [0.0] * 3:
        machine.update(v)
    assert machine.state == "lost"
    machine.start()
    assert machine.state == "tracking" and machine.update(0.55) == "tracking"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"uncertain_below": 0.7, "tracking_above": 0.6},
        {"lost_below": 0.6, "uncertain_below": 0.5},
        {"lost_after": 0},
        {"recover_frames": 0},
        {"tracking_above": 1.5},
    ],
)
def test_inconsistent_rules_are_refused(kwargs):
    with pytest.raises(ValueError):
        StateRule(**kwargs)
