"""The tracking loop that says when it is not on its target: confidence, state and re-detection.

`HonestTracker` is a `SiameseTracker` (same init / track, same attributes) that also keeps, after every
track(), a `status`: the network score, the confidence (mlkd_model.confidence) and the state
(mlkd_model.target_state). Every `check_every` frames (and on a frame whose box jumped) it checks the tracked
box against the init frame: the template branch on a crop at the box (appearance), and that template
searched in the init frame's search crop (recall).

While the state is `lost` it looks for the target around the last place where a check verified it: one
extra search per frame, taking the centre and eight positions around it in turn. It moves the track onto a
candidate only when the candidate passes the same checks better than what the tracker follows now; the
state then climbs back to `tracking` through the confidence like any other frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mlkd_model.confidence import Confidence, ConfidenceModel, cosine, foreground_logit, response_cues
from mlkd_model.families.registry import score_grid
from mlkd_model.params import TrackerParams
from mlkd_model.target_state import StateRule, TargetState
from mlkd_model.tracker import SiameseTracker, TrackerBackend, get_subwindow, to_blob

JUMP_CHECK = 0.5  # a box that moved this many target sizes from the crop centre is checked at once


class Status(NamedTuple):
    box: tuple[float, float, float, float]
    score: float
    confidence: float
    state: str


@dataclass(frozen=True)
class Redetection:
    """A candidate is taken when its score >= min_score, its recall and appearance (relative to the track's
    early levels) reach min_recall and min_appearance, and its recall exceeds the current box's by `margin`."""

    enabled: bool = True
    min_score: float = 0.8
    min_recall: float = 0.9
    min_appearance: float = 0.9
    margin: float = 0.2
    ring: float = 0.6  # probe centres this many search-crop sides from the last sure position


class HonestTracker(SiameseTracker):
    def __init__(
        self,
        backend: TrackerBackend,
        params: TrackerParams | None = None,
        confidence: ConfidenceModel | None = None,
        rule: StateRule | None = None,
        redetection: Redetection | None = None,
        check_every: int = 8,
    ) -> None:
        super().__init__(backend, params)
        if check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.confidence = Confidence(confidence or ConfidenceModel())
        self.target_state = TargetState(rule)
        self.redetection = redetection or Redetection()
        self.check_every = check_every
        self.status: Status | None = None
        self.reacquired = 0  # re-detections taken in this track
        self._init_kernels: list[np.ndarray] | None = None
        self._init_search: np.ndarray | None = None
        self._near_centre = np.zeros(0, bool)
        self._sure: tuple[np.ndarray, np.ndarray] | None = None  # centre and size where last verified
        self._frames = 0
        self._probe = 0

    def init(self, frame: np.ndarray, box: Sequence[float], color: str = "bgr") -> None:
        super().init(frame, box, color)
        self.confidence.reset()
        self.target_state.start()
        p = self.params
        checks = hasattr(self.backend, "kernels") and hasattr(self.backend, "search_with")
        self._init_kernels = self._kernels_at(frame, self.center, self.size, color) if checks else None
        if checks:  # the init frame as the first search would see it, kept for recall checks
            s_x = round(self._context_size() * p.instance_size / p.exemplar_size)
            crop = get_subwindow(frame, self.center, p.instance_size, s_x, self._pad_value(color))
            self._init_search = to_blob(crop, self._swap(color)).copy()
            xx, yy = score_grid(p.score_size, p.stride)
            self._near_centre = (np.hypot(xx, yy) <= p.stride).ravel()
        self._sure = (self.center.copy(), self.size.copy())
        self._frames = self._probe = self.reacquired = 0
        x, y, w, h = (float(v) for v in box)
        self.status = Status((x, y, w, h), 1.0, 1.0, "tracking")

    def track(self, frame: np.ndarray, color: str = "bgr") -> tuple[tuple[float, float, float, float], float]:
        box, score = super().track(frame, color)
        p, last = self.params, self.last
        cues = response_cues(last, p.score_size, p.stride) if last is not None else (math.nan,) * 3
        self._frames += 1
        due = self._frames % self.check_every == 0 or self.confidence.calibrating or cues[2] > JUMP_CHECK
        if due and self._init_kernels is not None:
            self.confidence.checked(*self._check(frame, self.center, self.size, color))
            if self.confidence.features_checked[1] >= self.redetection.min_recall:  # verified here, now
                self._sure = (self.center.copy(), self.size.copy())
        conf = self.confidence.update(score, cues, box[2] * box[3])
        state = self.target_state.update(conf)
        if state == "lost" and self.redetection.enabled and self._init_kernels is not None:
            found = self._redetect(frame, color)
            if found is not None:
                box, score = found
        self.status = Status(box, score, conf, state)
        return box, score

    def _kernels_at(self, image: np.ndarray, center: np.ndarray, size: np.ndarray, color: str) -> list[np.ndarray]:
        return self.backend.kernels(self.template_blob(image, center, size, self.channel_average, color))  # type: ignore[attr-defined]

    def _check(self, image: np.ndarray, center: np.ndarray, size: np.ndarray, color: str) -> tuple[float, float]:
        """(appearance cosine, recall) of a box against the init frame, raw (the track's levels not applied)."""
        kernels = self._kernels_at(image, center, size, color)
        cls, _ = self.backend.search_with(kernels, self._init_search)  # type: ignore[attr-defined]
        recall = float(foreground_logit(cls, self.params.score_size).ravel()[self._near_centre].max())
        return cosine(kernels, self._init_kernels), recall  # type: ignore[arg-type]

    def _redetect(self, frame: np.ndarray, color: str) -> tuple[tuple[float, float, float, float], float] | None:
        """One probe search; moves the track onto its candidate when verification agrees, else changes nothing."""
        r, c = self.redetection, self.confidence
        sure_center, sure_size = self._sure  # type: ignore[misc]
        s_x = self._context_size() * self.params.instance_size / self.params.exemplar_size
        k = self._probe % 9  # the last sure position, then 8 around it
        self._probe += 1
        angle = k * math.pi / 4
        offset = np.zeros(2) if k == 0 else r.ring * s_x * np.array([math.cos(angle), math.sin(angle)])
        keep = (self.center, self.size, self.last)
        self.center, self.size = sure_center + offset, sure_size.copy()
        box, score = SiameseTracker.track(self, frame, color)
        if score >= r.min_score:
            cos, recall = self._check(frame, self.center, self.size, color)
            _, recall_now = self._check(frame, keep[0], keep[1], color)
            appearance, recall, recall_now = cos / c.level(0), recall / c.level(1), recall_now / c.level(1)
            if appearance >= r.min_appearance and recall >= r.min_recall and recall >= recall_now + r.margin:
                self.reacquired += 1
                return box, score
        self.center, self.size, self.last = keep  # refused: the track goes on as if no probe had run
        return None
