"""Confidence-gated template update: temporal adaptation at inference, after EATrack's idea, simplified.

The template the network correlates against is the first frame's crop. At night the target's
appearance drifts (lights, exposure, pose), so on frames where the tracker is confident (score >=
`threshold`, at most once per `interval` frames) the template becomes a blend of the first crop and the
current one: z = (1 - rate) * z_first + rate * z_now. Blending with the *first* crop (not the last
template) bounds the drift: one bad update is forgotten at the next. Off by default; Table II in
docs/training.md has its ablation row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlkd_model.tracker import SiameseTracker


class TemplateUpdatingTracker:
    """Wraps a SiameseTracker: same init / track interface, plus the gated template update."""

    def __init__(self, tracker: SiameseTracker, threshold: float = 0.9, interval: int = 10, rate: float = 0.15) -> None:
        if not 0.0 < rate <= 1.0 or interval < 1 or not 0.0 <= threshold <= 1.0:
            raise ValueError(
                f"template update needs 0 < rate <= 1, interval >= 1, 0 <= threshold <= 1, got "
                f"rate={rate}, interval={interval}, threshold={threshold}"
            )
        self.tracker = tracker
        self.threshold, self.interval, self.rate = threshold, interval, rate
        self._first: np.ndarray | None = None
        self._since = 0
        self.updates = 0

    def _template(self, frame: np.ndarray, color: str) -> np.ndarray:
        t = self.tracker
        return t.template_blob(frame, t.center, t.size, t.channel_average, color)

    def init(self, frame: np.ndarray, box: Sequence[float], color: str = "bgr") -> None:
        self.tracker.init(frame, box, color)
        self._first = self._template(frame, color).astype(np.float32)
        self._since = 0
        self.updates = 0

    def track(self, frame: np.ndarray, color: str = "bgr") -> tuple[tuple[float, float, float, float], float]:
        box, score = self.tracker.track(frame, color)
        self._since += 1
        if score >= self.threshold and self._since >= self.interval and self._first is not None:
            now = self._template(frame, color)
            self.tracker.backend.set_template((1 - self.rate) * self._first + self.rate * now)
            self._since = 0
            self.updates += 1
        return box, score
