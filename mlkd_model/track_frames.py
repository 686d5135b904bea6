"""Run a tracker over a sequence of frames: the one loop behind `mlkd track`, `mlkd eval` and offline replay.

Numpy only. The tracker is anything with init(frame, box) and track(frame) -> (box, score), e.g. what
`mlkd_model.load.load_tracker` returns.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import NamedTuple, Protocol

import numpy as np

NO_BOX = (float("nan"),) * 4


class Tracker(Protocol):
    def init(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> None: ...

    def track(self, frame: np.ndarray) -> tuple[tuple[float, ...], float]: ...


class Step(NamedTuple):
    index: int
    box: tuple[float, ...]  # x, y, w, h; NO_BOX before the init frame
    score: float | None  # None on the init frame and before it
    seconds: float  # the tracker's time on this frame (init or track); 0 before the init frame
    frame: np.ndarray | None  # the frame itself (to draw on), as given
    confidence: float | None = None  # the tracker's `status` (mlkd_model.honest_tracker), where it keeps one
    state: str | None = None  # tracking / uncertain / lost; None before the init frame or without a status


def track_frames(
    tracker: Tracker, frames: Iterable[np.ndarray | None], box: tuple[float, ...], start: int = 0
) -> Iterator[Step]:
    """One Step per frame: NO_BOX before frame `start` (those frames are never read, so they may be None),
    init on frame `start` with `box` (reported as that box), track on every later frame."""
    box0 = tuple(float(v) for v in box)
    for i, frame in enumerate(frames):
        if i < start:
            yield Step(i, NO_BOX, None, 0.0, frame)
            continue
        t0 = time.perf_counter()
        if i == start:
            tracker.init(frame, box0)  # type: ignore[arg-type]
            out, score = box0, None
        else:
            out, score = tracker.track(frame)  # type: ignore[arg-type]
        seconds = time.perf_counter() - t0
        status = getattr(tracker, "status", None)
        confidence, state = (status.confidence, status.state) if status is not None else (None, None)
        yield Step(i, tuple(float(v) for v in out), score, seconds, frame, confidence, state)
