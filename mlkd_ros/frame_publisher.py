"""The Olympe bridge's video side: newest decoded frame -> camera/image (+ /compressed) and camera/camera_info.

Frames come from a mlkd_ros/video.py source (Pdraw or OpenCV), on this module's own thread, stamped with
the time their first bytes reached this host. Resizing (width x height, 0 = as decoded) keeps the stream's
aspect ratio unless `keep_aspect` is false: the picture is scaled to fit inside that size. Size, aspect,
frame_id and field of view are read for every frame, so parameters changed at run time apply at once.
"""

from __future__ import annotations

import math
import threading
import time

import cv2
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mlkd_ros.dds import IMAGE_QOS
from mlkd_ros.image_conversion import numpy_to_compressed, numpy_to_image
from mlkd_ros.topics import CAMERA_INFO_TOPIC, IMAGE_TOPIC, compressed_topic


def fit_size(w: int, h: int, width: int, height: int, keep_aspect: bool) -> tuple[int, int]:
    """Published size of a w x h frame for the requested width x height (either 0 = as decoded)."""
    if not (width and height):
        return w, h
    if not keep_aspect:
        return width, height
    scale = min(width / w, height / h)  # fit inside: 1280x720 into 640x480 -> 640x360
    return max(2, round(w * scale)), max(2, round(h * scale))


def camera_info(header, w: int, h: int, hfov: float) -> CameraInfo:
    """Pinhole from the horizontal FOV (radians), no distortion: the Anafi streams a rectified picture."""
    fx = (w / 2.0) / math.tan(hfov / 2.0)
    info = CameraInfo(header=header, width=w, height=h, distortion_model="plumb_bob")
    info.d = [0.0] * 5
    info.k = [fx, 0.0, (w - 1) / 2.0, 0.0, fx, (h - 1) / 2.0, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, (w - 1) / 2.0, 0.0, 0.0, fx, (h - 1) / 2.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


class FramePublisher:
    """Publishers on `node` and the thread that feeds them from `source` (start() / stop via `stop_event`)."""

    def __init__(self, node, frame_id: str, hfov: float, jpeg_quality: int | None) -> None:
        self.width = self.height = 0
        self.keep_aspect = True
        self.frame_id, self.hfov, self.jpeg_quality = frame_id, hfov, jpeg_quality
        self.image_pub = node.create_publisher(Image, IMAGE_TOPIC, IMAGE_QOS)
        # image_transport's convention: JPEG on <image topic>/compressed
        self.compressed_pub = (
            None if jpeg_quality is None else node.create_publisher(CompressedImage, compressed_topic(node), IMAGE_QOS)
        )
        self.info_pub = node.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, IMAGE_QOS)
        self.published, self.fps = 0, 0.0
        self._fps_t, self._fps_n = time.monotonic(), 0

    def size(self, w: int, h: int) -> tuple[int, int]:
        return fit_size(w, h, self.width, self.height, self.keep_aspect)

    def start(self, source, stop: threading.Event) -> None:
        threading.Thread(target=self._run, args=(source, stop), name="bridge-publish", daemon=True).start()

    def _run(self, source, stop: threading.Event) -> None:
        if not source.live:
            # A file has a beginning: wait (up to 10 s) for a subscriber so its first frames are not lost.
            end = time.monotonic() + 10.0
            while self.image_pub.get_subscription_count() == 0 and time.monotonic() < end:
                time.sleep(0.05)
            time.sleep(0.3)  # matched is not yet connected: give DDS a moment to finish the handshake
        source.start()
        seq = 0
        while not stop.is_set():
            f = source.frames.get(seq, timeout=0.5)
            if f is not None:
                seq = f.seq
                self._publish(f.image, f.stamp_ns)

    def _publish(self, img, stamp_ns: int) -> None:
        size = self.size(img.shape[1], img.shape[0])
        if size != (img.shape[1], img.shape[0]):
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        msg = numpy_to_image(img, "bgr8")
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        msg.header.frame_id = self.frame_id
        self.image_pub.publish(msg)
        if self.compressed_pub is not None:
            self.compressed_pub.publish(numpy_to_compressed(img, self.jpeg_quality, msg.header))
        self.info_pub.publish(camera_info(msg.header, img.shape[1], img.shape[0], self.hfov))
        self.published += 1
        self._fps_n += 1
        now = time.monotonic()
        if now - self._fps_t >= 1.0:
            self.fps, self._fps_t, self._fps_n = self._fps_n / (now - self._fps_t), now, 0
