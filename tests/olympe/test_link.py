"""Drone link supervision in the bridge, against Olympe's fake drone in a private network namespace.

- fake drone killed while armed: the loss is reported at once (diagnostics ERROR, drone_state
  "disconnected", disarmed) and the PCMD count stops;
- brought back: the bridge reconnects by itself, stays disarmed, and sends PCMDs only after a new arm;
- a take-off the drone never acknowledges blocks nothing: a cmd_vel stop and an emergency hover sent
  while it waits reach the drone at once, and the take-off answers "not acknowledged" after its timeout.
"""

from __future__ import annotations

import pytest
from olympe_helpers import run_in_netns

ERROR = 2
# The requirement is 100 ms (loss report: 1 s). Olympe notices a closed link within ~50 ms and a command
# crosses DDS + Olympe's 25 ms piloting tick in a few tens of ms (figures in the report); the bounds
# below add room for a loaded 2-core CI host, and stay far below the 2 s the take-off waits.
REACH_S = 0.25
LOSS_S = 1.0


@pytest.fixture(scope="module")
def link(olympe_venv, tmp_path_factory) -> dict:
    res = run_in_netns(["link"], tmp_path_factory.mktemp("link"), timeout=300)
    print(f"link: {res}")  # the figures, with pytest -s
    return res


def test_link_loss_is_reported_and_nothing_sent(link):
    assert link["arm"] == [True, "armed"] and link["pcmd_armed"] > 10
    assert link["loss_reported_s"] is not None and link["loss_reported_s"] < LOSS_S, link["loss_reported_s"]
    assert link["loss_level"] == ERROR and "link lost" in link["loss_message"]
    assert link["armed_after_loss"] == "false"
    sent = link["pcmd_sent_after_loss"]
    assert len(sent) >= 2 and len(set(sent)) == 1, f"PCMD count must stop with the link: {sent}"
    assert link["arm_while_lost"][0] is False and "not connected" in link["arm_while_lost"][1]


def test_reconnect_stays_disarmed_until_a_new_arm(link):
    d = link["diag_after_reconnect"]
    assert d["drone_state"] == "connected" and d["drone_connections"] == "2" and d["armed"] == "false"
    assert link["pcmd_before_rearm"] == 0, "nothing reaches the drone after a reconnect before a new arm"
    assert link["rearm"] == [True, "armed"] and link["pcmd_after_rearm"] > 10


def test_parameters_apply_at_run_time_or_are_read_only(link):
    assert link["set_max_pitch"][0] is True
    assert link["pitch_after_cap"] == [10], "1 m/s is 20 % at speed_full_scale 5: capped to the new max_pitch"
    ok, reason = link["set_drone_ip"]
    assert ok is False and "read-only" in reason, reason


def test_unacknowledged_takeoff_blocks_nothing(link):
    assert link["takeoff_sent"]
    ok, message, took = link["takeoff"]
    assert ok is False and "not acknowledged within 2 s" in message and took >= 2.0
    assert link["stop_reached_s"] is not None and link["stop_reached_s"] < REACH_S, link["stop_reached_s"]
    assert link["moving_after_stop"] == []
    assert link["hover"] == [True, "hovering, piloting disarmed"] and link["hover_answer_s"] < REACH_S
    assert link["hover_reached_s"] is not None and link["hover_reached_s"] < REACH_S, link["hover_reached_s"]
    assert link["pcmd_after_hover"] == [], "disarmed: no PCMD after the hover"
