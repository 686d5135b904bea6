"""Frame and box validation shared by every entry point (CLI, ROS node, evaluation)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from mlkd_model.errors import UserError

COLOR_ORDERS = ("bgr", "rgb", "gray")


class FrameError(UserError, ValueError):
    """A frame that cannot be tracked on (wrong shape, dtype or colour layout)."""


class BoxError(UserError, ValueError):
    """A box that cannot start or describe a track (outside the frame, zero or NaN size)."""


def check_frame(frame: np.ndarray, color: str) -> np.ndarray:
    """Validate a frame without converting it: uint8 HxWx3 for bgr / rgb, HxW for gray (HxWx1 is squeezed).

    The tracker crops from the frame as it comes and puts channels in order on the small crop, so a
    1280x720 rgb or gray frame costs no full-frame colour conversion.
    """
    if color not in COLOR_ORDERS:
        raise FrameError(f"unknown colour order {color!r}; expected one of {COLOR_ORDERS}")
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame dtype must be uint8, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if color == "gray":
        if frame.ndim != 2:
            raise FrameError(f"a gray frame must be HxW (or HxWx1), got shape {frame.shape}")
    elif frame.ndim != 3 or frame.shape[2] != 3:
        raise FrameError(f"a {color} frame must be HxWx3, got shape {frame.shape}")
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        raise FrameError(f"frame is too small to track on: {frame.shape[1]}x{frame.shape[0]}")
    return frame


def to_bgr(frame: np.ndarray, color: str) -> np.ndarray:
    """Validate a frame and return it as contiguous uint8 HxWx3 BGR (no copy when already so)."""
    frame = check_frame(frame, color)
    if color == "gray":
        out = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    else:
        out = frame if color == "bgr" else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(out)


# Largest box side, as a multiple of the frame's side. The tracking loop clips every box it produces to
# the frame (SiameseTracker.track), so a track never holds a larger box: a bigger init cannot be tracked
# as drawn and only inflates the context crop (padded at full resolution: a 5000 px box on a 360x240 frame
# took 1 GB). 1.0 still admits a whole-frame box and one drawn partly past an edge.
MAX_BOX_SCALE = 1.0


def check_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """Validate an x,y,w,h box (top-left corner, pixels) against a width x height frame."""
    if len(box) != 4:
        raise BoxError(f"a box is 4 numbers x,y,w,h; got {len(box)}: {list(box)}")
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise BoxError(f"box has a NaN or infinite value: {[x, y, w, h]}")
    if w <= 0 or h <= 0:
        raise BoxError(f"box must have positive width and height, got w={w:g} h={h:g}")
    if w > width * MAX_BOX_SCALE or h > height * MAX_BOX_SCALE:
        raise BoxError(f"box {w:g}x{h:g} is larger than the {width}x{height} frame")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise BoxError(f"box {[x, y, w, h]} lies outside the {width}x{height} frame")
    return x, y, w, h


def parse_box(text: str) -> tuple[float, float, float, float]:
    """Parse 'x,y,w,h' (commas, spaces or tabs)."""
    parts = text.replace(",", " ").replace("\t", " ").split()
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise BoxError(f"cannot read box {text!r}: expected four numbers x,y,w,h") from exc
    if len(values) != 4:
        raise BoxError(f"cannot read box {text!r}: expected four numbers x,y,w,h, got {len(values)}")
    return values[0], values[1], values[2], values[3]
