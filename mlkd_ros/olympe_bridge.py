"""Olympe bridge node: Parrot Anafi video -> camera/image + camera/camera_info; cmd_vel -> piloting.

Video: the drone's RTSP stream (rtsp://<drone_ip>/live), or `video_url` (an RTSP URL or a local MP4)
without a drone, played through Olympe's Pdraw (mlkd_ros/video.py). Only the newest frame is
published, stamped with the time its first bytes reached this host. Stream loss -> reconnect with
back-off, reported on /diagnostics.
Piloting (needs a drone): cmd_vel is mapped to PCMD percentages (mlkd_ros/piloting.py) and sent only
after `~/arm` (std_srvs/SetBool true); a cmd_vel older than `cmd_vel_timeout` gives hover. Services
`~/takeoff`, `~/land`, `~/emergency_hover` (std_srvs/Trigger; emergency_hover also disarms).
Link supervision: the drone thread watches Olympe's connection state; on loss the bridge disarms,
says so at once (/diagnostics ERROR, drone_state "disconnected"), reconnects with back-off, and after a
reconnect sends nothing until a new `~/arm`. PCMDs are counted only while the link is up.
Threads: cmd_vel, the piloting timer and emergency hover share one callback group, diagnostics another,
and the services that wait on the drone (arm, take-off, land) run in a third, on a multi-threaded
executor, so a take-off the drone never acknowledges holds up nothing else; take-off and land wait at
most `flight_ack_timeout` for the acknowledgement, and `~/flying_state` reports the drone's flying state.
Telemetry, drone limits, camera night settings, gimbal (`~/gimbal_pitch`), `~/return_home` and the
low-battery failsafe: mlkd_ros/anafi.py. Resizing (image_width x image_height) keeps the stream's aspect
ratio unless `keep_aspect` is false: the picture is scaled to fit inside that size.
Parameters that change the piloting mapping, rates and published image apply at run time; the ones
that pick the drone and the video are read-only.
Drone addresses: 192.168.42.1 (Anafi WiFi), 192.168.53.1 (SkyController), 10.202.0.1 (Sphinx simulator);
drone_ip "" = video only.

Olympe pins protobuf 3.19.4, which the dev/train virtualenv cannot have (onnx needs protobuf >= 4), so
Olympe lives in its own small virtualenv inside the ground station's (<venv>/olympe, made by
scripts/setup.sh from requirements/olympe.txt). When this node starts in an interpreter without Olympe
it re-executes itself with $MLKD_OLYMPE_PYTHON, else <venv>/olympe/bin/python of the environment it runs
in, if either exists; otherwise it falls back to OpenCV video, no piloting.
"""

from __future__ import annotations

import dataclasses
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
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float32, String
from std_srvs.srv import SetBool, Trigger

from mlkd_ros.anafi import (
    CAMERA_PARAMS,
    SETTING_PARAMS,
    Failsafe,
    Telemetry,
    camera_commands,
    gimbal_command,
    setting_commands,
)
from mlkd_ros.camera_frame import CAMERA_FRAME
from mlkd_ros.dds import CONTROL_QOS, IMAGE_QOS
from mlkd_ros.dds_guard import piloting_refusal
from mlkd_ros.image_conversion import numpy_to_compressed, numpy_to_image
from mlkd_ros.node_help import print_help, wants_help
from mlkd_ros.node_process import spin_node
from mlkd_ros.piloting import PilotingGate, PilotingLimits
from mlkd_ros.ros_params import declare
from mlkd_ros.topics import CAMERA_INFO_TOPIC, CMD_VEL_TOPIC, IMAGE_TOPIC, compressed_topic
from mlkd_ros.video import backoff_delays, olympe_available, open_source

log = logging.getLogger("mlkd.olympe_bridge")

SKYCONTROLLER_IPS = ("192.168.53.1",)
LIMIT_PARAMS = (
    "speed_full_scale",
    "vertical_full_scale",
    "yaw_rate_full_scale",
    "max_roll",
    "max_pitch",
    "max_yaw",
    "max_gaz",
)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _olympe_python() -> str | None:
    """An interpreter that has Olympe, when this one does not."""
    env = os.environ.get("MLKD_OLYMPE_PYTHON")
    if env:
        return env
    cand = Path(sys.prefix) / "olympe" / "bin" / "python"  # the environment's, wherever the code lives
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
    def __init__(self, **kwargs) -> None:
        super().__init__("olympe_bridge", **kwargs)
        ro = {"read_only": True}  # what picks the drone and the video: fixed for the node's life
        self.drone_ip = declare(
            self, "drone_ip", "192.168.42.1", "drone (or SkyController) address; '' = no drone", **ro
        )
        url = declare(self, "video_url", "", "RTSP URL or MP4 path to play instead of the drone's stream", **ro)
        self.media_name = declare(self, "media_name", "Front camera", "media to play (Pdraw name)", **ro)
        backend = declare(self, "video_backend", "auto", "auto | pdraw | opencv", **ro)
        self.width = declare(
            self, "image_width", 0, "published width (0 here or in image_height = as decoded)", 0, 8192
        )
        self.height = declare(self, "image_height", 0, "published height (0 = as decoded)", 0, 8192)
        self.keep_aspect = declare(self, "keep_aspect", True, "resize keeping the stream's aspect ratio (fit inside)")
        self.settings = {k: declare(self, k, d, desc, lo, hi) for k, (d, desc, lo, hi) in SETTING_PARAMS.items()}
        self.settings.update({k: declare(self, k, d, desc) for k, (d, desc) in CAMERA_PARAMS.items()})
        self.frame_id = declare(
            self, "frame_id", CAMERA_FRAME, "header.frame_id of the images and camera_info (REP-103 optical frame)"
        )
        self.hfov = math.radians(declare(self, "hfov_deg", 69.0, "horizontal field of view", 1.0, 179.0))
        stall = declare(self, "stall_timeout", 2.0, "s without a frame before reconnecting", 0.1, 60.0, **ro)
        self.cmd_timeout = declare(self, "cmd_vel_timeout", 0.5, "s; older cmd_vel -> hover", 0.05, 10.0)
        rate = declare(self, "piloting_rate", 20.0, "Hz of the piloting watchdog", 1.0, 100.0)
        self.ack_timeout = declare(
            self, "flight_ack_timeout", 2.0, "s take-off / land wait for the drone's acknowledgement", 0.1, 30.0
        )
        limits = PilotingLimits(
            speed_full_scale=declare(self, "speed_full_scale", 5.0, "m/s = 100 % pitch/roll", 0.1, 30.0),
            vertical_full_scale=declare(self, "vertical_full_scale", 1.0, "m/s = 100 % gaz", 0.1, 10.0),
            yaw_rate_full_scale=declare(self, "yaw_rate_full_scale", 1.5, "rad/s = 100 % yaw", 0.1, 10.0),
            max_roll=declare(self, "max_roll", 30, "% cap", 0, 100),
            max_pitch=declare(self, "max_pitch", 30, "% cap", 0, 100),
            max_yaw=declare(self, "max_yaw", 50, "% cap", 0, 100),
            max_gaz=declare(self, "max_gaz", 30, "% cap", 0, 100),
        )
        olympe_log = declare(self, "olympe_log_level", "ERROR", "Olympe's own log level", **ro)
        try:
            quiet_olympe(olympe_log)
        except (ImportError, AttributeError):  # no Olympe (or only a folder named olympe on the path)
            pass

        self.gate = PilotingGate(limits, self.cmd_timeout)
        self.drone = None  # set while the link is up, None otherwise
        self.drone_state = "none" if not self.drone_ip else "connecting"
        self.drone_detail = ""
        self.flying_state = "unknown"
        self.sent = 0
        self.connections = self.link_losses = 0
        self.piloting_started = False
        self._arm_epoch = 0  # bumped by every disarm, so an arm that raced with one does not win
        self._lock = threading.RLock()  # gate, drone and piloting state: the control group vs the drone thread
        self._stop = threading.Event()

        control = MutuallyExclusiveCallbackGroup()  # cmd_vel, piloting timer, emergency hover: never wait
        slow = ReentrantCallbackGroup()  # services that wait for the drone
        self.image_pub = self.create_publisher(Image, IMAGE_TOPIC, IMAGE_QOS)
        self.compressed_pub = None  # image_transport's convention: JPEG on <image topic>/compressed
        if declare(self, "publish_compressed", False, "also publish JPEG frames on camera/image/compressed", **ro):
            self.jpeg_quality = declare(
                self, "jpeg_quality", 90, "JPEG quality of camera/image/compressed", 1, 100, **ro
            )
            topic = compressed_topic(self)
            self.compressed_pub = self.create_publisher(CompressedImage, topic, IMAGE_QOS)
        self.info_pub = self.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, IMAGE_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", CONTROL_QOS)
        self.flying_pub = self.create_publisher(String, "~/flying_state", LATCHED)
        self.telemetry = Telemetry(self, CONTROL_QOS)
        self.failsafe = Failsafe(self.settings["battery_hover_percent"], self.settings["battery_rth_percent"])
        self._control_group = control
        refusal = piloting_refusal()
        if refusal:  # no cmd_vel, arm, takeoff, land or gimbal for whoever reaches this DDS graph
            self.get_logger().error(f"video only, no piloting: {refusal}")
        else:
            self.create_subscription(Float32, "~/gimbal_pitch", self._on_gimbal, CONTROL_QOS, callback_group=slow)
            self.create_service(Trigger, "~/return_home", self._on_return_home, callback_group=control)
            self.create_subscription(Twist, CMD_VEL_TOPIC, self._on_cmd_vel, CONTROL_QOS, callback_group=control)
            self.create_service(SetBool, "~/arm", self._on_arm, callback_group=slow)
            self.create_service(
                Trigger, "~/takeoff", lambda rq, rs: self._flight_cmd(rs, "TakeOff"), callback_group=slow
            )
            self.create_service(Trigger, "~/land", lambda rq, rs: self._flight_cmd(rs, "Landing"), callback_group=slow)
            self.create_service(Trigger, "~/emergency_hover", self._on_emergency_hover, callback_group=control)
        self.pilot_timer = self.create_timer(1.0 / rate, self._pilot, callback_group=control)
        self.create_timer(1.0, self._publish_diagnostics, callback_group=MutuallyExclusiveCallbackGroup())
        self.add_post_set_parameters_callback(self._on_params_set)

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
            size = self._output_size(img.shape[1], img.shape[0])
            if size != (img.shape[1], img.shape[0]):
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
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

    def _output_size(self, w: int, h: int) -> tuple[int, int]:
        if not (self.width and self.height):
            return w, h
        if not self.keep_aspect:
            return self.width, self.height
        scale = min(self.width / w, self.height / h)  # fit inside: 1280x720 into 640x480 -> 640x360
        return max(2, round(w * scale)), max(2, round(h * scale))

    def _camera_info(self, header, w: int, h: int) -> CameraInfo:
        # Pinhole from the horizontal FOV, no distortion: the Anafi streams a rectified picture.
        fx = (w / 2.0) / math.tan(self.hfov / 2.0)
        info = CameraInfo(header=header, width=w, height=h, distortion_model="plumb_bob")
        info.d = [0.0] * 5
        info.k = [fx, 0.0, (w - 1) / 2.0, 0.0, fx, (h - 1) / 2.0, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [fx, 0.0, (w - 1) / 2.0, 0.0, 0.0, fx, (h - 1) / 2.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    # ---- parameters
    def _on_params_set(self, params) -> None:
        """Applied at once (ranges were checked by rclpy; read-only ones never get here)."""
        changed = {p.name: p.value for p in params}
        with self._lock:
            if any(n in LIMIT_PARAMS for n in changed):
                self.gate.limits = dataclasses.replace(
                    self.gate.limits, **{n: v for n, v in changed.items() if n in LIMIT_PARAMS}
                )
            if "cmd_vel_timeout" in changed:
                self.cmd_timeout = self.gate.timeout = changed["cmd_vel_timeout"]
        if "piloting_rate" in changed:
            self.pilot_timer.cancel()
            self.destroy_timer(self.pilot_timer)
            self.pilot_timer = self.create_timer(
                1.0 / changed["piloting_rate"], self._pilot, callback_group=self._control_group
            )
        self.width = changed.get("image_width", self.width)
        self.height = changed.get("image_height", self.height)
        self.frame_id = changed.get("frame_id", self.frame_id)
        self.keep_aspect = changed.get("keep_aspect", self.keep_aspect)
        settings = {k: v for k, v in changed.items() if k in self.settings}
        self.settings.update(settings)
        self.failsafe.hover_at = self.settings["battery_hover_percent"]
        self.failsafe.rth_at = self.settings["battery_rth_percent"]
        if settings and self.drone is not None:
            self._apply_settings(self.drone, gimbal="gimbal_pitch_deg" in settings)
        if "hfov_deg" in changed:
            self.hfov = math.radians(changed["hfov_deg"])
        for name, value in changed.items():
            self.get_logger().info(f"parameter {name} = {value} applied")

    # ---- drone
    def _drone_owner(self) -> None:
        """Creates, connects, supervises and reconnects the Olympe controller, all in this one thread.

        Olympe's controller stops running its piloting timer once the thread that connected it has exited
        (start_piloting() then times out), so this thread stays alive as long as the drone is in use.
        """
        import olympe

        cls = olympe.SkyController if self.drone_ip in SKYCONTROLLER_IPS else olympe.Drone
        drone = cls(self.drone_ip)
        delays = backoff_delays(1.0, 2.0, 10.0)
        try:
            while not self._stop.is_set():
                if not drone.connect(retry=1):
                    delay = next(delays)
                    self._set_link(
                        "connecting" if not self.connections else "disconnected",
                        f"connect failed, retrying in {delay:.0f} s",
                    )
                    self._stop.wait(delay)
                    continue
                delays = backoff_delays(1.0, 2.0, 10.0)
                with self._lock:
                    self.drone = drone
                    self.connections += 1
                self._set_link("connected", f"connection {self.connections}")
                self.failsafe.done.clear()
                self._apply_settings(drone, gimbal=True)
                while not self._stop.is_set() and drone.connected:
                    self._watch_state(drone)
                    self._stop.wait(0.05)
                if self._stop.is_set():
                    break
                self._link_lost()
        finally:
            try:
                if self.drone is not None:
                    if self.piloting_started:
                        self._hover_and_stop()
                    drone.disconnect()
            finally:
                drone.destroy()

    def _set_link(self, state: str, detail: str) -> None:
        changed = state != self.drone_state
        self.drone_state, self.drone_detail = state, detail
        if changed:
            text = f"drone {self.drone_ip}: {state} ({detail})"
            if state == "disconnected":  # (rclpy wants one severity per call site)
                self.get_logger().error(text)
            else:
                self.get_logger().info(text)
            self._publish_diagnostics()  # at once, not at the next 1 s tick

    def _link_lost(self) -> None:
        """Olympe says the link is gone: stop piloting for good; only a new arm after reconnecting resumes it."""
        with self._lock:
            self.drone = None
            self.gate.arm(False)
            self.piloting_started = False  # Olympe stopped its piloting timer with the device
            self._arm_epoch += 1
            self.link_losses += 1
        self._set_link("disconnected", "link lost: disarmed, reconnecting; a new arm is needed after it")

    def _apply_settings(self, drone, gimbal: bool) -> None:
        """Drone limits and camera settings from the parameters (sent, not waited for: the link thread goes on)."""
        groups = {
            "drone limits": lambda: setting_commands(self.settings),
            "camera": lambda: camera_commands(self.settings),
            "gimbal": lambda: [gimbal_command(self.settings["gimbal_pitch_deg"])] if gimbal else [],
        }
        n = 0
        for what, build in groups.items():
            try:  # a bad camera enum name fails here: say which, keep the link (and this thread) going
                for cmd in build():
                    drone(cmd)
                    n += 1
            except Exception as exc:
                self.get_logger().error(f"{what} settings not sent: {type(exc).__name__}: {exc}")
        if n:
            self.get_logger().info(f"sent {n} drone settings")

    def _on_gimbal(self, msg: Float32) -> None:
        drone = self.drone
        if drone is None or not math.isfinite(msg.data):
            return
        drone(gimbal_command(max(-90.0, min(90.0, msg.data))))

    def _on_return_home(self, req, resp):
        resp.success, resp.message = self._return_home("operator")
        return resp

    def _return_home(self, why: str) -> tuple[bool, str]:
        from olympe.messages.ardrone3.Piloting import NavigateHome

        drone = self.drone
        if drone is None:
            return False, f"not connected to a drone ({self.drone_state})"
        self._disarm()  # the drone flies home on its own; our PCMDs would fight it
        drone(NavigateHome(start=1))
        self.get_logger().warning(f"return to home ({why}), piloting disarmed")
        return True, "returning home, piloting disarmed"

    def _watch_state(self, drone) -> None:
        from olympe.messages.ardrone3.PilotingState import FlyingStateChanged

        self.telemetry.update(drone)
        if self.telemetry.battery_percent is not None:
            for action in self.failsafe.check(self.telemetry.battery_percent):
                why = f"battery {self.telemetry.battery_percent:.0f} %"
                if action == "hover":
                    self._disarm()
                    self.get_logger().error(f"{why}: low-battery failsafe, hover and disarm")
                else:
                    self._return_home(f"low-battery failsafe, {why}")

        try:
            state = drone.get_state(FlyingStateChanged)["state"]
        except Exception:  # Olympe raises ValueError until the drone has sent one; never end this thread
            return
        name = getattr(state, "name", str(state))
        if name != self.flying_state:
            self.flying_state = name
            self.flying_pub.publish(String(data=name))
            self.get_logger().info(f"flying state: {name}")

    def _on_cmd_vel(self, msg: Twist) -> None:
        self.gate.update(msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.z, time.monotonic())
        self._pilot()  # a new command (a stop above all) goes to Olympe now, not at the next timer tick

    def _pilot(self) -> None:
        with self._lock:
            cmd = self.gate.command(time.monotonic())
            drone = self.drone
            if cmd is None or drone is None or not self.piloting_started or not drone.connected:
                return
            # piloting_time: Olympe itself returns to hover if we stop refreshing (a second watchdog).
            if drone.piloting(cmd.roll, cmd.pitch, cmd.yaw, cmd.gaz, self.cmd_timeout):
                self.sent += 1

    def _on_arm(self, req, resp):
        with self._lock:
            drone, epoch = self.drone, self._arm_epoch
        if req.data and drone is None:
            resp.success, resp.message = False, f"not connected to a drone ({self.drone_state}: {self.drone_detail})"
            return resp
        if not req.data:
            self._disarm()
            resp.success, resp.message = True, "disarmed"
            self.get_logger().info("piloting disarmed")
            return resp
        # Started here, not in the piloting timer: Olympe may block up to 2 s while its loop is busy.
        started = bool(drone.start_piloting())
        with self._lock:
            if not started or epoch != self._arm_epoch or self.drone is not drone:
                resp.success = False
                resp.message = (
                    "Olympe's piloting interface did not start"
                    if not started
                    else "not armed: disarmed or link lost while arming"
                )
                return resp
            self.piloting_started = True
            self.gate.arm(True)
        resp.success, resp.message = True, "armed"
        self.get_logger().info("piloting armed")
        return resp

    def _flight_cmd(self, resp, name: str):
        from olympe.messages.ardrone3 import Piloting

        drone = self.drone
        if drone is None:
            resp.success, resp.message = False, f"not connected to a drone ({self.drone_state})"
            return resp
        # Waits in the slow callback group only: cmd_vel, piloting and emergency hover go on meanwhile.
        ok = drone(getattr(Piloting, name)()).wait(self.ack_timeout).success()
        resp.success = bool(ok)
        resp.message = (
            f"{name} acknowledged"
            if ok
            else (f"{name} not acknowledged within {self.ack_timeout:g} s (flying state {self.flying_state})")
        )
        if ok:
            self.get_logger().info(resp.message)
        else:
            self.get_logger().error(resp.message)
        return resp

    def _on_emergency_hover(self, req, resp):
        self._disarm()
        resp.success, resp.message = True, "hovering, piloting disarmed"
        self.get_logger().warning("emergency hover")
        return resp

    def _disarm(self) -> None:
        with self._lock:
            self.gate.arm(False)
            self._arm_epoch += 1
            if self.drone is not None and self.piloting_started:
                self._hover_and_stop()

    def _hover_and_stop(self) -> None:
        """An explicit hover, sent now (not at Olympe's next 25 ms piloting tick), then no more PCMD."""
        from olympe.messages.ardrone3.Piloting import PCMD

        self.piloting_started = False
        drone = self.drone
        drone.piloting(0, 0, 0, 0, 0.0)
        drone(PCMD(flag=0, roll=0, pitch=0, yaw=0, gaz=0, timestampAndSeqNum=0))
        drone.stop_piloting()

    # ---- diagnostics
    def _publish_diagnostics(self) -> None:
        src = self.source
        video = src.state if src else "none"
        level = DiagnosticStatus.OK if video in ("streaming", "none", "ended") else DiagnosticStatus.WARN
        if self.drone_ip and self.drone_state != "connected":
            # Lost after having had it: an error. Still looking for it at start-up: a warning.
            level = max(level, DiagnosticStatus.ERROR if self.drone_state == "disconnected" else DiagnosticStatus.WARN)
        now = time.monotonic()
        values = {
            "video_state": video,
            "video_reconnects": str(src.reconnects if src else 0),
            "fps": f"{self.fps:.1f}",
            "frames_published": str(self.published),
            "drone_state": self.drone_state,
            "drone_detail": self.drone_detail,
            "drone_connections": str(self.connections),
            "link_losses": str(self.link_losses),
            "flying_state": self.flying_state,
            "battery_percent": ""
            if self.telemetry.battery_percent is None
            else f"{self.telemetry.battery_percent:.0f}",
            "failsafe": ",".join(sorted(self.failsafe.done)),
            "armed": str(self.gate.armed).lower(),
            "cmd_vel_age": f"{min(self.gate.age(now), 1e6):.2f}",
            "pcmd_sent": str(self.sent),
        }
        status = DiagnosticStatus(
            level=level,
            name=f"mlkd_olympe_bridge: {self.get_fully_qualified_name()}",
            hardware_id=self.drone_ip or "video",
            message=f"video {video}, drone {self.drone_state}"
            + (f" ({self.drone_detail})" if self.drone_state not in ("connected", "none") else ""),
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
    executor = MultiThreadedExecutor(num_threads=4)  # one per callback group and one spare
    return spin_node(OlympeBridge(), OlympeBridge.stop, executor)


if __name__ == "__main__":
    sys.exit(main())
