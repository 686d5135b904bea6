"""Which reference the tracker node measures a box's centre against (no ROS): pure matching logic.

Live, the reference is the image centre: the result is the offset a follow controller corrects, not a
CLE, and the node publishes it on its own topic (tracker/offset; the CLE goes on tracker/cle).
In a replay it is the ground truth: from a file (line i = the i-th image received; an unlabelled or
missing line falls back to the image centre) or from a topic matched by stamp. Over DDS the ground
truth and the frame race, so a box tracked before its ground truth arrived waits for it instead of
being measured against the image centre; a ground truth saying "no box" means no CLE for that frame.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from mlkd_model.boxes import Box, center, is_labelled


@dataclass(frozen=True)
class Cle:
    key: object  # what the caller gave with the box (its message header)
    box_center: tuple[float, float]
    ref: tuple[float, float]
    ground_truth: bool = True  # ref is the ground truth's centre (a CLE), else the image centre (an offset)

    @property
    def xy(self) -> tuple[float, float]:
        return self.box_center[0] - self.ref[0], self.box_center[1] - self.ref[1]


class CleMatcher:
    def __init__(self, gt_file: np.ndarray | None = None, gt_topic: bool = False, keep: int = 1000) -> None:
        self.gt_file, self.gt_topic, self.keep = gt_file, gt_topic, keep
        self._by_stamp: dict[int, Box | None] = {}
        self._waiting: dict[int, tuple[object, tuple[float, float]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _trim(d: dict, keep: int) -> None:
        while len(d) > keep:
            d.pop(next(iter(d)))

    def ground_truth(self, stamp: int, box: Box | None) -> Cle | None:
        """Ground truth of the frame `stamp` (None = unlabelled); returns a waiting box's CLE, if any."""
        with self._lock:
            self._by_stamp[stamp] = box
            self._trim(self._by_stamp, self.keep)
            waiting = self._waiting.pop(stamp, None)
        if waiting is not None and is_labelled(box):
            return Cle(waiting[0], waiting[1], center(box))
        return None

    def box(self, key: Hashable, stamp: int, box: Box, shape: tuple[int, ...], index: int | None) -> Cle | None:
        """The CLE of a box tracked on frame `stamp` (the `index`-th received), or None for now / never."""
        box_center = center(box)
        with self._lock:
            known = stamp in self._by_stamp
            gt = self._by_stamp.get(stamp)
            if self.gt_topic and not known:
                self._waiting[stamp] = (key, box_center)
                self._trim(self._waiting, self.keep)
                return None
        if gt is None and self.gt_file is not None and index is not None and index < len(self.gt_file):
            gt = tuple(float(v) for v in self.gt_file[index])
        if is_labelled(gt):
            return Cle(key, box_center, center(gt))
        if self.gt_topic:
            return None  # the topic said this frame has no ground truth
        return Cle(key, box_center, ((shape[1] - 1) / 2, (shape[0] - 1) / 2), ground_truth=False)
