"""What the tracker node does with its target: the loss / stale-video / re-init state machine (no ROS).

States: idle (no track), tracking, low_score (score below `lost_score`, fewer than `lost_frames` times
in a row), lost, stale (an active track that has had no frame for `stale_after` s), no_model.

A track ends, and only a new init starts another, when
- no frame came for `max_frame_gap` s (a video gap: the target has moved meanwhile, and a Siamese
  tracker resuming from its old position locks onto whatever is there now),
- the frame size changed mid-track (a different stream: the old position means nothing in it),
- `lost_frames` low-score frames in a row under policy `stop`,
- tracking itself failed (an exception: the tracker's state is unknown).
Under policy `recover` a low-score loss keeps searching and resumes when the score recovers (the
video is continuous there, so the search window is still around the target); `keep` never reports lost.
Durations are given by the caller (seconds between frames, age of the newest frame), so the rules are
testable without a clock or a video.
"""

from __future__ import annotations

from dataclasses import dataclass

POLICIES = ("keep", "stop", "recover")
ACTIVE = ("tracking", "low_score", "stale")


@dataclass
class LossRule:
    lost_score: float = 0.2
    lost_frames: int = 10
    policy: str = "recover"
    stale_after: float = 0.5
    max_frame_gap: float = 1.0


def _size(shape: tuple[int, ...]) -> str:
    """(h, w[, channels]) -> "WxH"."""
    return f"{shape[1]}x{shape[0]}"


class TrackState:
    def __init__(self, rule: LossRule | None = None) -> None:
        self.rule = rule or LossRule()
        self.state = "idle"
        self.reason = ""  # why the track ended (lost) or why tracking is paused (stale)
        self.score = float("nan")
        self._low = 0
        self._recoverable = False  # lost under `recover`: frames are still tracked
        self._shape: tuple[int, ...] | None = None

    @property
    def tracks_frames(self) -> bool:
        """Whether the next frame should go through the network."""
        return self.state in ACTIVE or (self.state == "lost" and self._recoverable)

    @property
    def needs_init(self) -> bool:
        return self.state in ("idle", "lost") and not self.tracks_frames

    def started(self, shape: tuple[int, ...]) -> None:
        """An init succeeded on a frame of this shape (h, w, ...)."""
        self.state, self.reason, self.score, self._low = "tracking", "", 1.0, 0
        self._recoverable, self._shape = False, tuple(shape)

    def reset(self) -> None:
        if self.state != "no_model":
            self.state = "idle"
        self.reason, self._recoverable = "", False

    def model(self, loaded: bool) -> None:
        """A model (re)load: any track is gone; without a model nothing can be tracked."""
        self.state, self.reason, self._recoverable = ("idle" if loaded else "no_model"), "", False

    def _drop(self, reason: str) -> None:
        self.state, self.reason, self._recoverable, self._low = "lost", reason, False, 0

    def fail(self, reason: str) -> None:
        """Tracking raised an exception: the tracker's state is unknown, so an active track ends here."""
        if self.tracks_frames:
            self._drop(reason)

    def arrived(self, gap: float) -> bool:
        """A frame arrived `gap` s after the previous one; returns True when that gap just ended the track."""
        if not self.tracks_frames:
            return False
        if gap > self.rule.max_frame_gap:
            self._drop(f"video gap of {gap:.1f} s (> max_frame_gap {self.rule.max_frame_gap:g} s)")
            return True
        if self.state == "stale":
            self.state, self.reason = ("low_score" if self._low else "tracking"), ""
        return False

    def frame(self, shape: tuple[int, ...]) -> bool:
        """Whether to track a frame of this shape; a size different from the init frame's ends the track."""
        if not self.tracks_frames:
            return False
        if tuple(shape) != self._shape:
            old, new = _size(self._shape) if self._shape else "?", _size(tuple(shape))
            if old == new:  # a grey frame where colour ones came (a mono JPEG, say): name the channels
                old, new = (f"{_size(s)} (channels: {s[2] if len(s) > 2 else 1})" for s in (self._shape, shape))
            self._drop(f"frame size changed from {old} to {new}")
            return False
        return True

    def scored(self, score: float) -> bool:
        """The tracker's score on a frame; returns whether its box is published (False = lost)."""
        self.score = float(score)
        self._low = self._low + 1 if score < self.rule.lost_score else 0
        if self.state == "stale":
            return False  # a late result after "stale" was announced: no box the controller could act on
        if self._low >= self.rule.lost_frames and self.rule.policy != "keep":
            if self.state != "lost":
                self.reason = f"score below {self.rule.lost_score:g} for {self._low} frames"
            self.state, self._recoverable = "lost", self.rule.policy == "recover"
            return False
        self.state, self.reason, self._recoverable = ("low_score" if self._low else "tracking"), "", False
        return True

    def tick(self, age: float) -> str | None:
        """The newest frame is `age` s old: returns 'stale' or 'lost' when the state just became that."""
        if not self.tracks_frames or not age == age:  # NaN: no frame ever came
            return None
        if age > self.rule.max_frame_gap:
            self._drop(f"no frame for {age:.1f} s (> max_frame_gap {self.rule.max_frame_gap:g} s)")
            return "lost"
        if age > self.rule.stale_after and self.state != "stale":
            self.state, self.reason = "stale", f"no frame for {age:.1f} s"
            return "stale"
        return None
