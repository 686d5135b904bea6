"""Olympe bridge node: Parrot Anafi video -> camera/image + camera/camera_info; cmd_vel -> piloting.

Video: the drone's RTSP stream (rtsp://<drone_ip>/live), or `video_url` (an RTSP URL or a local MP4)
without a drone, played through Olympe's Pdraw (mlkd_ros/video.py); only the newest frame is published,
stamped with the time its first bytes reached this host; stream loss -> reconnect with back-off.
Piloting (needs a drone): cmd_vel is mapped to PCMD percentages (mlkd_ros/piloting.py) and sent only
after `~/arm` (std_srvs/SetBool true); a cmd_vel older than `cmd_vel_timeout` gives hover. Services
`~/takeoff`, `~/land`, `~/emergency_hover`, `~/return_home` (std_srvs/Trigger; the last two also disarm).
The drone link (connect, supervise, reconnect with back-off, arm epoch, acknowledgements) is
mlkd_ros/drone_link.py; telemetry, settings, gimbal and the low-battery failsafe mlkd_ros/anafi.py.
Threads: cmd_vel, the piloting timer and emergency hover share one callback group, diagnostics another,
the services that may wait on the drone a third, on a multi-threaded executor with a thread to spare
even when take-off, landing and arming all wait: nothing pending holds up an emergency hover.
Parameters that change the piloting mapping, rates and published image apply at run time; the ones
that pick the drone and the video are read-only. Drone addresses: 192.168.42.1 (Anafi WiFi),
192.168.53.1 (SkyController), 10.202.0.1 (Sphinx simulator); drone_ip "" = video only.

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
from functools import partial
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Float32
from std_srvs.srv import SetBool, Trigger

from mlkd_ros import anafi
from mlkd_ros.anafi import CAMERA_PARAMS, SETTING_PARAMS, Failsafe, Telemetry, gimbal_command
from mlkd_ros.camera_frame import CAMERA_FRAME
from mlkd_ros.dds import CONTROL_QOS
from mlkd_ros.dds_guard import piloting_refusal
from mlkd_ros.drone_link import DroneLink, tcp_reachable
from mlkd_ros.frame_publisher import FramePublisher
from mlkd_ros.node_help import print_help, wants_help
from mlkd_ros.node_process import spin_node
from mlkd_ros.piloting import PilotingGate, PilotingLimits
from mlkd_ros.ros_params import declare
from mlkd_ros.topics import CMD_VEL_TOPIC
from mlkd_ros.video import olympe_available, open_source

log = logging.getLogger("mlkd.olympe_bridge")

LIMIT_PARAMS = [f.name for f in dataclasses.fields(PilotingLimits)]


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
        width = declare(self, "image_width", 0, "published width (0 here or in image_height = as decoded)", 0, 8192)
        height = declare(self, "image_height", 0, "published height (0 = as decoded)", 0, 8192)
        keep_aspect = declare(self, "keep_aspect", True, "resize keeping the stream's aspect ratio (fit inside)")
        self.settings = {k: declare(self, k, d, desc, lo, hi) for k, (d, desc, lo, hi) in SETTING_PARAMS.items()}
        self.settings.update({k: declare(self, k, d, desc) for k, (d, desc) in CAMERA_PARAMS.items()})
        frame_id = declare(
            self, "frame_id", CAMERA_FRAME, "header.frame_id of the images and camera_info (REP-103 optical frame)"
        )
        hfov = math.radians(declare(self, "hfov_deg", 69.0, "horizontal field of view", 1.0, 179.0))
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
        anafi.quiet_olympe(declare(self, "olympe_log_level", "ERROR", "Olympe's own log level", **ro))

        self.gate = PilotingGate(limits, self.cmd_timeout)
        self.telemetry = Telemetry(self, CONTROL_QOS)
        self.failsafe = Failsafe(self.settings["battery_hover_percent"], self.settings["battery_rth_percent"])
        self.link = DroneLink(
            partial(anafi.controller, self.drone_ip),
            partial(tcp_reachable, self.drone_ip),
            self.gate,
            hover=anafi.send_hover,
            on_change=self._on_link_change,
            on_connect=self._on_connect,
            on_tick=self._watch_state,
        )
        if not self.drone_ip:
            self.link.state = "none"
        self._stop = threading.Event()

        # cmd_vel, piloting timer, emergency hover: never wait
        self._control_group = control = MutuallyExclusiveCallbackGroup()
        slow = ReentrantCallbackGroup()  # services that may wait for the drone
        quality = None
        if declare(self, "publish_compressed", False, "also publish JPEG frames on camera/image/compressed", **ro):
            quality = declare(self, "jpeg_quality", 90, "JPEG quality of camera/image/compressed", 1, 100, **ro)
        self.frames = FramePublisher(self, frame_id, hfov, quality)
        self.frames.width, self.frames.height, self.frames.keep_aspect = width, height, keep_aspect
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", CONTROL_QOS)
        refusal = piloting_refusal()
        if refusal:  # no cmd_vel, arm, takeoff, land or gimbal for whoever reaches this DDS graph
            self.get_logger().error(f"video only, no piloting: {refusal}")
        else:
            self.create_subscription(Float32, "~/gimbal_pitch", self._on_gimbal, CONTROL_QOS, callback_group=slow)
            self.create_service(Trigger, "~/return_home", self._on_return_home, callback_group=slow)
            self.create_subscription(Twist, CMD_VEL_TOPIC, self._on_cmd_vel, CONTROL_QOS, callback_group=control)
            self.create_service(SetBool, "~/arm", self._on_arm, callback_group=slow)
            self.create_service(Trigger, "~/takeoff", partial(self._flight, "TakeOff"), callback_group=slow)
            self.create_service(Trigger, "~/land", partial(self._flight, "Landing"), callback_group=slow)
            self.create_service(Trigger, "~/emergency_hover", self._on_emergency_hover, callback_group=control)
        self.pilot_timer = self.create_timer(1.0 / rate, self._pilot, callback_group=control)
        self.create_timer(1.0, self._publish_diagnostics, callback_group=MutuallyExclusiveCallbackGroup())
        self.add_post_set_parameters_callback(self._on_params_set)

        if not url and self.drone_ip:
            url = f"rtsp://{self.drone_ip}/live"
        self.source = open_source(url, self.media_name, backend, stall_timeout=stall) if url else None
        if self.source:
            self.frames.start(self.source, self._stop)
        if self.drone_ip:
            self._drone_thread = threading.Thread(
                target=self.link.run, args=(self._stop,), name="bridge-drone", daemon=True
            )
            self._drone_thread.start()
        self.get_logger().info(f"olympe bridge: drone {self.drone_ip or '-'} video {url or '-'}")

    def _output_size(self, w: int, h: int) -> tuple[int, int]:
        return self.frames.size(w, h)

    # ---- parameters
    def _on_params_set(self, params) -> None:
        """Applied at once (ranges were checked by rclpy; read-only ones never get here)."""
        changed = {p.name: p.value for p in params}
        with self.link.lock:
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
        f = self.frames
        f.width, f.height = changed.get("image_width", f.width), changed.get("image_height", f.height)
        f.frame_id, f.keep_aspect = changed.get("frame_id", f.frame_id), changed.get("keep_aspect", f.keep_aspect)
        settings = {k: v for k, v in changed.items() if k in self.settings}
        self.settings.update(settings)
        self.failsafe.hover_at = self.settings["battery_hover_percent"]
        self.failsafe.rth_at = self.settings["battery_rth_percent"]
        drone = self.link.controller
        if settings and drone is not None:
            anafi.apply_settings(drone, self.settings, "gimbal_pitch_deg" in settings, self.get_logger())
        if "hfov_deg" in changed:
            f.hfov = math.radians(changed["hfov_deg"])
        for name, value in changed.items():
            self.get_logger().info(f"parameter {name} = {value} applied")

    # ---- drone
    def _on_link_change(self, state_changed: bool) -> None:
        if state_changed:
            text = f"drone {self.drone_ip}: {self.link.state} ({self.link.detail})"
            if self.link.state == "disconnected":  # (rclpy wants one severity per call site)
                self.get_logger().error(text)
            else:
                self.get_logger().info(text)
        self._publish_diagnostics()  # at once, not at the next 1 s tick (each retry's delay too)

    def _on_connect(self, drone) -> None:
        self.failsafe.done.clear()
        anafi.apply_settings(drone, self.settings, True, self.get_logger())

    def _watch_state(self, drone) -> None:
        if "flying_state" in self.telemetry.update(drone):
            self.get_logger().info(f"flying state: {self.telemetry.flying_state}")
        if self.telemetry.battery_percent is None:
            return
        for action in self.failsafe.check(self.telemetry.battery_percent):
            why = f"battery {self.telemetry.battery_percent:.0f} %"
            if action == "hover":
                self.link.disarm()
                self.get_logger().error(f"{why}: low-battery failsafe, hover and disarm")
            else:
                self._return_home(f"low-battery failsafe, {why}")

    def _on_gimbal(self, msg: Float32) -> None:
        drone = self.link.controller
        if drone is not None and math.isfinite(msg.data):
            drone(gimbal_command(max(-90.0, min(90.0, msg.data))))

    def _on_return_home(self, req, resp):
        resp.success, resp.message = self._return_home("operator")
        return resp

    def _return_home(self, why: str) -> tuple[bool, str]:
        drone = self.link.controller
        if drone is None:
            return False, f"not connected to a drone ({self.link.state})"
        self.link.disarm()  # the drone flies home on its own; our PCMDs would fight it
        drone(anafi.navigate_home())
        self.get_logger().warning(f"return to home ({why}), piloting disarmed")
        return True, "returning home, piloting disarmed"

    def _on_cmd_vel(self, msg: Twist) -> None:
        with self.link.lock:
            self.gate.update(msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.z, time.monotonic())
        self._pilot()  # a new command (a stop above all) goes to Olympe now, not at the next timer tick

    def _pilot(self) -> None:
        self.link.pilot(time.monotonic(), self.cmd_timeout)

    def _on_arm(self, req, resp):
        if req.data:
            resp.success, resp.message = self.link.arm()
        else:
            self.link.disarm()
            resp.success, resp.message = True, "disarmed"
        self.get_logger().info(f"arm {req.data}: {resp.message}")
        return resp

    def _flight(self, name: str, req, resp):
        # Waits in the slow callback group only: cmd_vel, piloting and emergency hover go on meanwhile.
        resp.success, resp.message = self.link.flight(name, lambda d: d(anafi.flight_command(name)), self.ack_timeout)
        if resp.success:
            self.get_logger().info(resp.message)
        else:
            resp.message += f" (flying state {self.telemetry.flying_state})"
            self.get_logger().error(resp.message)
        return resp

    def _on_emergency_hover(self, req, resp):
        self.link.disarm()  # never waits: the zero command goes out at Olympe's next tick
        resp.success, resp.message = True, "hovering, piloting disarmed"
        self.get_logger().warning("emergency hover")
        return resp

    # ---- diagnostics
    def _publish_diagnostics(self) -> None:
        src = self.source
        video = src.state if src else "none"
        level = DiagnosticStatus.OK if video in ("streaming", "none", "ended") else DiagnosticStatus.WARN
        link = self.link
        if self.drone_ip and link.state != "connected":
            # Lost after having had it: an error. Still looking for it at start-up: a warning.
            level = max(level, DiagnosticStatus.ERROR if link.state == "disconnected" else DiagnosticStatus.WARN)
        now, battery = time.monotonic(), self.telemetry.battery_percent
        values = {
            "video_state": video,
            "video_reconnects": str(src.reconnects if src else 0),
            "fps": f"{self.frames.fps:.1f}",
            "frames_published": str(self.frames.published),
            "drone_state": link.state,
            "drone_detail": link.detail,
            "drone_connections": str(link.connections),
            "link_losses": str(link.losses),
            "flying_state": self.telemetry.flying_state,
            "battery_percent": "" if battery is None else f"{battery:.0f}",
            "failsafe": ",".join(sorted(self.failsafe.done)),
            "armed": str(self.gate.armed).lower(),
            "cmd_vel_age": f"{min(self.gate.age(now), 1e6):.2f}",
            "pcmd_sent": str(link.sent),
        }
        status = DiagnosticStatus(
            level=level,
            name=f"mlkd_olympe_bridge: {self.get_fully_qualified_name()}",
            hardware_id=self.drone_ip or "video",
            message=f"video {video}, drone {link.state}"
            + (f" ({link.detail})" if link.state not in ("connected", "none") else ""),
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
            self._drone_thread.join(timeout=15)  # the link hovers, disconnects and destroys the controller


def main(args: list[str] | None = None) -> int:
    if wants_help(args):
        return print_help(__file__, "olympe_bridge", __doc__.splitlines()[0])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _maybe_reexec()
    rclpy.init(args=args)
    # Take-off, landing and arming may each wait (one of each at a time): 3 threads, and 3 more for the rest.
    executor = MultiThreadedExecutor(num_threads=6)
    return spin_node(OlympeBridge(), OlympeBridge.stop, executor)


if __name__ == "__main__":
    sys.exit(main())
