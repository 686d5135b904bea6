"""cmd_vel -> PCMD mapping and the arming / staleness gate (pure Python, no drone needed)."""

from __future__ import annotations

import math

from mlkd_ros.piloting import HOVER, Pcmd, PilotingGate, PilotingLimits, twist_to_pcmd

LIM = PilotingLimits(
    speed_full_scale=2.0,
    vertical_full_scale=1.0,
    yaw_rate_full_scale=1.0,
    max_roll=30,
    max_pitch=30,
    max_yaw=50,
    max_gaz=30,
)


def test_rep103_to_parrot_signs():
    # forward, left, up, yaw left (REP-103) -> +pitch, -roll, +gaz, -yaw (Parrot: +roll right, +yaw clockwise)
    assert twist_to_pcmd(0.5, 0.0, 0.0, 0.0, LIM) == Pcmd(pitch=25)
    assert twist_to_pcmd(0.0, 0.5, 0.0, 0.0, LIM) == Pcmd(roll=-25)
    assert twist_to_pcmd(0.0, 0.0, 0.2, 0.0, LIM) == Pcmd(gaz=20)
    assert twist_to_pcmd(0.0, 0.0, 0.0, 0.3, LIM) == Pcmd(yaw=-30)


def test_limits_and_nan():
    assert twist_to_pcmd(100.0, -100.0, 100.0, -100.0, LIM) == Pcmd(roll=30, pitch=30, yaw=50, gaz=30)
    assert twist_to_pcmd(math.nan, math.inf, -math.inf, math.nan, LIM) == HOVER
    yaws = [twist_to_pcmd(0, 0, 0, -w, LIM).yaw for w in (0.0, 0.1, 0.2, 0.4, 0.8)]
    assert yaws == sorted(yaws) and yaws[0] == 0 and yaws[-1] == 50  # monotonic, then clipped


def test_gate_arming_and_staleness():
    gate = PilotingGate(LIM, timeout=0.5)
    gate.update(0.5, 0, 0, 0, now=0.0)
    assert gate.command(0.1) is None  # disarmed: send nothing at all
    gate.arm(True)
    assert gate.command(0.1) == HOVER  # a command from before arming is not replayed
    gate.update(0.5, 0, 0, 0, now=1.0)
    assert gate.command(1.2) == Pcmd(pitch=25)
    assert gate.command(1.6) == HOVER  # stale -> hover
    gate.arm(False)
    assert gate.command(1.7) is None
