"""Tracking that fails, with the tracker as a process: the lost state goes out at once, and a compressed
frame too large to decode is refused from its header.

- A grey JPEG or a JPEG of another resolution mid-track (compressed transport) ends the track with an
  empty polygon on that very frame (was: AttributeError on the buffered CompressedImages, no polygon).
- Any exception inside tracking (injected: the tracker's track() raises) publishes the empty polygon for
  that frame and drops the track: the tracker's state is unknown, only a new init resumes.
- A PNG decompression bomb (a few hundred KB that decode to 16000x16000) is refused before decoding:
  the node's peak memory does not move.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PolygonStamped
from sensor_msgs.msg import CompressedImage
from test_bad_input import errors_with
from test_safe_following import tracker_status, values
from test_tracker_launch import init_msg, start_tracker

from mlkd_ros.camera_frame import CAMERA_FRAME
from mlkd_ros.dds import CONTROL_QOS, IMAGE_QOS
from mlkd_ros.image_conversion import numpy_to_compressed


def stamp(header) -> tuple[int, int]:
    return header.stamp.sec, header.stamp.nanosec


def png_bomb(side: int) -> bytes:
    """An RGB PNG of side x side black pixels, compressed row by row (never held decoded here)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    z = zlib.compressobj(9)
    row = bytes(1 + 3 * side)  # filter byte 0, then the pixels
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8 bits, colour type 2 = RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in kB."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in lines) if k in ("VmRSS", "VmHWM")}


class JpegCamera:
    """CompressedImage frames on camera/image/compressed, stamped now."""

    def __init__(self, probe, frames) -> None:
        self.probe = probe
        self.pub = probe.node.create_publisher(CompressedImage, "camera/image/compressed", IMAGE_QOS)
        self.jpegs = [numpy_to_compressed(f) for f in frames]
        self.index = 0

    def publish(self, msg: CompressedImage | None = None) -> CompressedImage:
        if msg is None:
            msg, self.index = self.jpegs[self.index % len(self.jpegs)], self.index + 1
        msg.header.stamp = self.probe.node.get_clock().now().to_msg()
        msg.header.frame_id = CAMERA_FRAME
        self.pub.publish(msg)
        return msg

    def stream(self, n: int, init_pub=None, box=None) -> None:
        """n frames at 30 Hz; with init_pub, an init of `box` on the first of them."""
        for i in range(n):
            msg = self.publish()
            if i == 0 and init_pub is not None:
                init_pub.publish(init_msg(msg.header, box))
            self.probe.spin(1 / 30)


def test_grey_or_resized_jpeg_mid_track_publishes_lost_at_once(launcher, probe, sequence):
    frames, gt = sequence
    launcher.start("ground_station.launch.xml", ["tracker"], image_transport="compressed")
    boxes = probe.record(PolygonStamped, "tracker/box", CONTROL_QOS)
    diags = probe.record(DiagnosticArray, "/diagnostics", CONTROL_QOS)
    init_pub = probe.node.create_publisher(PolygonStamped, "tracker/init", CONTROL_QOS)
    cam = JpegCamera(probe, frames[:40])
    assert probe.wait_matched(cam.pub, 30) and probe.wait_matched(init_pub, 10), launcher.log("tracker")
    grey = numpy_to_compressed(cv2.cvtColor(frames[20], cv2.COLOR_BGR2GRAY))  # "mono8; jpeg compressed mono8"
    larger = numpy_to_compressed(cv2.resize(frames[20], None, fx=2, fy=2))
    for odd in (grey, larger):
        cam.index = 0
        cam.stream(15, init_pub, gt[0])
        assert probe.spin_until(lambda: boxes and boxes[-1][1].polygon.points, 5), launcher.log("tracker")[-2000:]
        # Sent until the node takes one (a depth-1 reader keeps only the newest frame).
        sent = []
        for _ in range(30):
            sent.append(stamp(cam.publish(odd).header))
            probe.spin(1 / 30)
            if any(not m.polygon.points and stamp(m.header) in sent for _, m in boxes):
                break
        else:
            raise AssertionError((odd.format, "no empty polygon on it", launcher.log("tracker")[-2000:]))
        cam.stream(20)  # good frames go on: a track that was never dropped would send boxes again
        lost = next(i for i, (_, m) in enumerate(boxes) if not m.polygon.points and stamp(m.header) in sent)
        assert not any(m.polygon.points for _, m in boxes[lost:]), "dropped: only a new init resumes"
        assert "frame size changed" in values(tracker_status(diags)[-1][1])["reason"]
    assert not errors_with(diags, "tracking failed"), launcher.log("tracker")[-2000:]
    assert launcher.alive("tracker")


def test_any_failure_inside_tracking_publishes_lost_at_once(launcher, probe, camera, sequence, tmp_path):
    _, gt = sequence
    flag = tmp_path / "fail_now"
    launcher.env["MLKD_TEST_TRACK_FAULT"] = str(flag)
    boxes, diags, init_pub = start_tracker(launcher, probe, camera)
    camera.stream(15, on_frame=lambda i, m: i == 0 and init_pub.publish(init_msg(m.header, gt[0])))
    assert probe.spin_until(lambda: boxes and boxes[-1][1].polygon.points, 5), launcher.log("tracker")[-2000:]
    flag.touch()
    n = len(boxes)
    camera.stream(10)
    lost = [m for _, m in boxes[n:] if not m.polygon.points]
    assert lost, ("an empty polygon on the failing frame", launcher.log("tracker")[-2000:])
    assert stamp(lost[0].header) in camera.sent, "it carries the header of the frame that failed"
    assert probe.spin_until(lambda: errors_with(diags, "tracking failed: RuntimeError: injected"), 3)
    assert values(tracker_status(diags)[-1][1])["state"] == "lost"
    # The tracker works again, but its state after a failure is unknown: nothing until a new init.
    flag.unlink()
    n = len(boxes)
    camera.stream(15)
    assert all(not m.polygon.points for _, m in boxes[n:])
    camera.index = 0
    camera.stream(15, on_frame=lambda i, m: i == 0 and init_pub.publish(init_msg(m.header, gt[0])))
    assert probe.spin_until(lambda: boxes[-1][1].polygon.points, 5), launcher.log("tracker")[-2000:]
    assert launcher.alive("tracker")


def test_png_bomb_is_refused_before_decoding(launcher, probe, sequence):
    frames, _ = sequence
    launcher.start("ground_station.launch.xml", ["tracker"], image_transport="compressed")
    diags = probe.record(DiagnosticArray, "/diagnostics", CONTROL_QOS)
    cam = JpegCamera(probe, frames[:10])
    assert probe.wait_matched(cam.pub, 30), launcher.log("tracker")
    cam.stream(10)
    probe.spin(0.5)
    pid = launcher.procs["tracker"].pid
    before = memory_kb(pid)
    bomb = png_bomb(16000)
    assert len(bomb) < 1_000_000  # 16000 x 16000 x 3 = 768 MB decoded
    cam.publish(CompressedImage(format="png", data=bomb))
    assert probe.spin_until(lambda: errors_with(diags, "16000x16000"), 10), launcher.log("tracker")[-2000:]
    message = errors_with(diags, "16000x16000")[-1].message
    assert "max_image_pixels" in message, message
    after = memory_kb(pid)
    assert after["VmHWM"] - before["VmHWM"] < 100_000, (before, after)  # kB: the decoded frame would be 768 MB
    cam.stream(5)
    assert launcher.alive("tracker")
