"""`mlkd eval -t opencv_nano`: OpenCV's own NanoTrack loop as a baseline beside this project's trackers.

It runs the stock NanoTrack v2 weights through a tracking loop that shares no code with ours, so an
evaluation (and tests/test_tracker.py) can tell a difference of the loop from one of the weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class OpenCVNano:
    """OpenCV's cv2.TrackerNano on NanoTrack's split ONNX files (backbone, neck+head): an independent tracking loop."""

    def __init__(self, backbone: Path, head: Path) -> None:
        import cv2

        for path in (backbone, head):
            if not path.is_file():
                raise FileNotFoundError(f"OpenCV TrackerNano needs {path}; pass opencv_nano=BACKBONE.onnx,HEAD.onnx")
        self._params = cv2.TrackerNano_Params()
        self._params.backbone, self._params.neckhead = str(backbone), str(head)
        self._create = cv2.TrackerNano_create
        self._tracker = None

    def init(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> None:
        self._tracker = self._create(self._params)
        self._tracker.init(frame, tuple(round(v) for v in box))  # OpenCV takes an integer Rect

    def track(self, frame: np.ndarray) -> tuple[tuple[float, float, float, float], float]:
        assert self._tracker is not None, "init() first"
        ok, box = self._tracker.update(frame)
        score = float(self._tracker.getTrackingScore())
        if not ok:
            return (float("nan"),) * 4, score
        return tuple(float(v) for v in box), score  # type: ignore[return-value]
