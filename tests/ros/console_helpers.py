"""Helpers for the operator console tests and benchmarks/console_latency.py: a 30 Hz frame publisher
with a fake emergency-hover service and, on demand, a stand-in tracker (its own rclpy context, in a
thread), the console's address from its log, and headless Chromium driven by selenium."""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PolygonStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool, Trigger

from mlkd_ros.boxes import box_to_polygon
from mlkd_ros.camera_frame import CAMERA_FRAME
from mlkd_ros.dds import CONTROL_QOS, IMAGE_QOS
from mlkd_ros.image_conversion import numpy_to_image
from mlkd_ros.topics import BOX_TOPIC, STATUS_TOPIC

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
HOVER_MESSAGE = "test bridge: hovering"
BRIDGE_VALUES = {"video_state": "streaming", "video_reconnects": "2", "drone_state": "connected", "battery": "87 %"}


LEVELS = {"tracking": DiagnosticStatus.OK, "uncertain": DiagnosticStatus.WARN, "lost": DiagnosticStatus.ERROR}


def tracker_status(header, state: str, confidence: float, score: float, box) -> DiagnosticArray:
    """tracker/status as the tracker node publishes it: the frame's header, one status named "tracker"."""
    x, y, w, h = box if box is not None else (0.0, 0.0, 0.0, 0.0)
    values = {"state": state, "confidence": f"{confidence:.3f}", "score": f"{score:.3f}"}
    values.update(x=f"{x:.2f}", y=f"{y:.2f}", w=f"{w:.2f}", h=f"{h:.2f}")
    st = DiagnosticStatus(name="tracker", level=LEVELS.get(state, DiagnosticStatus.STALE), message=state)
    st.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    return DiagnosticArray(header=header, status=[st])


def pingpong(n: int) -> list[int]:
    return list(range(n)) + list(range(n - 2, 0, -1))


class FramePublisher:
    """Publishes frames (stamp = now) at `rate` Hz in ping-pong order from its own thread; records the
    stamp of every frame it sent, tracker/box, tracker/init, and answers olympe_bridge/emergency_hover."""

    def __init__(self, domain_id: int, frames: list[np.ndarray], rate: float = 30.0, bridge: str = "olympe_bridge"):
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("test_camera", context=self.context)
        self.pub = self.node.create_publisher(Image, "camera/image", IMAGE_QOS)
        h, w = frames[0].shape[:2]
        self.template = (h, w)
        self.data = [numpy_to_image(f).data for f in frames]
        self.order = pingpong(len(frames))
        self.sent: dict[tuple[int, int], int] = {}  # stamp -> frame index
        self.boxes: list[PolygonStamped] = []
        self.inits: list[PolygonStamped] = []
        self.hover_calls = 0
        self.calls: list[tuple[str, bool | None]] = []  # bridge stand-in: (service, SetBool data)
        self.bridge = bridge
        self.node.create_subscription(PolygonStamped, "tracker/box", self.boxes.append, CONTROL_QOS)
        self.node.create_subscription(PolygonStamped, "tracker/init", self.inits.append, CONTROL_QOS)
        self.node.create_service(Trigger, f"{bridge}/emergency_hover", self._on_hover)
        self._n = 0
        self.hold = False  # True: keep publishing the current frame (a still scene) until set False
        # Stand-in tracker (act_as_tracker): how each frame is answered, and what each stamp got.
        self.answer: dict | None = None
        self.answered: dict[tuple[int, int], dict] = {}
        self.node_state = ""  # the stand-in's /diagnostics state ("" = none published)
        self.node.create_timer(1.0 / rate, self._publish)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_hover(self, _req, resp):
        self.hover_calls += 1
        resp.success, resp.message = True, HOVER_MESSAGE
        return resp

    def add_bridge(self) -> None:
        """The rest of the bridge's interface (arm, takeoff, land, its /diagnostics), from now on."""
        b = self.bridge

        def answer(name: str):
            def cb(req, resp):
                data = getattr(req, "data", None)
                self.calls.append((name, data))
                resp.success, resp.message = True, f"test bridge: {name}" + ("" if data is None else f" {data}")
                return resp

            return cb

        self.node.create_service(SetBool, f"{b}/arm", answer("arm"))
        self.node.create_service(Trigger, f"{b}/takeoff", answer("takeoff"))
        self.node.create_service(Trigger, f"{b}/land", answer("land"))
        diag = self.node.create_publisher(DiagnosticArray, "/diagnostics", CONTROL_QOS)
        status = DiagnosticStatus(name=f"mlkd_olympe_bridge: /{b}", message="video streaming, drone connected")
        status.values = [KeyValue(key=k, value=v) for k, v in BRIDGE_VALUES.items()]
        self.node.create_timer(0.5, lambda: diag.publish(DiagnosticArray(status=[status])))

    def act_as_tracker(self) -> None:
        """Answer frames as the tracker node would, from now on: for each frame, while `answer` is
        {"state", "confidence", "box", "status"} (None: silent), tracker/box (an empty polygon when the box
        is None) and tracker/status ("status": "own" = the frame's header, "older" = a stamp 1 ms before
        the frame's, "none" = no status), box and status alternately first; and `node_state` on
        /diagnostics twice a second."""
        self.box_pub = self.node.create_publisher(PolygonStamped, BOX_TOPIC, CONTROL_QOS)
        self.status_pub = self.node.create_publisher(DiagnosticArray, STATUS_TOPIC, CONTROL_QOS)
        diag = self.node.create_publisher(DiagnosticArray, "/diagnostics", CONTROL_QOS)

        def node_diag():
            if self.node_state:
                st = DiagnosticStatus(name="mlkd_tracker: /tracker", message=self.node_state)
                st.values = [KeyValue(key="state", value=self.node_state)]
                diag.publish(DiagnosticArray(status=[st]))

        self.node.create_timer(0.5, node_diag)

    def _answer(self, header) -> None:
        a = self.answer
        box = None if a["box"] is None else tuple(float(v) for v in a["box"])
        out = [(self.box_pub, PolygonStamped(header=header, polygon=box_to_polygon(box)))]
        if a["status"] != "none":
            when = header
            if a["status"] == "older":
                when = type(header)(frame_id=header.frame_id)
                ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec - 1_000_000
                when.stamp.sec, when.stamp.nanosec = divmod(ns, 1_000_000_000)
            status = tracker_status(when, a["state"], a["confidence"], 0.5, a["box"])
            out.insert(len(self.answered) % 2, (self.status_pub, status))
        for pub, msg in out:
            pub.publish(msg)
        self.answered[(header.stamp.sec, header.stamp.nanosec)] = a

    def _publish(self) -> None:
        index = self.order[self._n % len(self.order)]
        self._n += 0 if self.hold else 1
        h, w = self.template
        msg = Image(height=h, width=w, encoding="bgr8", step=w * 3)
        msg.data = self.data[index]
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = CAMERA_FRAME
        self.sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = index
        self.pub.publish(msg)
        if self.answer is not None:
            self._answer(msg.header)

    def set_tracker_param(self, name: str, value: float, timeout: float = 10.0) -> bool:
        from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
        from rcl_interfaces.srv import SetParameters

        client = self.node.create_client(SetParameters, "tracker/set_parameters")
        if not client.wait_for_service(timeout_sec=timeout):
            return False
        value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        future = client.call_async(SetParameters.Request(parameters=[Parameter(name=name, value=value)]))
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            time.sleep(0.02)
        return future.done() and future.result().results[0].successful

    @property
    def position(self) -> int:
        """Where in `order` the next frame comes from."""
        return self._n

    def box_at(self, stamp: tuple[int, int]) -> PolygonStamped | None:
        return next((b for b in self.boxes if (b.header.stamp.sec, b.header.stamp.nanosec) == tuple(stamp)), None)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def console_address(read_log, timeout: float = 30.0) -> str:
    """http://host:port/[?token=...] from the 'listening on' line of the console's log."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = re.search(r"operator console listening on (http://\S+)", read_log())
        if m:
            return m.group(1)
        time.sleep(0.1)
    raise AssertionError(f"the console never listened:\n{read_log()[-3000:]}")


def browser_available() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists() and shutil.which("chromedriver") is not None


def chromium(user_data_dir: Path, width: int = 1280, height: int = 900):
    """Headless Debian Chromium through chromedriver, a fresh profile, nothing fetched from the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={user_data_dir}",
        f"--window-size={width},{height}",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
