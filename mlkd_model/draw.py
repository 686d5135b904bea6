"""Annotated output video: the tracked box and its score on every frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class AnnotatedVideo:
    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray, box: tuple[float, ...], score: float | None) -> None:
        if self.writer is None:
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise OSError(f"cannot write video {self.path}")
        out = frame.copy()
        x, y, w, h = (round(v) for v in box)
        color = (0, 255, 0) if score is None or score >= 0.5 else (0, 165, 255)
        cv2.rectangle(out, (x, y), (x + w, y + h), color, 2)
        label = "init" if score is None else f"{score:.2f}"
        cv2.putText(out, label, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
        self.writer.write(out)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
