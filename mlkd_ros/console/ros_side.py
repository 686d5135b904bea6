"""The console's ROS node: what the page shows (frames paired with their boxes, state) and does (calls).

Pairing: while the tracker publishes boxes, a frame is held until the box with its stamp arrives and
is then sent with it, so a box is always drawn on the frame it was computed on. Frames the tracker
skipped are dropped when a newer box arrives; a frame still without a box after `box_wait` goes out
bare; while the tracker is silent (idle, stopped) frames go out at once. Everything the page sees leaves through
`sink` (web.Hub, thread-safe).

camera/image, tracker/cle and tracker/offset are subscribed only while a browser is connected: no decoding cost
otherwise, and a console nobody watches never counts as the subscriber that a bag player waits for
before playing (replay.launch.xml's `wait_for`: the tracker and the CLE logger).
"""

from __future__ import annotations

import json
import math
import struct
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future
from typing import Protocol

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point32, PointStamped, PolygonStamped
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool, Trigger

from mlkd_model.frames import BoxError
from mlkd_ros.boxes import polygon_to_box
from mlkd_ros.console.protocol import Command
from mlkd_ros.dds import CONTROL_QOS, IMAGE_QOS
from mlkd_ros.image_conversion import ImageConversionError, image_to_numpy
from mlkd_ros.ros_params import declare
from mlkd_ros.topics import (
    BOX_TOPIC,
    CLE_TOPIC,
    FOLLOW_ENABLE_SERVICE,
    IMAGE_TOPIC,
    INIT_TOPIC,
    OFFSET_TOPIC,
    RESET_SERVICE,
)

HELD = 90  # frames kept while waiting for their box (3 s at 30 Hz)
SILENT_TRACKER_S = 1.0  # no box for this long: the tracker is idle or stopped, frames go out at once
PLOT_S = 30.0


class Sink(Protocol):
    def viewers(self) -> int: ...
    def frame(self, payload: bytes) -> None: ...
    def state(self, text: str) -> None: ...


def stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def frame_payload(meta: dict, jpeg: bytes) -> bytes:
    """Binary WebSocket message: 4-byte big-endian length of the JSON meta, the meta, the JPEG."""
    head = json.dumps(meta, separators=(",", ":")).encode()
    return struct.pack(">I", len(head)) + head + jpeg


class ConsoleNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("operator_console", **kwargs)
        self.port = declare(self, "port", 8080, "HTTP port of the page (0 = any free port, logged)", 0, 65535)
        self.bind_address = declare(self, "bind_address", "127.0.0.1", "listen address; non-loopback needs a token")
        self.token = declare(self, "token", "", "access token ('' = token_file, or generated when not loopback)")
        self.token_file = declare(self, "token_file", "", "file holding the access token")
        self.allowed_origins = declare(self, "allowed_origins", "", "extra allowed Origin values, comma-separated")
        bridge = declare(self, "bridge", "olympe_bridge", "node name of the Olympe bridge (its services)")
        self.jpeg_quality = declare(self, "jpeg_quality", 80, "JPEG quality of the video sent to browsers", 10, 100)
        self.box_wait = declare(self, "box_wait", 0.25, "s a frame waits for its box before going out bare", 0.0, 2.0)
        self.service_timeout = declare(self, "service_timeout", 8.0, "s before a service call is a timeout", 0.5, 60.0)
        self.max_clients = declare(self, "max_clients", 8, "browsers connected at once", 1, 64)

        self.sink: Sink | None = None
        self._held: OrderedDict[int, tuple[Image, float]] = OrderedDict()  # stamp -> frame, receive time
        self._headers: OrderedDict[int, object] = OrderedDict()  # recent image headers (init on screen)
        self._last_box = -math.inf
        self._box_shown = -1  # stamp of the newest frame sent
        self._init_waiters: dict[int, Future] = {}  # filled by the web thread, answered here
        self._waiters_lock = threading.Lock()
        self.frames_in = self.frames_out = self.frames_unpaired = 0
        self._in_times: deque[float] = deque(maxlen=120)
        self.tracker_diag: dict = {}
        self.bridge_diag: dict = {}
        self.cle: deque[tuple[float, float]] = deque()
        self.scores: deque[tuple[float, float]] = deque()
        self.follow_enabled: bool | None = None
        self.server_error = ""
        self._logged: set[str] = set()

        self.init_pub = self.create_publisher(PolygonStamped, INIT_TOPIC, CONTROL_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", CONTROL_QOS)
        self._watching: list = []  # the video and CLE/offset subscriptions while a browser is connected
        self.create_subscription(PolygonStamped, BOX_TOPIC, self._on_box, CONTROL_QOS)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, CONTROL_QOS)
        b = bridge.strip("/")
        self.commands = {  # command -> (type, ROS service name)
            "reset": (Trigger, RESET_SERVICE),
            "follow": (SetBool, FOLLOW_ENABLE_SERVICE),
            "arm": (SetBool, f"{b}/arm"),
            "takeoff": (Trigger, f"{b}/takeoff"),
            "land": (Trigger, f"{b}/land"),
            "hover": (Trigger, f"{b}/emergency_hover"),
        }
        self.service_clients = {k: self.create_client(t, name) for k, (t, name) in self.commands.items()}
        self.create_timer(0.03, self._release_waiting)
        self.create_timer(0.2, self._push_state)
        self.create_timer(1.0, self._publish_diagnostics)

    # ---- frames and boxes (executor thread) ----
    def _on_image(self, msg: Image) -> None:
        now = time.monotonic()
        self.frames_in += 1
        self._in_times.append(now)
        stamp = stamp_ns(msg.header)
        self._headers[stamp] = msg.header
        while len(self._headers) > HELD:
            self._headers.popitem(last=False)
        sink = self.sink  # read once: the web thread clears it at shutdown
        if sink is None or sink.viewers() == 0:
            self._held.clear()
            return
        if now - self._last_box > SILENT_TRACKER_S:
            self._held.clear()
            self._send(msg, None)
            return
        self._held[stamp] = (msg, now)
        while len(self._held) > HELD:
            self._held.popitem(last=False)

    def _on_box(self, msg: PolygonStamped) -> None:
        self._last_box = time.monotonic()
        stamp = stamp_ns(msg.header)
        with self._waiters_lock:
            waiter = self._init_waiters.pop(stamp, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(msg)
        held = self._held.pop(stamp, None)
        for old in [s for s in self._held if s < stamp]:  # skipped by the tracker: their box never comes
            del self._held[old]
        if held is None:
            sink = self.sink
            self.frames_unpaired += int(sink is not None and sink.viewers() > 0)
            return
        self._send(held[0], msg)

    def _release_waiting(self) -> None:
        """The newest frame that waited `box_wait` for a box goes out without one."""
        now = time.monotonic()
        late = [s for s, (_, t) in self._held.items() if now - t >= self.box_wait]
        if late:
            msg = self._held[late[-1]][0]
            for s in late:
                del self._held[s]
            self._send(msg, None)

    def _send(self, msg: Image, box_msg: PolygonStamped | None) -> None:
        stamp = stamp_ns(msg.header)
        sink = self.sink
        if stamp <= self._box_shown or sink is None:
            return  # never go back in time
        try:
            frame, color = image_to_numpy(msg)
        except ImageConversionError as exc:
            self._log_once(f"cannot show camera/image: {exc}")
            return
        if color == "rgb":
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            return
        box, lost = None, False
        if box_msg is not None:
            lost = not box_msg.polygon.points
            if not lost:
                try:
                    box = [round(v, 2) for v in polygon_to_box(box_msg.polygon)]
                except BoxError:
                    lost = True
        meta = {
            "sec": msg.header.stamp.sec,
            "nanosec": msg.header.stamp.nanosec,
            "frame_id": msg.header.frame_id,
            "width": int(frame.shape[1]),
            "height": int(frame.shape[0]),
            "tracked": box_msg is not None,
            "box": box,
            "lost": lost,
            "state": self.tracker_diag.get("values", {}).get("state", ""),
            "score": self.tracker_diag.get("values", {}).get("score", ""),
        }
        self._box_shown = stamp
        self.frames_out += 1
        sink.frame(frame_payload(meta, jpeg.tobytes()))

    # ---- state ----
    def _on_cle(self, msg: PointStamped) -> None:
        self.cle.append((time.time(), float(msg.point.z)))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            entry = {
                "level": int.from_bytes(st.level, "little") if isinstance(st.level, bytes) else int(st.level),
                "message": st.message,
                "values": {kv.key: kv.value for kv in st.values},
                "t": time.time(),
            }
            if st.name.startswith("mlkd_tracker"):
                self.tracker_diag = entry
                try:
                    score = float(entry["values"].get("score", "nan"))
                except ValueError:
                    score = math.nan
                if math.isfinite(score):
                    self.scores.append((entry["t"], score))
            elif st.name.startswith("mlkd_olympe_bridge"):
                self.bridge_diag = entry

    def state(self) -> dict:
        now = time.time()
        for series in (self.cle, self.scores):
            while series and now - series[0][0] > PLOT_S:
                series.popleft()
        mono = time.monotonic()
        return {
            "type": "state",
            "t": now,
            "tracker": self.tracker_diag,
            "bridge": self.bridge_diag,
            "services": {k: c.service_is_ready() for k, c in self.service_clients.items()},
            "follow_enabled": self.follow_enabled,
            "video": {
                "fps_in": round(sum(1 for t in self._in_times if mono - t <= 2.0) / 2.0, 1),
                "frames_in": self.frames_in,
                "frames_out": self.frames_out,
                "frames_unpaired": self.frames_unpaired,
            },
            "cle": [[round(t, 3), round(z, 1)] for t, z in self.cle],
            "score": [[round(t, 3), round(s, 3)] for t, s in self.scores],
        }

    def _push_state(self) -> None:
        sink = self.sink
        viewers = sink.viewers() if sink is not None else 0
        if viewers and not self._watching:
            self._watching = [
                self.create_subscription(Image, IMAGE_TOPIC, self._on_image, IMAGE_QOS),
                # one plot: the CLE in a replay with ground truth, the offset from the image centre live
                self.create_subscription(PointStamped, CLE_TOPIC, self._on_cle, CONTROL_QOS),
                self.create_subscription(PointStamped, OFFSET_TOPIC, self._on_cle, CONTROL_QOS),
            ]
        elif not viewers and self._watching:
            for s in self._watching:
                self.destroy_subscription(s)
            self._watching = []
        if viewers:
            sink.state(json.dumps(self.state(), separators=(",", ":")))

    def _publish_diagnostics(self) -> None:
        sink = self.sink
        viewers = sink.viewers() if sink is not None else 0
        st = DiagnosticStatus(name=f"mlkd_operator_console: {self.get_fully_qualified_name()}", hardware_id="console")
        st.level = DiagnosticStatus.ERROR if self.server_error else DiagnosticStatus.OK
        st.message = self.server_error or f"{viewers} browser(s)"
        values = {"clients": viewers, "frames_in": self.frames_in, "frames_out": self.frames_out}
        st.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def _log_once(self, text: str) -> None:
        if text not in self._logged:
            self._logged.add(text)
            self.get_logger().error(text)

    # ---- commands (called from the web thread) ----
    def available(self, kind: str) -> bool:
        return kind == "init" or self.service_clients[kind].service_is_ready()

    def send_init(self, cmd: Command) -> Future:
        """Publish tracker/init with the on-screen frame's header; the future gets that frame's first box."""
        msg = PolygonStamped()
        msg.header.stamp.sec, msg.header.stamp.nanosec = cmd.stamp
        stamp = stamp_ns(msg.header)
        known = self._headers.get(stamp)
        msg.header.frame_id = known.frame_id if known is not None else cmd.frame_id
        x, y, w, h = cmd.box
        msg.polygon.points = [Point32(x=x, y=y), Point32(x=x + w, y=y + h)]
        fut: Future = Future()
        with self._waiters_lock:
            self._init_waiters[stamp] = fut
            while len(self._init_waiters) > 16:
                self._init_waiters.pop(next(iter(self._init_waiters)))
        self.init_pub.publish(msg)
        return fut

    def call(self, cmd: Command):
        """Start the service call for cmd (an rclpy Future), or None when the service is not there."""
        srv_type, _ = self.commands[cmd.kind]
        client = self.service_clients[cmd.kind]
        if not client.service_is_ready():
            return None
        req = srv_type.Request()
        if srv_type is SetBool:
            req.data = bool(cmd.enable)
        return client.call_async(req)

    def cancel(self, cmd: Command, fut) -> None:
        self.service_clients[cmd.kind].remove_pending_request(fut)
