"""Follow controller: tracker/box -> cmd_vel (geometry_msgs/Twist), REP-103 conventions.

Sign conventions (body frame, REP-103): +linear.x forward, +linear.z up, +angular.z yaw left
(counter-clockwise seen from above). Image errors are normalised: ex = (cx - W/2) / (W/2) is
positive when the target is right of centre, ey = (cy - H/2) / (H/2) positive when it is below
(image y points down), es = 1 - size / size_at_lock_on positive when the target looks too small.
So: target left -> +yaw rate; target above -> +vertical speed; target too small -> +forward.
With `vertical_mode: gimbal` the vertical error moves the camera instead of the drone: no linear.z,
and `gimbal_pitch` (std_msgs/Float32, degrees, absolute; the launch remaps it to the bridge's
`~/gimbal_pitch`) tilts down when the target is below centre, within gimbal_min_deg..gimbal_max_deg.

Safety: nothing is published before `follow/enable` (std_srvs/SetBool) is called with true; while
enabled, a box older than `timeout` or a lost target (empty polygon) commands zero (hover) at
once, without the acceleration limit (stopping is always allowed), and disabling sends one zero.
Once it has had a target since enabling, no target for longer than `max_frame_gap` (video gap, lost
track, tracker gone) disables following itself: whatever the tracker locks onto afterwards, the
drone stays at zero until the operator calls `follow/enable` again. `follow/enabled`
(std_msgs/Bool, latched) says which it is. No parameter combination moves the drone on a box older
than MAX_BOX_AGE_S: `timeout` plus one control period (a command lasts until the next) must fit in it,
and `timeout` must be below `max_frame_gap`; other values are refused with the reason (at start: exit 2).
Every parameter takes effect when set at run time (gains, limits, rates, image size). The image size
follows camera/camera_info when one is published (the bridge keeps the stream's aspect ratio, so the
size it publishes need not be image_width x image_height).
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import time
from dataclasses import dataclass

import rclpy
from geometry_msgs.msg import PolygonStamped, Twist
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Bool, Float32
from std_srvs.srv import SetBool

from mlkd_model.frames import BoxError
from mlkd_ros.boxes import polygon_to_box
from mlkd_ros.dds import CONTROL_QOS, IMAGE_QOS
from mlkd_ros.dds_guard import piloting_refusal
from mlkd_ros.node_help import print_help, wants_help
from mlkd_ros.node_process import spin_node
from mlkd_ros.ros_params import declare
from mlkd_ros.topics import BOX_TOPIC, CAMERA_INFO_TOPIC, CMD_VEL_TOPIC, FOLLOW_ENABLE_SERVICE

AXES = ("yaw", "z", "x")
VERTICAL_MODES = ("climb", "gimbal")
# Hard cap on the age of the box behind any non-zero command, whatever the parameters say.
MAX_BOX_AGE_S = 1.0


class ParameterError(ValueError):
    """Parameter values that cannot go together; the node does not start."""


def timing_problem(timeout: float, max_frame_gap: float, control_rate: float) -> str | None:
    """Why these values cannot go together (None: they can)."""
    period = 1.0 / control_rate
    if timeout + period > MAX_BOX_AGE_S + 1e-9:
        return (
            f"timeout ({timeout:g} s) + one control period (1/control_rate = {period:g} s) exceeds the "
            f"{MAX_BOX_AGE_S:g} s cap on the age of a box the drone may move on"
        )
    if timeout >= max_frame_gap:
        return f"timeout ({timeout:g} s) must be below max_frame_gap ({max_frame_gap:g} s)"
    return None


@dataclass
class Pid:
    kp: float
    ki: float = 0.0
    kd: float = 0.0
    i_limit: float = 1.0  # bound on the integral term's contribution (anti-windup)
    _integral: float = 0.0
    _last: float | None = None

    def reset(self) -> None:
        self._integral, self._last = 0.0, None

    def __call__(self, error: float, dt: float) -> float:
        if self.ki:
            self._integral += error * dt
            bound = self.i_limit / self.ki
            self._integral = min(max(self._integral, -abs(bound)), abs(bound))
        deriv = 0.0 if self._last is None or dt <= 0 else (error - self._last) / dt
        self._last = error
        return self.kp * error + self.ki * self._integral + self.kd * deriv


def _deadband(error: float, band: float) -> float:
    """Zero inside the band and continuous outside it (no jump at the edge)."""
    if abs(error) <= band:
        return 0.0
    return math.copysign(abs(error) - band, error)


def _clamp(v: float, limit: float) -> float:
    return min(max(v, -limit), limit)


class FollowLaw:
    """Pure control law (no ROS): box -> (forward, vertical, yaw rate) with limits; optionally the
    vertical error drives the gimbal pitch (`gimbal`) instead of the vertical speed."""

    def __init__(self, p: dict[str, float], gimbal: bool = False) -> None:
        self.p = p
        self.pid = {a: Pid(p[f"{a}_kp"], p[f"{a}_ki"], p[f"{a}_kd"]) for a in AXES}
        self.ref_size: float | None = None
        self.out = {a: 0.0 for a in AXES}
        self.gimbal = gimbal
        self.pitch = min(max(0.0, p.get("gimbal_min_deg", -90.0)), p.get("gimbal_max_deg", 0.0))

    def reset(self) -> None:
        for pid in self.pid.values():
            pid.reset()
        self.ref_size = None
        self.out = {a: 0.0 for a in AXES}

    def errors(self, box: tuple[float, float, float, float]) -> dict[str, float]:
        x, y, w, h = box
        half_w, half_h = self.p["image_width"] / 2, self.p["image_height"] / 2
        size = math.sqrt(w * h)
        if self.ref_size is None:
            self.ref_size = self.p["target_size"] or size  # lock-on: hold the size first seen
        return {
            "yaw": (x + w / 2 - half_w) / half_w,
            "z": (y + h / 2 - half_h) / half_h,
            "x": 1.0 - size / self.ref_size,
        }

    def step(self, box: tuple[float, float, float, float], dt: float) -> dict[str, float]:
        e = self.errors(box)
        raw = {
            "yaw": -self.pid["yaw"](_deadband(e["yaw"], self.p["deadband_yaw"]), dt),  # right -> yaw right (-)
            "z": -self.pid["z"](_deadband(e["z"], self.p["deadband_z"]), dt),  # below -> descend (-)
            "x": self.pid["x"](_deadband(e["x"], self.p["deadband_x"]), dt),  # too small -> forward (+)
        }
        if self.gimbal:  # target below (ey > 0) -> tilt the camera down (negative pitch)
            band = _deadband(e["z"], self.p["deadband_z"])
            lo, hi = self.p["gimbal_min_deg"], self.p["gimbal_max_deg"]
            self.pitch = min(max(self.pitch - self.p["gimbal_kp"] * band * dt, lo), hi)
            raw["z"] = 0.0
        limits = {"yaw": "max_yaw_rate", "z": "max_vertical_speed", "x": "max_forward_speed"}
        accels = {"yaw": "max_yaw_accel", "z": "max_linear_accel", "x": "max_linear_accel"}
        for a in AXES:
            target = _clamp(raw[a], self.p[limits[a]])
            max_change = self.p[accels[a]] * dt
            self.out[a] = self.out[a] + _clamp(target - self.out[a], max_change)
        return dict(self.out)

    def stop(self) -> None:
        """Hover now; the next lock-on starts from zero again."""
        self.reset()


class FollowController(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("follow_controller", **kwargs)
        specs = [
            ("image_width", 640, "width of the tracked images, pixels", 1, 100000),
            ("image_height", 480, "height of the tracked images, pixels", 1, 100000),
            ("control_rate", 20.0, "cmd_vel rate while enabled, Hz", 1.0, 200.0),
            # hi = MAX_BOX_AGE_S, written out for --help; timing_problem holds the combined rule
            ("timeout", 0.5, "s without a box before commanding zero; + 1/control_rate at most 1 s", 0.05, 1.0),
            ("max_frame_gap", 1.0, "seconds without a target after which following needs a new enable", 0.1, 60.0),
            ("target_size", 0.0, "box size sqrt(w*h) to hold, pixels; 0 = the size at lock-on", 0.0, 100000.0),
        ]
        gains = {"yaw": (1.0, 0.0, 0.05), "z": (0.8, 0.0, 0.0), "x": (1.5, 0.0, 0.0)}
        for a, (kp, ki, kd) in gains.items():
            specs += [
                (f"{a}_kp", kp, f"{a} proportional gain (output per unit normalised error)", 0.0, 100.0),
                (f"{a}_ki", ki, f"{a} integral gain", 0.0, 100.0),
                (f"{a}_kd", kd, f"{a} derivative gain", 0.0, 100.0),
            ]
        specs += [
            ("deadband_yaw", 0.05, "normalised horizontal error treated as zero", 0.0, 1.0),
            ("deadband_z", 0.05, "normalised vertical error treated as zero", 0.0, 1.0),
            ("deadband_x", 0.1, "relative size error treated as zero", 0.0, 1.0),
            ("max_yaw_rate", 0.8, "yaw rate limit, rad/s", 0.0, 10.0),
            ("max_vertical_speed", 0.5, "vertical speed limit, m/s", 0.0, 10.0),
            ("max_forward_speed", 1.0, "forward/backward speed limit, m/s", 0.0, 20.0),
            ("max_yaw_accel", 2.0, "yaw acceleration limit, rad/s^2", 0.0, 100.0),
            ("max_linear_accel", 1.0, "linear acceleration limit, m/s^2", 0.0, 100.0),
            ("gimbal_kp", 30.0, "vertical_mode gimbal: pitch rate in deg/s per unit vertical error", 0.0, 500.0),
            ("gimbal_min_deg", -90.0, "vertical_mode gimbal: lowest pitch, degrees", -90.0, 90.0),
            ("gimbal_max_deg", 0.0, "vertical_mode gimbal: highest pitch, degrees", -90.0, 90.0),
        ]
        p = {name: declare(self, name, default, desc, lo, hi) for name, default, desc, lo, hi in specs}
        p = {k: float(v) for k, v in p.items()}
        problem = timing_problem(p["timeout"], p["max_frame_gap"], p["control_rate"])
        if problem:
            raise ParameterError(problem)
        mode = declare(self, "vertical_mode", "climb", "climb = linear.z keeps the target centred; gimbal = the camera")
        if mode not in VERTICAL_MODES:
            self.get_logger().error(f"vertical_mode {mode!r} unknown; using 'climb' ({VERTICAL_MODES})")
        self.law = FollowLaw(p, gimbal=mode == "gimbal")
        self.gimbal_pub = self.create_publisher(Float32, "gimbal_pitch", CONTROL_QOS)
        self._sent_pitch: float | None = None
        self.timeout = p["timeout"]
        self.max_frame_gap = p["max_frame_gap"]
        self.period = 1.0 / p["control_rate"]
        self.enabled = False
        self.box: tuple[float, float, float, float] | None = None
        self.box_time = 0.0
        self.target_time: float | None = None  # monotonic time of the newest valid box since enabling
        self.holding = True  # last command sent was zero
        self.pub = self.create_publisher(Twist, CMD_VEL_TOPIC, CONTROL_QOS)
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        self.enabled_pub = self.create_publisher(Bool, "follow/enabled", latched)
        self.enabled_pub.publish(Bool(data=False))
        self.create_subscription(PolygonStamped, BOX_TOPIC, self._on_box, CONTROL_QOS)
        self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info, IMAGE_QOS)
        self.create_service(SetBool, FOLLOW_ENABLE_SERVICE, self._on_enable)
        self.timer = self.create_timer(self.period, self._tick)
        self._bad_logged: set[str] = set()
        self.add_on_set_parameters_callback(self._check_params)
        self.add_post_set_parameters_callback(self._on_params_set)

    def _check_params(self, params) -> SetParametersResult:
        new = {prm.name: prm.value for prm in params}
        if new.get("vertical_mode", "climb") not in VERTICAL_MODES:
            return SetParametersResult(successful=False, reason=f"vertical_mode must be one of {VERTICAL_MODES}")
        timing = [float(new.get(n, self.get_parameter(n).value)) for n in ("timeout", "max_frame_gap", "control_rate")]
        problem = timing_problem(*timing)
        return SetParametersResult(successful=problem is None, reason=problem or "")

    def _on_params_set(self, params) -> None:
        """Ranges were checked by rclpy (descriptors); apply at once, the control law reads p every step."""
        for prm in params:
            if prm.name == "vertical_mode":
                self.law.gimbal = prm.value == "gimbal"
                self.get_logger().info(f"parameter vertical_mode = {prm.value} applied")
                continue
            value = float(prm.value)
            self.law.p[prm.name] = value
            axis, _, term = prm.name.partition("_")
            if axis in self.law.pid and term in ("kp", "ki", "kd"):
                setattr(self.law.pid[axis], term, value)
            elif prm.name == "timeout":
                self.timeout = value
            elif prm.name == "max_frame_gap":
                self.max_frame_gap = value
            elif prm.name == "target_size":
                self.law.ref_size = None  # re-lock on the new size
            elif prm.name == "control_rate":
                self.period = 1.0 / value
                self.timer.cancel()
                self.destroy_timer(self.timer)
                self.timer = self.create_timer(self.period, self._tick)
            self.get_logger().info(f"parameter {prm.name} = {value:g} applied")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        size = (float(msg.width), float(msg.height))
        if msg.width and msg.height and size != (self.law.p["image_width"], self.law.p["image_height"]):
            self.law.p["image_width"], self.law.p["image_height"] = size
            self.get_logger().info(f"image size {msg.width}x{msg.height} from camera/camera_info")

    def _on_box(self, msg: PolygonStamped) -> None:
        self.box_time = time.monotonic()
        if not msg.polygon.points:
            self.box = None  # lost or stale: zero now, not at the next control tick
            if self.enabled and not self.holding:
                self.law.stop()
                self._send(0.0, 0.0, 0.0)
            return
        try:
            box = polygon_to_box(msg.polygon)
            if box[2] <= 0 or box[3] <= 0:
                raise BoxError(f"box of zero size {box}")
        except BoxError as exc:
            if str(exc) not in self._bad_logged:
                self._bad_logged.add(str(exc))
                self.get_logger().error(f"ignoring bad tracker/box: {exc}")
            self.box = None
            return
        self.box = box
        self.target_time = self.box_time

    def _on_enable(self, req: SetBool.Request, resp: SetBool.Response) -> SetBool.Response:
        self._set_enabled(bool(req.data))
        resp.success, resp.message = True, "following enabled" if self.enabled else "following disabled (hover)"
        self.get_logger().info(resp.message)
        return resp

    def _set_enabled(self, on: bool) -> None:
        self.enabled = on
        self.law.reset()
        if on:
            self.box = None  # only boxes that arrive from now on count: the operator enables on what they see
            self.target_time = None  # no target yet: nothing to lose (and nothing moves without a box)
        else:
            self._send(0.0, 0.0, 0.0)
        self.enabled_pub.publish(Bool(data=on))

    def _tick(self) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.target_time is not None and now - self.target_time > self.max_frame_gap:
            self.get_logger().warning(
                f"no target for {now - self.target_time:.1f} s (> max_frame_gap {self.max_frame_gap:g} s): "
                "following disabled until follow/enable is called again"
            )
            self._set_enabled(False)
            return
        fresh = self.box is not None and now - self.box_time <= min(self.timeout, MAX_BOX_AGE_S)
        if not fresh:
            if not self.holding:
                self.get_logger().warn("no target (lost or boxes stopped): hover")
            self.law.stop()
            self._send(0.0, 0.0, 0.0)
            return
        out = self.law.step(self.box, self.period)
        self._send(out["x"], out["z"], out["yaw"])
        if self.law.gimbal and self.law.pitch != self._sent_pitch:
            self._sent_pitch = self.law.pitch
            self.gimbal_pub.publish(Float32(data=float(self.law.pitch)))

    def _send(self, forward: float, vertical: float, yaw_rate: float) -> None:
        cmd = Twist()
        cmd.linear.x, cmd.linear.z, cmd.angular.z = forward, vertical, yaw_rate
        self.holding = forward == vertical == yaw_rate == 0.0
        self.pub.publish(cmd)


def _raise_interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main(args: list[str] | None = None) -> int:
    if wants_help(args):
        return print_help(__file__, "follow_controller", __doc__.splitlines()[0])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("mlkd.follow_controller")
    refusal = piloting_refusal()
    if refusal:  # anyone who reaches this DDS graph could enable following and steer the drone
        log.error("not starting: %s", refusal)
        return 2
    # Own signal handling: rclpy's would shut the context down before we could send the last zero.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # SIGINT too, explicitly: a process started from a background shell inherits SIGINT ignored, and Ctrl-C
    # (what ros2 launch sends first) must still bring the drone to a hover.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)
    try:
        node = FollowController()
    except (ParameterError, InvalidParameterValueException) as exc:  # out of range, or values that contradict
        log.error("not starting: %s", exc)
        rclpy.try_shutdown()
        return 2
    return spin_node(node, _leave_hovering)


def _leave_hovering(node: FollowController) -> None:
    """On the way out, a last zero command while following, so the drone is left hovering."""
    if node.enabled and rclpy.ok():
        node._send(0.0, 0.0, 0.0)
        time.sleep(0.2)  # let the reliable writer deliver it before the participant goes


if __name__ == "__main__":
    sys.exit(main())
