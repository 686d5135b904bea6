"""Anafi telemetry, settings and failsafe for the Olympe bridge (Olympe imported lazily, only with a drone).

Telemetry: the drone's last state messages, polled by the bridge's drone thread and published on change
as standard messages under the bridge's namespace:
  ~/battery (sensor_msgs/BatteryState), ~/gps (sensor_msgs/NavSatFix), ~/altitude (std_msgs/Float32, m
  above take-off), ~/attitude (geometry_msgs/QuaternionStamped, from roll/pitch/yaw), ~/speed
  (geometry_msgs/Vector3Stamped, m/s, north-east-down as the drone reports it), ~/link_quality
  (std_msgs/Int16, WiFi RSSI in dBm).
Settings sent on every connect, from parameters (0 = leave the drone's own setting): max tilt, vertical
speed, rotation speed, max altitude, max distance (geofence), gimbal pitch (~/gimbal_pitch, std_msgs/Float32
degrees), and the camera's exposure mode / EV compensation / max ISO that matter at night.
Low-battery failsafe: at `battery_hover_percent` the bridge disarms and hovers, at `battery_rth_percent` it
sends return-to-home; each once per connection.
Also the Olympe side of the drone link (mlkd_ros/drone_link.py): the controller, its messages and log levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from geometry_msgs.msg import QuaternionStamped, Vector3Stamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus
from std_msgs.msg import Float32, Int16, String

SKYCONTROLLER_IPS = ("192.168.53.1",)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
UNKNOWN_GPS = 500.0  # what the Anafi reports for latitude/longitude/altitude without a fix

SETTING_PARAMS = {  # parameter -> (default, description, lo, hi)
    "max_tilt_deg": (0.0, "drone's max tilt, degrees (0 = keep)", 0.0, 40.0),
    "max_vertical_speed": (0.0, "drone's max vertical speed, m/s (0 = keep)", 0.0, 4.0),
    "max_rotation_speed_deg": (0.0, "drone's max yaw rotation speed, deg/s (0 = keep)", 0.0, 200.0),
    "max_altitude": (0.0, "geofence: max altitude, m (0 = keep)", 0.0, 4000.0),
    "max_distance": (0.0, "geofence: max distance from home, m (0 = keep; set = no fly beyond)", 0.0, 4000.0),
    "gimbal_pitch_deg": (0.0, "gimbal pitch set on connect, degrees (0 = level)", -90.0, 90.0),
    "battery_hover_percent": (20, "battery % at which the bridge disarms and hovers (0 = off)", 0, 100),
    "battery_rth_percent": (15, "battery % at which the bridge sends return-to-home (0 = off)", 0, 100),
}
CAMERA_PARAMS = {  # Olympe camera enum names; '' = keep the drone's setting
    "exposure_mode": ("", "camera exposure mode, e.g. automatic_prefer_shutter_speed (night: less blur)"),
    "ev_compensation": ("", "camera EV compensation, e.g. ev_1_00 (+1 EV) or ev_minus_0_67"),
    "max_iso": ("", "camera max ISO sensitivity in automatic modes, e.g. iso_3200"),
}


def controller(ip: str):
    """A new, unconnected Olympe controller for this address (a SkyController's, or a drone's)."""
    import olympe

    return (olympe.SkyController if ip in SKYCONTROLLER_IPS else olympe.Drone)(ip)


def quiet_olympe(level: str) -> None:
    """Olympe logs every state change at INFO; keep it to `level` (ulog is the C libraries' logger)."""
    try:
        import olympe

        olympe.log  # noqa: B018 (a folder named olympe on the path is no Olympe)
    except (ImportError, AttributeError):  # no Olympe: video through OpenCV, nothing to quieten
        return
    level = level.upper()
    quiet = "CRITICAL" if level in ("ERROR", "CRITICAL") else level
    # olympe.media retries a media-download websocket we never use and logs each failure as an error.
    loggers = {"olympe": {"level": level}, "olympe.media": {"level": quiet}, "ulog": {"level": quiet}}
    olympe.log.update_config({"loggers": loggers})


def send_hover(drone) -> None:
    """One zero PCMD now (not at Olympe's next 25 ms piloting tick)."""
    from olympe.messages.ardrone3.Piloting import PCMD

    drone(PCMD(flag=0, roll=0, pitch=0, yaw=0, gaz=0, timestampAndSeqNum=0))


def flight_command(name: str):
    """ardrone3.Piloting.<name>(): TakeOff, Landing."""
    from olympe.messages.ardrone3 import Piloting

    return getattr(Piloting, name)()


def navigate_home():
    from olympe.messages.ardrone3.Piloting import NavigateHome

    return NavigateHome(start=1)


def apply_settings(drone, settings: dict, gimbal: bool, logger) -> None:
    """Drone limits and camera settings (sent, not waited for); a bad one is reported and skipped."""
    groups = {
        "drone limits": lambda: setting_commands(settings),
        "camera": lambda: camera_commands(settings),
        "gimbal": lambda: [gimbal_command(settings["gimbal_pitch_deg"])] if gimbal else [],
    }
    n = 0
    for what, build in groups.items():
        try:  # a bad camera enum name fails here: say which, keep the link (and its thread) going
            for cmd in build():
                drone(cmd)
                n += 1
        except Exception as exc:
            logger.error(f"{what} settings not sent: {type(exc).__name__}: {exc}")
    if n:
        logger.info(f"sent {n} drone settings")


def setting_commands(p: dict) -> list:
    """Olympe commands that apply the non-zero drone settings in `p` (parameter name -> value)."""
    from olympe.messages.ardrone3.PilotingSettings import MaxAltitude, MaxDistance, MaxTilt, NoFlyOverMaxDistance
    from olympe.messages.ardrone3.SpeedSettings import MaxRotationSpeed, MaxVerticalSpeed

    cmds = []
    if p.get("max_tilt_deg"):
        cmds.append(MaxTilt(current=float(p["max_tilt_deg"])))
    if p.get("max_vertical_speed"):
        cmds.append(MaxVerticalSpeed(current=float(p["max_vertical_speed"])))
    if p.get("max_rotation_speed_deg"):
        cmds.append(MaxRotationSpeed(current=float(p["max_rotation_speed_deg"])))
    if p.get("max_altitude"):
        cmds.append(MaxAltitude(current=float(p["max_altitude"])))
    if p.get("max_distance"):
        cmds += [MaxDistance(value=float(p["max_distance"])), NoFlyOverMaxDistance(shouldNotFlyOver=1)]
    return cmds


def camera_commands(p: dict) -> list:
    from olympe.messages import camera

    cmds = []
    if p.get("exposure_mode") or p.get("max_iso"):
        cmds.append(
            camera.set_exposure_settings(
                cam_id=0,
                mode=p.get("exposure_mode") or "automatic",
                shutter_speed="shutter_1_over_30",  # used by the manual modes only
                iso_sensitivity="iso_800",  # manual modes only
                max_iso_sensitivity=p.get("max_iso") or "iso_3200",
                metering_mode="standard",
            )
        )
    if p.get("ev_compensation"):
        cmds.append(camera.set_ev_compensation(cam_id=0, value=p["ev_compensation"]))
    return cmds


def gimbal_command(pitch_deg: float):
    from olympe.messages import gimbal

    return gimbal.set_target(
        gimbal_id=0,
        control_mode="position",
        yaw_frame_of_reference="none",
        yaw=0.0,
        pitch_frame_of_reference="absolute",
        pitch=float(pitch_deg),
        roll_frame_of_reference="none",
        roll=0.0,
    )


def quaternion(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """x, y, z, w of roll-pitch-yaw (radians, applied yaw then pitch then roll)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    )


@dataclass
class Failsafe:
    """Battery thresholds -> the actions due now, each once until reset (a new connection)."""

    hover_at: int = 20
    rth_at: int = 15
    done: set[str] = field(default_factory=set)

    def check(self, percent: float) -> list[str]:
        due = []
        if self.hover_at and percent <= self.hover_at and "hover" not in self.done:
            due.append("hover")
        if self.rth_at and percent <= self.rth_at and "return_home" not in self.done:
            due.append("return_home")
        self.done.update(due)
        return due


class Telemetry:
    """Publishers for the drone's state, fed with Olympe state dicts by `update(drone)`; `flying_state` is
    also published (latched) on ~/flying_state."""

    def __init__(self, node, qos, frame_id: str = "base_link") -> None:
        self.node, self.frame_id = node, frame_id
        self.pubs = {
            "battery": node.create_publisher(BatteryState, "~/battery", qos),
            "gps": node.create_publisher(NavSatFix, "~/gps", qos),
            "altitude": node.create_publisher(Float32, "~/altitude", qos),
            "attitude": node.create_publisher(QuaternionStamped, "~/attitude", qos),
            "speed": node.create_publisher(Vector3Stamped, "~/speed", qos),
            "link_quality": node.create_publisher(Int16, "~/link_quality", qos),
        }
        self.flying_pub = node.create_publisher(String, "~/flying_state", LATCHED)
        self._last: dict[str, dict] = {}
        self.battery_percent: float | None = None
        self.flying_state = "unknown"

    def _messages(self):
        from olympe.messages.ardrone3.PilotingState import (
            AltitudeChanged,
            AttitudeChanged,
            PositionChanged,
            SpeedChanged,
        )
        from olympe.messages.common.CommonState import BatteryStateChanged, WifiSignalChanged

        return {
            "battery": BatteryStateChanged,
            "gps": PositionChanged,
            "altitude": AltitudeChanged,
            "attitude": AttitudeChanged,
            "speed": SpeedChanged,
            "link_quality": WifiSignalChanged,
        }

    def update(self, drone) -> list[str]:
        """Publish what changed since the last call; returns the names published."""
        from olympe.messages.ardrone3.PilotingState import FlyingStateChanged

        published = []
        try:
            state = drone.get_state(FlyingStateChanged)["state"]
            name = getattr(state, "name", str(state))
        except Exception:  # Olympe raises until the drone has sent one
            name = self.flying_state
        if name != self.flying_state:
            self.flying_state = name
            self.flying_pub.publish(String(data=name))
            published.append("flying_state")
        for name, message in self._messages().items():
            try:
                state = dict(drone.get_state(message))
            except Exception:  # Olympe raises until the drone has sent that state once
                continue
            if state == self._last.get(name):
                continue
            self._last[name] = state
            self.pubs[name].publish(self._to_msg(name, state))
            published.append(name)
        return published

    def _header(self, msg):
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = self.frame_id
        return msg

    def _to_msg(self, name: str, s: dict):
        if name == "battery":
            self.battery_percent = float(s["percent"])
            msg = self._header(BatteryState(percentage=self.battery_percent / 100.0, present=True))
            msg.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_LIPO
            msg.voltage = msg.current = msg.charge = msg.capacity = msg.design_capacity = math.nan
            return msg
        if name == "gps":
            msg = self._header(NavSatFix())
            fix = all(abs(float(s[k]) - UNKNOWN_GPS) > 1e-6 for k in ("latitude", "longitude"))
            msg.status.status = NavSatStatus.STATUS_FIX if fix else NavSatStatus.STATUS_NO_FIX
            msg.status.service = NavSatStatus.SERVICE_GPS
            nan = math.nan
            msg.latitude, msg.longitude = (float(s["latitude"]), float(s["longitude"])) if fix else (nan, nan)
            msg.altitude = float(s["altitude"]) if fix else nan
            msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_UNKNOWN
            return msg
        if name == "altitude":
            return Float32(data=float(s["altitude"]))
        if name == "attitude":
            msg = self._header(QuaternionStamped())
            q = msg.quaternion
            q.x, q.y, q.z, q.w = quaternion(float(s["roll"]), float(s["pitch"]), float(s["yaw"]))
            return msg
        if name == "speed":
            msg = self._header(Vector3Stamped())
            msg.header.frame_id = "ned"
            msg.vector.x, msg.vector.y, msg.vector.z = float(s["speedX"]), float(s["speedY"]), float(s["speedZ"])
            return msg
        return Int16(data=int(s["rssi"]))
