"""Anafi telemetry, settings, gimbal, return-home and the low-battery failsafe against the fake drone.

The fake drone sends fixed state messages (tests/olympe/fake_drone.py TELEMETRY) and a battery that drains
once PCMDs arrive; the bridge publishes them as standard messages, and what it sends back is matched by
message name and arguments at the drone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from olympe_helpers import run_in_netns
from scenario import SETTINGS

NAV_SAT_FIX = 0


@pytest.fixture(scope="module")
def tel(olympe_venv, tmp_path_factory) -> dict:
    res = run_in_netns(["telemetry"], tmp_path_factory.mktemp("telemetry"), timeout=240)
    print(f"telemetry: {res}")  # the figures, with pytest -s
    return res


def sent(res: dict, name: str) -> list[tuple[dict, float]]:
    return [(args, t) for n, args, t in res["commands"] if n == name]


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = (
        math.cos(roll),
        math.sin(roll),
        math.cos(pitch),
        math.sin(pitch),
        math.cos(yaw),
        math.sin(yaw),
    )
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    return rz @ ry @ rx


def quat_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def test_telemetry_published_as_standard_messages(tel):
    t = tel["telemetry"]
    assert t["topics"] == ["altitude", "attitude", "battery", "gps", "link_quality", "speed"]
    assert t["battery"] == 0.24
    assert t["gps"] == [48.8566, 2.3522, 135.5, NAV_SAT_FIX]
    assert t["altitude"] == 12.5 and t["speed"] == [1.0, 0.5, -0.2] and t["link_quality"] == -55
    assert np.allclose(quat_matrix(*t["attitude"]), rpy_matrix(0.1, -0.05, 1.2), atol=1e-3)


def test_limits_camera_and_gimbal_sent_on_connect(tel):
    expect = {
        "ardrone3.PilotingSettings.MaxTilt": ("current", SETTINGS["max_tilt_deg"]),
        "ardrone3.SpeedSettings.MaxVerticalSpeed": ("current", SETTINGS["max_vertical_speed"]),
        "ardrone3.SpeedSettings.MaxRotationSpeed": ("current", SETTINGS["max_rotation_speed_deg"]),
        "ardrone3.PilotingSettings.MaxAltitude": ("current", SETTINGS["max_altitude"]),
        "ardrone3.PilotingSettings.MaxDistance": ("value", SETTINGS["max_distance"]),
        "ardrone3.PilotingSettings.NoFlyOverMaxDistance": ("shouldNotFlyOver", 1),
        "camera.set_ev_compensation": ("value", SETTINGS["ev_compensation"]),
    }
    for name, (key, value) in expect.items():
        got = sent(tel, name)
        assert (
            got and got[0][0][key] == pytest.approx(value) if isinstance(value, float) else got[0][0][key] == value
        ), (
            name,
            got,
        )
    exposure = sent(tel, "camera.set_exposure_settings")[0][0]
    assert exposure["mode"] == SETTINGS["exposure_mode"] and exposure["max_iso_sensitivity"] == SETTINGS["max_iso"]
    pitches = [a["pitch"] for a, _ in sent(tel, "gimbal.set_target")]
    assert pitches == [SETTINGS["gimbal_pitch_deg"], -45.0], "on connect, then from ~/gimbal_pitch"


def test_return_home_service_and_low_battery_failsafe(tel):
    assert tel["rth"] == [True, "returning home, piloting disarmed"]
    homes = [t for a, t in sent(tel, "ardrone3.Piloting.NavigateHome") if a["start"] == 1]
    assert len(homes) == 2 and homes[0] < 0, "the service (before arming), then the failsafe"
    assert tel["arm"] == [True, "armed"]
    # 24 % draining 2 %/s from the first PCMD: 20 % (hover, disarm) after ~2 s, 15 % (return home) after ~4.5 s.
    moving = tel["pcmd_moving_s"]
    assert moving and 1.0 < max(moving) < 3.0, moving
    assert 4.0 < homes[1] < 6.0, homes
    assert tel["diag_end"]["failsafe"] == "hover,return_home" and tel["diag_end"]["armed"] == "false"
    assert {20, 15} <= set(tel["battery_seen"])
