"""The tracker node's loss rules (mlkd_ros/track_state.py): pure, driven with made-up scores and times."""

from __future__ import annotations

import pytest

from mlkd_ros.track_state import LossRule, TrackState

SHAPE = (240, 360, 3)


def tracking(**rule) -> TrackState:
    t = TrackState(LossRule(**rule))
    t.started(SHAPE)
    return t


def test_idle_tracks_nothing_until_init():
    t = TrackState()
    assert t.state == "idle" and t.needs_init and not t.tracks_frames
    assert not t.arrived(5.0) and not t.frame(SHAPE) and t.tick(10.0) is None
    t.started(SHAPE)
    assert t.state == "tracking" and t.frame(SHAPE) and t.scored(0.9)


def test_stale_then_lost_after_max_frame_gap():
    t = tracking(stale_after=0.5, max_frame_gap=1.0)
    assert t.tick(0.3) is None and t.state == "tracking"
    assert t.tick(0.6) == "stale" and t.state == "stale"
    assert t.tick(0.7) is None, "announced once"
    assert not t.scored(0.9), "a late result after 'stale' publishes no box"
    assert t.tick(1.1) == "lost" and t.state == "lost" and "no frame for 1.1 s" in t.reason
    # Frames come back: the track stays dropped (no box, nothing tracked) until a new init.
    assert not t.arrived(0.03) and not t.frame(SHAPE) and t.needs_init
    t.started(SHAPE)
    assert t.state == "tracking" and t.frame(SHAPE)


def test_short_gap_recovers_from_stale():
    t = tracking(stale_after=0.5, max_frame_gap=1.0)
    assert t.tick(0.6) == "stale"
    assert not t.arrived(0.8) and t.state == "tracking" and t.frame(SHAPE)


def test_gap_seen_on_arrival_drops_the_track():
    """The worker may miss the tick (busy): the first frame after a long gap ends the track by itself."""
    t = tracking(max_frame_gap=1.0)
    assert t.arrived(6.8) and t.state == "lost" and "video gap of 6.8 s" in t.reason
    assert not t.frame(SHAPE) and t.needs_init


def test_frame_size_change_drops_the_track():
    t = tracking()
    assert not t.frame((50000, 2, 3))
    assert t.state == "lost" and "from 360x240 to 2x50000" in t.reason and t.needs_init


@pytest.mark.parametrize("policy,tracked_after,resumes", [("stop", False, False), ("recover", True, True)])
def test_low_score_policies(policy, tracked_after, resumes):
    t = tracking(lost_score=0.2, lost_frames=3, policy=policy)
    assert t.scored(0.1) and t.state == "low_score"
    assert t.scored(0.1)
    assert not t.scored(0.1) and t.state == "lost" and "below 0.2 for 3 frames" in t.reason
    assert t.tracks_frames == tracked_after and t.needs_init == (not tracked_after)
    if resumes:
        assert t.scored(0.9) and t.state == "tracking"


def test_keep_never_loses_on_score_but_still_on_video_gap():
    t = tracking(lost_frames=2, policy="keep")
    assert all(t.scored(0.0) for _ in range(10)) and t.state == "low_score"
    assert t.tick(2.0) == "lost" and t.needs_init


def test_recover_policy_does_not_bridge_a_video_gap():
    t = tracking(lost_frames=1, policy="recover")
    assert not t.scored(0.0) and t.tracks_frames  # lost on score, still searching
    assert t.arrived(3.0) and not t.tracks_frames and t.needs_init


def test_reset_and_model_change():
    t = tracking()
    t.reset()
    assert t.state == "idle" and t.needs_init
    t.model(loaded=False)
    assert t.state == "no_model"
    t.reset()
    assert t.state == "no_model", "a reset does not bring a model"
    t.model(loaded=True)
    assert t.state == "idle"


def test_a_failure_ends_an_active_track_and_a_grey_frame_is_another_size():
    idle = TrackState()
    idle.fail("tracking failed: RuntimeError")
    assert idle.state == "idle", "nothing to end"
    t = tracking()
    t.fail("tracking failed: RuntimeError: x")
    assert t.state == "lost" and t.reason == "tracking failed: RuntimeError: x" and t.needs_init
    t = tracking()
    assert not t.frame(SHAPE[:2]) and t.state == "lost"
    assert "from 360x240 (channels: 3) to 360x240 (channels: 1)" in t.reason
