"""Annotated output video: the tracked box, its score and the tracker's state on every frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# BGR colour of each state: green while the tracker is on its target, amber when unsure, red when lost
STATE_COLORS = {"tracking": (0, 200, 0), "uncertain": (0, 165, 255), "lost": (0, 0, 255)}


class AnnotatedVideo:
    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None

    def write(
        self,
        frame: np.ndarray,
        box: tuple[float, ...],
        score: float | None,
        state: str | None = None,
        confidence: float | None = None,
    ) -> None:
        if self.writer is None:
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise OSError(f"cannot write video {self.path}")
        out = frame.copy()
        if state is None:
            color = (0, 255, 0) if score is None or score >= 0.5 else (0, 165, 255)
        else:
            color = STATE_COLORS.get(state, (160, 160, 160))
        if all(np.isfinite(box)):
            x, y, w, h = (round(v) for v in box)
            cv2.rectangle(out, (x, y), (x + w, y + h), color, 2)
            label = "init" if score is None else f"{score:.2f}"
            cv2.putText(out, label, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
        if state is not None:  # the state in the corner, where the eye finds it on every frame
            text = state.upper() + ("" if confidence is None else f"  confidence {confidence:.2f}")
            cv2.rectangle(out, (0, 0), (12 + 11 * len(text), 26), (0, 0, 0), -1)
            cv2.putText(out, text, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, color, 1, cv2.LINE_AA)
        self.writer.write(out)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
