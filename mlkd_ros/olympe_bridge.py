"""Olympe bridge node: Parrot Anafi video -> camera/image + camera/camera_info; cmd_vel -> piloting.

Video: the drone's RTSP stream (rtsp://<drone_ip>/live), or `video_url` (an RTSP URL or a local MP4)
without a drone, played through Olympe's Pdraw (mlkd_ros/video.py). Only the newest frame is
published, stamped with the time its first bytes reached this host. Stream loss -> reconnect with
back-off, reported on /diagnostics.
Piloting (needs a drone): cmd_vel is mapped to PCMD percentages (mlkd_ros/piloting.py) and sent only
after `~/arm` (std_srvs/SetBool true); a cmd_vel older than `cmd_vel_timeout` gives hover. Services
`~/takeoff`, `~/land`, `~/emergency_hover` (std_srvs/Trigger; emergency_hover also disarms).
Drone addresses: 192.168.42.1 (Anafi WiFi), 192.168.53.1 (SkyController), 10.202.0.1 (Sphinx simulator);
drone_ip "" = video only.

Olympe pins protobuf 3.19.4, which the dev/train virtualenv cannot have (onnx needs protobuf >= 4), so
Olympe lives in its own small virtualenv (.venv/olympe, requirements/olympe.txt). When this node
starts in an interpreter without Olympe it re-executes itself with $MLKD_OLYMPE_PYTHON or
<repo>/.venv/olympe/bin/python if one exists; otherwise it falls back to OpenCV video, no piloting.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from pathlib import Path

import cv2
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import SetBool, Trigger

from mlkd_ros.dds import CONTROL_QOS, IMAGE_QOS
from mlkd_ros.dds_guard import piloting_refusal
from mlkd_ros.image_conversion import numpy_to_compressed, numpy_to_image
from mlkd_ros.node_help import print_help, wants_help
from mlkd_ros.piloting import PilotingGate, PilotingLimits
from mlkd_ros.ros_params import declare
from mlkd_ros.video import backoff_delays, olympe_available, open_source

log = logging.getLogger("mlkd.olympe_bridge")

SKYCONTROLLER_IPS = ("192.168.53.1",)


def _olympe_python() -> str | None:
    """An interpreter that has Olympe, when this one does not."""
    env = os.environ.get("MLKD_OLYMPE_PYTHON")
    if env:
        return env
    cand = Path(__file__).resolve().parents[1] / ".venv" / "olympe" / "bin" / "python"
    return str(cand) if cand.exists() else None


def _maybe_reexec() -> None:
    if olympe_available() or os.environ.get("MLKD_OLYMPE_REEXEC"):
        return
    py = _olympe_python()
    # Compare virtualenvs, not binaries: every venv's python is a symlink to the same interpreter.
    if py is None or Path(py).parent.parent.absolute() == Path(sys.prefix).absolute():
        return
    env = dict(os.environ, MLKD_OLYMPE_REEXEC="1")
    root = str(Path(__file__).resolve().parents[1])  # this checkout, importable in the other venv
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    code = "import sys; from mlkd_ros.olympe_bridge import main; sys.exit(main())"
    log.info("re-executing with %s (Olympe's virtualenv)", py)
    os.execve(py, [py, "-c", code, *sys.argv[1:]], env)


def quiet_olympe(level: str) -> None:
    """Olympe logs every state change at INFO; keep it to `level` (ulog is the C libraries' logger)."""
    import olympe

    level = level.upper()
    quiet = "CRITICAL" if level in ("ERROR", "CRITICAL") else level
    # olympe.media retries a media-download websocket we never use and logs each failure as an error.
    loggers = {"olympe": {"level": level}, "olympe.media": {"level": quiet}, "ulog": {"level": quiet}}
    olympe.log.update_config({"loggers": loggers})


class OlympeBridge(Node):
    def __init__(self) -> None:
        super().__init__("olympe_bridge")
        self.drone_ip = declare(self, "drone_ip", "192.168.42.1", "drone (or SkyController) address; '' = no drone")
        url = declare(self, "video_url", "", "RTSP URL or MP4 path to play instead of the drone's stream")
        self.media_name = declare(self, "media_name", "Front camera", "media to play (Pdraw name)")
        backend = declare(self, "video_backend", "auto", "auto | pdraw | opencv")
        self.width = declare(self, "image_width", 0, "published width (0 = as decoded)", 0, 8192)
        self.height = declare(self, "image_height", 0, "published height (0 = as decoded)", 0, 8192)
        self.frame_id = declare(self, "frame_id", "camera", "header.frame_id of the images")
        self.hfov = math.radians(declare(self, "hfov_deg", 69.0, "horizontal field of view", 1.0, 179.0))
        stall = declare(self, "stall_timeout", 2.0, "s without a frame before reconnecting", 0.1, 60.0)
        self.cmd_timeout = declare(self, "cmd_vel_timeout", 0.5, "s; older cmd_vel -> hover", 0.05, 10.0)
        rate = declare(self, "piloting_rate", 20.0, "Hz of the piloting watchdog", 1.0, 100.0)
        limits = PilotingLimits(
            speed_full_scale=declare(self, "speed_full_scale", 5.0, "m/s = 100 % pitch/roll", 0.1, 30.0),
            vertical_full_scale=declare(self, "vertical_full_scale", 1.0, "m/s = 100 % gaz", 0.1, 10.0),
            yaw_rate_full_scale=declare(self, "yaw_rate_full_scale", 1.5, "rad/s = 100 % yaw", 0.1, 10.0),
            max_roll=declare(self, "max_roll", 30, "% cap", 0, 100),
            max_pitch=declare(self, "max_pitch", 30, "% cap", 0, 100),
            max_yaw=declare(self, "max_yaw", 50, "% cap", 0, 100),
            max_gaz=declare(self, "max_gaz", 30, "% cap", 0, 100),
        )
        olympe_log = declare(self, "olympe_log_level", "ERROR", "Olympe's own log level")
        try:
            quiet_olympe(olympe_log)
        except ImportError:
            pass

        self.gate = PilotingGate(limits, self.cmd_timeout)
        self.drone = None
        self.drone_state = "none" if not self.drone_ip else "connecting"
        self.sent = 0
        self.piloting_started = False
        self._lock = threading.Lock()
        self._stop = threading.Event()

        self.image_pub = self.create_publisher(Image, "camera/image", IMAGE_QOS)
        self.compressed_pub = None  # image_transport's convention: JPEG on <image topic>/compressed
        if declare(self, "publish_compressed", False, "also publish JPEG frames on camera/image/compressed"):
            self.jpeg_quality = declare(self, "jpeg_quality", 90, "JPEG quality of camera/image/compressed", 1, 100)
            topic = self.resolve_topic_name("camera/image") + "/compressed"
            self.compressed_pub = self.create_publisher(CompressedImage, topic, IMAGE_QOS)
        self.info_pub = self.create_publisher(CameraInfo, "camera/camera_info", IMAGE_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", CONTROL_QOS)
        refusal = piloting_refusal()
        if refusal:  # no cmd_vel, arm, takeoff or land for whoever reaches this DDS graph
            self.get_logger().error(f"video only, no piloting: {refusal}")
        else:
            self.create_subscription(Twist, "cmd_vel", self._on_cmd_vel, CONTROL_QOS)
            self.create_service(SetBool, "~/arm", self._on_arm)
            self.create_service(Trigger, "~/takeoff", lambda rq, rs: self._flight_cmd(rs, "TakeOff"))
            self.create_service(Trigger, "~/land", lambda rq, rs: self._flight_cmd(rs, "Landing"))
            self.create_service(Trigger, "~/emergency_hover", self._on_emergency_hover)
        self.create_timer(1.0 / rate, self._pilot)
        self.create_timer(1.0, self._publish_diagnostics)

        if not url and self.drone_ip:
            url = f"rtsp://{self.drone_ip}/live"
        self.source = open_source(url, self.media_name, backend, stall_timeout=stall) if url else None
        self._fps_t, self._fps_n, self.fps = time.monotonic(), 0, 0.0
        self.published = 0
        if self.source:
            self._pub_thread = threading.Thread(target=self._publish_frames, name="bridge-publish", daemon=True)
            self._pub_thread.start()
        if self.drone_ip:
            self._drone_thread = threading.Thread(target=self._drone_owner, name="bridge-drone", daemon=True)
            self._drone_thread.start()
        self.get_logger().info(f"olympe bridge: drone {self.drone_ip or '-'} video {url or '-'}")

    # ---- video
    def _publish_frames(self) -> None:
        if not self.source.live:
            # A file has a beginning: wait (up to 10 s) for a subscriber so its first frames are not lost.
            end = time.monotonic() + 10.0
            while self.image_pub.get_subscription_count() == 0 and time.monotonic() < end:
                time.sleep(0.05)
            time.sleep(0.3)  # matched is not yet connected: give DDS a moment to finish the handshake
        self.source.start()
        seq = 0
        while not self._stop.is_set():
            f = self.source.frames.get(seq, timeout=0.5)
            if f is None:
                continue
            seq = f.seq
            img = f.image
            if self.width and self.height and (img.shape[1], img.shape[0]) != (self.width, self.height):
                img = cv2.resize(img, (self.width, self.height), interpolation=cv2.INTER_AREA)
            msg = numpy_to_image(img, "bgr8")
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(f.stamp_ns, 1_000_000_000)
            msg.header.frame_id = self.frame_id
            self.image_pub.publish(msg)
            if self.compressed_pub is not None:
                self.compressed_pub.publish(numpy_to_compressed(img, self.jpeg_quality, msg.header))
            self.info_pub.publish(self._camera_info(msg.header, img.shape[1], img.shape[0]))
            self.published += 1
            self._fps_n += 1
            now = time.monotonic()
            if now - self._fps_t >= 1.0:
                self.fps, self._fps_t, self._fps_n = self._fps_n / (now - self._fps_t), now, 0

    def _camera_info(self, header, w: int, h: int) -> CameraInfo:
        # Pinhole from the horizontal FOV, no distortion: the Anafi streams a rectified picture.
        fx = (w / 2.0) / math.tan(self.hfov / 2.0)
        info = CameraInfo(header=header, width=w, height=h, distortion_model="plumb_bob")
        info.d = [0.0] * 5
        info.k = [fx, 0.0, (w - 1) / 2.0, 0.0, fx, (h - 1) / 2.0, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [fx, 0.0, (w - 1) / 2.0, 0.0, 0.0, fx, (h - 1) / 2.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    # ---- drone
    def _drone_owner(self) -> None:
        """Creates, connects, and at the end disconnects the Olympe controller, all in this one thread.

        Olympe's controller stops running its piloting timer once the thread that connected it has exited
        (start_piloting() then times out), so this thread stays alive as long as the drone is in use.
        """
        import olympe

        cls = olympe.SkyController if self.drone_ip in SKYCONTROLLER_IPS else olympe.Drone
        delays = backoff_delays(1.0, 2.0, 10.0)
        drone = None
        while not self._stop.is_set():
            drone = cls(self.drone_ip)
            if drone.connect(retry=1):
                break
            drone.destroy()
            drone = None
            self.drone_state = "connect failed, retrying"
            self._stop.wait(next(delays))
        if drone is None:
            return
        with self._lock:
            self.drone, self.drone_state = drone, "connected"
        self.get_logger().info(f"connected to {self.drone_ip}")
        self._stop.wait()
        try:
            if self.piloting_started:
                self._hover_and_stop()
            drone.disconnect()
        finally:
            drone.destroy()

    def _on_cmd_vel(self, msg: Twist) -> None:
        self.gate.update(msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.z, time.monotonic())

    def _pilot(self) -> None:
        cmd = self.gate.command(time.monotonic())
        drone = self.drone
        if cmd is None or drone is None or not self.piloting_started:
            return
        # piloting_time: Olympe itself returns to hover if we stop refreshing (a second watchdog).
        if drone.piloting(cmd.roll, cmd.pitch, cmd.yaw, cmd.gaz, self.cmd_timeout):
            self.sent += 1

    def _on_arm(self, req, resp):
        if req.data and self.drone is None:
            resp.success, resp.message = False, f"not connected to a drone ({self.drone_state})"
            return resp
        if req.data:
            # Started here, not in the 20 Hz timer: Olympe may block up to 2 s while its loop is busy.
            self.piloting_started = bool(self.drone.start_piloting())
            if not self.piloting_started:
                resp.success, resp.message = False, "Olympe's piloting interface did not start"
                return resp
        self.gate.arm(bool(req.data))
        if not req.data and self.drone is not None:
            self._hover_and_stop()
        resp.success, resp.message = True, "armed" if req.data else "disarmed"
        self.get_logger().info(f"piloting {resp.message}")
        return resp

    def _flight_cmd(self, resp, name: str):
        from olympe.messages.ardrone3 import Piloting

        if self.drone is None:
            resp.success, resp.message = False, "not connected to a drone"
            return resp
        ok = self.drone(getattr(Piloting, name)()).wait(5).success()
        resp.success, resp.message = bool(ok), f"{name} {'acknowledged' if ok else 'not acknowledged'}"
        return resp

    def _on_emergency_hover(self, req, resp):
        self.gate.arm(False)
        if self.drone is not None:
            self._hover_and_stop()
        resp.success, resp.message = True, "hovering, piloting disarmed"
        self.get_logger().warning("emergency hover")
        return resp

    def _hover_and_stop(self) -> None:
        self.piloting_started = False
        self.drone.piloting(0, 0, 0, 0, 0.0)  # an explicit hover, then stop sending PCMD
        self.drone.stop_piloting()

    # ---- diagnostics
    def _publish_diagnostics(self) -> None:
        src = self.source
        video = src.state if src else "none"
        level = DiagnosticStatus.OK if video in ("streaming", "none", "ended") else DiagnosticStatus.WARN
        now = time.monotonic()
        values = {
            "video_state": video,
            "video_reconnects": str(src.reconnects if src else 0),
            "fps": f"{self.fps:.1f}",
            "frames_published": str(self.published),
            "drone_state": self.drone_state,
            "armed": str(self.gate.armed).lower(),
            "cmd_vel_age": f"{min(self.gate.age(now), 1e6):.2f}",
            "pcmd_sent": str(self.sent),
        }
        status = DiagnosticStatus(
            level=level,
            name=f"mlkd_olympe_bridge: {self.get_fully_qualified_name()}",
            hardware_id=self.drone_ip or "video",
            message=f"video {video}, drone {self.drone_state}",
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def stop(self) -> None:
        self._stop.set()
        if self.source:
            self.source.stop()
        if self.drone_ip:
            self._drone_thread.join(timeout=15)  # it hovers, disconnects and destroys the controller


def main(args: list[str] | None = None) -> int:
    if wants_help(args):
        return print_help(__file__, "olympe_bridge", __doc__.splitlines()[0])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _maybe_reexec()
    rclpy.init(args=args)
    node = OlympeBridge()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
