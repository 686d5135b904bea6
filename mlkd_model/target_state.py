"""Whether the tracker is on its target: `tracking`, `uncertain` or `lost`, driven by the per-frame confidence.

One state machine for `mlkd track`, `mlkd eval`, replay and the tracker node (which adds its own idle,
stale and no_model around it). Hysteresis, because on-target dips are short and off-target stretches long:
- tracking -> uncertain when the confidence falls below `uncertain_below`;
- uncertain -> lost after `lost_after` frames in a row below `uncertain_below` (or at once below `lost_below`);
- uncertain or lost -> tracking after `recover_frames` frames in a row at or above `tracking_above`.
Only `tracking` lets the drone move.
"""

from __future__ import annotations

from dataclasses import dataclass

STATES = ("tracking", "uncertain", "lost")


@dataclass(frozen=True)
class StateRule:
    uncertain_below: float = 0.5
    tracking_above: float = 0.6
    lost_below: float = 0.1
    lost_after: int = 15
    recover_frames: int = 3

    def __post_init__(self) -> None:
        if not 0.0 <= self.lost_below <= self.uncertain_below <= self.tracking_above <= 1.0:
            raise ValueError(
                "state rule needs 0 <= lost_below <= uncertain_below <= tracking_above <= 1, got "
                f"{self.lost_below}, {self.uncertain_below}, {self.tracking_above}"
            )
        if self.lost_after < 1 or self.recover_frames < 1:
            raise ValueError(
                f"lost_after and recover_frames must be >= 1, got {self.lost_after}, {self.recover_frames}"
            )


class TargetState:
    def __init__(self, rule: StateRule | None = None) -> None:
        self.rule = rule or StateRule()
        self.start()

    def start(self) -> None:
        """A new track (init): the init box is the target by definition."""
        self.state = "tracking"
        self._low = 0
        self._high = 0

    def update(self, confidence: float) -> str:
        """One frame's confidence -> the state after it."""
        r = self.rule
        low = not confidence >= r.uncertain_below  # NaN counts as low
        self._low = self._low + 1 if low else 0
        self._high = self._high + 1 if confidence >= r.tracking_above else 0
        if self.state == "tracking":
            if low:
                self.state = "uncertain"
        elif self._high >= r.recover_frames:
            self.state = "tracking"
        if self.state == "uncertain" and (self._low >= r.lost_after or not confidence >= r.lost_below):
            self.state = "lost"
        return self.state
