"""cmd_vel (geometry_msgs/Twist, REP-103) -> Parrot PCMD piloting percentages, with arming and a watchdog.

Pure Python (no ROS, no Olympe) so the safety logic is unit-testable. Conventions:
  REP-103 body frame: +linear.x forward, +linear.y left, +linear.z up, +angular.z yaw left (CCW).
  Parrot PCMD (ardrone3.Piloting.PCMD, percent -100..100): +pitch forward, +roll right, +yaw clockwise
  (right), +gaz up. Hence roll = -y and yaw = -z.
Full scale: a speed of `*_full_scale` maps to 100 %; the result is then clipped to the per-axis limit.
The Anafi's actual speed at 100 % depends on its max-tilt / max-rotation-speed settings, so the full
scales are parameters, not constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Pcmd:
    roll: int = 0
    pitch: int = 0
    yaw: int = 0
    gaz: int = 0


HOVER = Pcmd()


@dataclass(frozen=True)
class PilotingLimits:
    speed_full_scale: float = 5.0  # m/s of linear.x / linear.y that means 100 % pitch / roll
    vertical_full_scale: float = 1.0  # m/s of linear.z that means 100 % gaz
    yaw_rate_full_scale: float = 1.5  # rad/s of angular.z that means 100 % yaw
    max_roll: int = 30  # % caps, the last line of defence against a runaway controller
    max_pitch: int = 30
    max_yaw: int = 50
    max_gaz: int = 30


def _pct(value: float, full_scale: float, cap: int) -> int:
    if not math.isfinite(value) or full_scale <= 0:
        return 0  # a NaN command must never become a full-stick command
    p = round(100.0 * value / full_scale)
    return int(max(-cap, min(cap, p)))


def twist_to_pcmd(lin_x: float, lin_y: float, lin_z: float, ang_z: float, limits: PilotingLimits) -> Pcmd:
    return Pcmd(
        roll=_pct(-lin_y, limits.speed_full_scale, limits.max_roll),
        pitch=_pct(lin_x, limits.speed_full_scale, limits.max_pitch),
        yaw=_pct(-ang_z, limits.yaw_rate_full_scale, limits.max_yaw),
        gaz=_pct(lin_z, limits.vertical_full_scale, limits.max_gaz),
    )


class PilotingGate:
    """Decides what goes to the drone: nothing before arming, the last command while fresh, else hover.

    `command(now)` returns None while disarmed (send nothing at all, not even hover: the pilot's own
    controller keeps authority), HOVER when the last cmd_vel is older than `timeout`, else the command.
    """

    def __init__(self, limits: PilotingLimits, timeout: float = 0.5) -> None:
        self.limits = limits
        self.timeout = timeout
        self.armed = False
        self._last: Pcmd = HOVER
        self._last_t = -math.inf

    def arm(self, on: bool) -> None:
        self.armed = on
        # Commands received before arming are not replayed after it: start from hover.
        self._last, self._last_t = HOVER, -math.inf

    def update(self, lin_x: float, lin_y: float, lin_z: float, ang_z: float, now: float) -> None:
        self._last = twist_to_pcmd(lin_x, lin_y, lin_z, ang_z, self.limits)
        self._last_t = now

    def age(self, now: float) -> float:
        return now - self._last_t

    def stale(self, now: float) -> bool:
        return self.age(now) > self.timeout

    def command(self, now: float) -> Pcmd | None:
        if not self.armed:
            return None
        return HOVER if self.stale(now) else self._last
