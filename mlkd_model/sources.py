"""Frame sources for `mlkd track`: a video file, a folder of images, or an OTB-layout sequence (image
folder or `video.mp4` beside `groundtruth_rect.txt`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mlkd_model.boxes import bounding_box, is_labelled
from mlkd_model.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
# FFmpeg opens any .txt (or .ans, .bin, ...) file as "video" (its tty demuxer draws the characters, codec
# "ansi"): a ground-truth file given as the source would otherwise be tracked as a few frames of text.
TEXT_CODEC = b"ansi"


class SourceError(UserError, ValueError):
    """A tracking source that cannot be read."""


@dataclass
class FrameSource:
    name: str
    path: Path
    images: list[Path] | None  # None: a video file
    first_box: tuple[float, float, float, float] | None  # from ground truth, if the source has it
    fps: float = 30.0

    def __len__(self) -> int:
        if self.images is not None:
            return len(self.images)
        cap = cv2.VideoCapture(str(self.path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        return n

    def frames(self) -> Iterator[np.ndarray]:
        if self.images is not None:
            for p in self.images:
                img = cv2.imread(str(p), cv2.IMREAD_COLOR)
                if img is None:
                    raise SourceError(f"cannot read image {p}")
                yield img
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    return
                yield img
        finally:
            cap.release()


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _first_gt_box(gt: Path) -> tuple[float, float, float, float] | None:
    for line in gt.read_text().splitlines():
        line = line.split("#", 1)[0]
        values = [float(v) for v in line.replace(",", " ").replace("\t", " ").split()]
        if len(values) >= 4 and is_labelled(values[:4]):
            if len(values) == 8:  # polygon -> axis-aligned box
                x, y, w, h = (float(v) for v in bounding_box(values[0::2], values[1::2]))
                return x, y, w, h
            return values[0], values[1], values[2], values[3]
        return None  # first frame unlabelled: the user must give --init
    return None


def open_source(path: str | Path) -> FrameSource:
    path = Path(path)
    if not path.exists():
        raise SourceError(f"source {path} does not exist")
    if path.is_file():
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise SourceError(f"cannot open video {path} (not a video file OpenCV can read)")
        codec = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little")
        if codec == TEXT_CODEC:
            cap.release()
            raise SourceError(
                f"{path} is a text file, not a video: give a video, a folder of images or an OTB sequence folder"
            )
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        cap.release()
        return FrameSource(path.stem, path, None, None, fps)
    gt = path / "groundtruth_rect.txt"
    video = path / "video.mp4"  # a sequence stored as video (shared/data/sequences/train_video)
    if not (path / "img").is_dir() and video.is_file():
        source = open_source(video)
        source.name, source.first_box = path.name, _first_gt_box(gt) if gt.is_file() else None
        return source
    if (path / "img").is_dir():
        images = _images_in(path / "img")
        box = _first_gt_box(gt) if gt.is_file() else None
    else:
        images = _images_in(path)
        init_file = path / "init_box.txt"  # a hand-drawn first-frame box, as the shipped demo clip has
        box = _first_gt_box(init_file) if init_file.is_file() else None
    if not images:
        raise SourceError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}")
    return FrameSource(path.name, path, images, box)
