"""Video in for the Olympe bridge: newest decoded frame of a drone's RTSP stream or a local MP4, as BGR.

`PdrawSource` plays the URL through Olympe's Pdraw (the path a Parrot Anafi needs); `OpenCVSource`
reads it with OpenCV's FFmpeg capture where Olympe is not installed (about 30 ms more latency).
Both keep only the newest frame: a tracker that falls behind gets the latest picture, never a queue.
A supervisor thread reconnects a live stream (rtsp://) that ends or stalls, with exponential back-off;
a file just ends.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger("mlkd.video")


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR, owned (copied out of the decoder's buffer)
    stamp_ns: int  # wall clock (time.time_ns) when the frame's first bytes reached this host
    media_us: int  # presentation time in the stream (µs from the session start), for order and rate
    seq: int  # frames received by this source since it was created (never resets on reconnect)
    session: int  # connection number: 1 for the first, +1 per reconnect


class LatestFrame:
    """A one-frame mailbox: put() replaces, get() waits for a frame newer than the caller's last."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None

    def put(self, frame: Frame) -> None:
        with self._cond:
            self._frame = frame
            self._cond.notify_all()

    def get(self, after_seq: int = 0, timeout: float | None = None) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None and self._frame.seq > after_seq, timeout)
            f = self._frame
            return f if f is not None and f.seq > after_seq else None


def yuv420_to_bgr(yuv: np.ndarray, semiplanar: bool) -> np.ndarray:
    """(h*3/2, w) uint8 I420 (planar) or NV12 (semi-planar) -> new (h, w, 3) BGR array."""
    code = cv2.COLOR_YUV2BGR_NV12 if semiplanar else cv2.COLOR_YUV2BGR_I420
    return cv2.cvtColor(yuv, code)  # writes a new array: safe once the decoder reuses its buffer


def backoff_delays(first: float = 0.5, factor: float = 2.0, cap: float = 5.0):
    """0.5, 1, 2, 4, 5, 5, ... seconds: quick retries for a WiFi blip, no hammering of a gone drone."""
    d = first
    while True:
        yield d
        d = min(d * factor, cap)


class VideoSource:
    """Common supervision: open, watch for end/stall, reconnect with back-off; subclasses decode."""

    def __init__(self, url: str, stall_timeout: float = 2.0):
        self.url = url
        self.live = not url.startswith(("file://", "/")) and "://" in url
        self.stall_timeout = stall_timeout
        self.frames = LatestFrame()
        self.state = "idle"
        self.reconnects = 0
        self._seq = 0
        self._session = 0
        self._last_frame_t = 0.0
        self._ended = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- subclass interface
    def _open(self) -> bool:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    # --- used by subclasses from their decoding thread
    def _deliver(self, bgr: np.ndarray, stamp_ns: int, media_us: int) -> None:
        self._seq += 1
        self._last_frame_t = time.monotonic()
        self.frames.put(Frame(bgr, stamp_ns, media_us, self._seq, self._session))

    def _set_state(self, state: str, detail: str = "") -> None:
        if state != self.state:
            log.info("video %s: %s %s", self.url, state, detail)
        self.state = state

    # --- public
    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="video-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._ended.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _supervise(self) -> None:
        delays = backoff_delays()
        while not self._stop.is_set():
            self._session += 1
            self._ended.clear()
            self._set_state("connecting", self.url)
            opened_at = time.monotonic()
            self._last_frame_t = opened_at
            ok = self._open()
            if ok:
                self._set_state("streaming")
                # Wait for the end of the stream or a stall (a live stream that stops sending sends no "end").
                while not self._stop.is_set() and not self._ended.wait(0.1):
                    if self.live and time.monotonic() - self._last_frame_t > self.stall_timeout:
                        log.warning("video %s: no frame for %.1f s", self.url, self.stall_timeout)
                        break
                if self._seq and self._last_frame_t > opened_at:
                    delays = backoff_delays()  # it streamed: the next outage starts with a quick retry
            self._close()
            if self._stop.is_set():
                break
            if not self.live and ok:
                self._set_state("ended")
                return
            delay = next(delays)
            self.reconnects += 1
            self._set_state("reconnecting", f"in {delay:.1f} s")
            self._stop.wait(delay)
        self._set_state("stopped")


def _stamp_from_pomp(local_us: int) -> int:
    """Wall-clock ns of a Pdraw `local_timestamp` (µs of CLOCK_MONOTONIC when the frame arrived)."""
    now_wall, now_mono = time.time_ns(), time.monotonic_ns()
    age = now_mono - local_us * 1000
    if 0 <= age < 2_000_000_000:  # sanity: otherwise the clock is not what we think, use "now"
        return now_wall - age
    return now_wall


class PdrawSource(VideoSource):
    """Olympe Pdraw: RTSP (drone, simulator, test server) or file:// MP4, I420/NV12 decoded by Pdraw."""

    def __init__(self, url: str, media_name: str = "Front camera", **kw) -> None:
        super().__init__(url, **kw)
        self.media_name = media_name
        self._pdraw = None

    def _open(self) -> bool:
        from olympe.features.video.pdraw import Callbacks, Pdraw, StreamInfo, StreamInfoDefault
        from olympe_deps import VDEF_FRAME_TYPE_RAW

        def callbacks() -> list:
            return [Callbacks(media_type=(VDEF_FRAME_TYPE_RAW, None), video_frame=self._on_frame, end=self._ended.set)]

        # The drone's camera is the media named `media_name`; the default media catches servers that
        # do not name it (GStreamer's RTSP server names its media "stream=0").
        streams = [StreamInfo(name=self.media_name, callbacks=callbacks()), StreamInfoDefault(callbacks=callbacks())]
        self._pdraw = Pdraw(name="mlkd_bridge")
        try:
            ok = bool(self._pdraw.play_multiple_stream(url=self.url, streams_list=streams, timeout=5))
        except Exception as exc:  # Pdraw raises on some malformed URLs / states; treat like a failed open
            log.warning("video %s: play failed: %s", self.url, exc)
            ok = False
        if not ok:
            log.warning("video %s: cannot open", self.url)
        return ok

    def _on_frame(self, frame) -> None:
        # Runs on Pdraw's callback thread; the frame buffer is only valid until we return.
        info = frame.info()
        raw = info["raw"]["frame"]
        yuv = frame.as_ndarray()
        if yuv is None:
            return
        bgr = yuv420_to_bgr(yuv, "SEMIPLANAR" in raw["format"].upper())
        media_us = int(raw["timestamp"] * 1_000_000 // max(1, raw["timescale"]))
        self._deliver(bgr, _stamp_from_pomp(int(info.get("local_timestamp", 0))), media_us)

    def _close(self) -> None:
        if self._pdraw is None:
            return
        try:
            # After a file ends Pdraw is already closing: destroy() without stop() (stop() would block).
            if self.live and not self._ended.is_set():
                self._pdraw.stop(timeout=3)
            self._pdraw.destroy()
        except Exception as exc:
            log.debug("video %s: close: %s", self.url, exc)
        self._pdraw = None


class OpenCVSource(VideoSource):
    """OpenCV FFmpeg capture fallback; paces files at their frame rate to behave like a live camera."""

    def __init__(self, url: str, **kw) -> None:
        super().__init__(url, **kw)
        self._reader: threading.Thread | None = None
        self._cap = None

    def _open(self) -> bool:
        path = self.url[len("file://") :] if self.url.startswith("file://") else self.url
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            return False
        self._cap = cap
        self._reader = threading.Thread(target=self._read, args=(cap,), name="video-reader", daemon=True)
        self._reader.start()
        return True

    def _read(self, cap) -> None:
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        t0 = time.monotonic()
        n = 0
        while not self._stop.is_set() and not self._ended.is_set():
            ok, bgr = cap.read()
            if not ok:
                break
            stamp = time.time_ns()
            if not self.live:
                time.sleep(max(0.0, t0 + n / fps - time.monotonic()))
            self._deliver(bgr, stamp, int(n * 1e6 / fps))
            n += 1
        self._ended.set()

    def _close(self) -> None:
        self._ended.set()
        if self._reader:
            self._reader.join(timeout=5)
        if self._cap is not None:
            self._cap.release()
        self._cap = self._reader = None


def olympe_available() -> bool:
    try:
        import olympe  # noqa: F401
    except ImportError:
        return False
    return True


def open_source(url: str, media_name: str = "Front camera", backend: str = "auto", **kw) -> VideoSource:
    """backend: 'pdraw', 'opencv', or 'auto' (Pdraw when Olympe imports, else OpenCV)."""
    if "://" not in url:  # a path: Pdraw wants an absolute file:// URL
        url = "file://" + os.path.abspath(url)
    if backend == "pdraw" or (backend == "auto" and olympe_available()):
        return PdrawSource(url, media_name=media_name, **kw)
    if backend == "auto":
        log.warning("Olympe is not installed: reading %s with OpenCV's FFmpeg capture instead of Pdraw", url)
    return OpenCVSource(url, **kw)
