"""The console's ROS node: what the page shows (frames paired with their boxes, state) and does (calls).

Pairing: the tracker answers each frame it tracks with a box (tracker/box) and a status (tracker/status:
tracking / uncertain / lost, confidence), both stamped with the frame's header. While it publishes them,
a frame is held until both answers with its stamp are here (in any order of arrival) and is then sent
with them, so a box and a state are always shown on the frame they were computed on. Frames the tracker
skipped are dropped when a newer answer arrives; a frame still unanswered after `box_wait` goes out with
what it has (no status: the page shows no state, never "tracking"); while the tracker is silent (idle,
stopped) frames go out at once. Everything the page sees leaves through `sink` (web.Hub, thread-safe).

camera/image, tracker/status, tracker/cle and tracker/offset are subscribed only while a browser is
connected: no decoding cost otherwise, and a console nobody watches never counts as the subscriber that
a bag player waits for before playing (replay.launch.xml's `wait_for`: the tracker and the CLE logger).
"""

from __future__ import annotations

import json
import math
import struct
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future
from dataclasses import dataclass
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
    STATUS_TOPIC,
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


def level_of(st: DiagnosticStatus) -> int:
    return int.from_bytes(st.level, "little") if isinstance(st.level, bytes) else int(st.level)


def status_of(msg: DiagnosticArray) -> dict | None:
    """The tracker's per-frame status (its "tracker" entry) as the page gets it, or None when absent."""
    st = next((s for s in msg.status if s.name == "tracker"), None)
    if st is None:
        return None
    values = {kv.key: kv.value for kv in st.values}
    try:
        box = [round(float(values[k]), 2) for k in ("x", "y", "w", "h")]
    except (KeyError, ValueError):
        box = None
    if box is not None and not (all(math.isfinite(v) for v in box) and box[2] > 0 and box[3] > 0):
        box = None
    return {
        "state": values.get("state") or st.message,
        "level": level_of(st),
        "confidence": values.get("confidence", ""),
        "score": values.get("score", ""),
        "box": box,
    }


@dataclass
class Pending:
    """A frame and the tracker's answers for it, gathered by stamp whichever arrives first."""

    image: Image | None = None
    t: float = math.inf  # when the image arrived
    box: PolygonStamped | None = None
    status: dict | None = None


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
        self._held: OrderedDict[int, Pending] = OrderedDict()  # stamp -> frame and/or its answers
        self._headers: OrderedDict[int, object] = OrderedDict()  # recent image headers (init on screen)
        self._last_box = self._last_status = -math.inf
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

    # ---- frames, boxes and statuses (executor thread) ----
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
        if not self._answering(now):
            self._held.clear()
            self._send(msg, None, None)
            return
        if stamp <= self._box_shown:
            return  # older than what the page shows (reordered): it would never go out
        held = self._pending(stamp)
        held.image, held.t = msg, now
        self._release(stamp, now)

    def _answering(self, now: float) -> bool:
        return now - max(self._last_box, self._last_status) <= SILENT_TRACKER_S

    def _on_box(self, msg: PolygonStamped) -> None:
        self._last_box = time.monotonic()
        stamp = stamp_ns(msg.header)
        with self._waiters_lock:
            waiter = self._init_waiters.pop(stamp, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(msg)
        self._answer(stamp, "box", msg)

    def _on_status(self, msg: DiagnosticArray) -> None:
        status = status_of(msg)
        if status is None:
            self._log_once(f"{STATUS_TOPIC} without a 'tracker' status: ignored")
            return
        self._last_status = time.monotonic()
        self._answer(stamp_ns(msg.header), "status", status)

    def _answer(self, stamp: int, kind: str, value) -> None:
        sink = self.sink
        if sink is None or sink.viewers() == 0:
            return
        if stamp <= self._box_shown:  # its frame went out (waited too long) or was skipped
            self.frames_unpaired += 1
            return
        held = self._pending(stamp)
        setattr(held, kind, value)
        if held.image is not None:  # an answer to a frame we have: the older ones still without it were skipped
            for old in [s for s, p in self._held.items() if s < stamp and getattr(p, kind) is None]:
                self.frames_unpaired += int(self._held.pop(old).image is None)
        self._release(stamp, time.monotonic())

    def _pending(self, stamp: int) -> Pending:
        held = self._held.setdefault(stamp, Pending())
        while len(self._held) > HELD:
            self._held.popitem(last=False)
        return held

    def _release(self, stamp: int, now: float) -> None:
        """Send the frame `stamp` once it has every answer the tracker is giving at the moment."""
        held = self._held.get(stamp)
        if held is None or held.image is None:
            return
        if held.box is None and now - self._last_box <= SILENT_TRACKER_S:
            return
        if held.status is None and now - self._last_status <= SILENT_TRACKER_S:
            return
        self._drop_up_to(stamp)
        self._send(held.image, held.box, held.status)

    def _drop_up_to(self, stamp: int) -> None:
        for s in [s for s in self._held if s <= stamp]:
            self.frames_unpaired += int(self._held[s].image is None)
            del self._held[s]

    def _release_waiting(self) -> None:
        """The newest frame that waited `box_wait` for its answers goes out with what it has."""
        now = time.monotonic()
        late = [s for s, p in self._held.items() if p.image is not None and now - p.t >= self.box_wait]
        if late:
            newest = max(late)
            held = self._held[newest]
            self._drop_up_to(newest)
            self._send(held.image, held.box, held.status)

    def _send(self, msg: Image, box_msg: PolygonStamped | None, status: dict | None) -> None:
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
        elif status is not None:
            box = status["box"]  # the status carries the box too
        meta = {
            "sec": msg.header.stamp.sec,
            "nanosec": msg.header.stamp.nanosec,
            "frame_id": msg.header.frame_id,
            "width": int(frame.shape[1]),
            "height": int(frame.shape[0]),
            "tracked": box_msg is not None or status is not None,
            "box": box,
            "lost": lost,
            "status": status,  # this frame's own tracker/status (same stamp), or None: never another frame's
            "state": self.tracker_diag.get("values", {}).get("state", ""),  # the node's, from /diagnostics
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
                "level": level_of(st),
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
                self.create_subscription(DiagnosticArray, STATUS_TOPIC, self._on_status, CONTROL_QOS),
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
