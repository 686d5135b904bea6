"""Fixtures for the ROS 2 tests: real node processes started from the launch XML, over DDS on this host.

Every test gets its own ROS_DOMAIN_ID (random in 100..200) with ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT,
rmw_fastrtps_cpp and launch/fastdds_localhost.xml (shared memory only), so parallel runs on the host do not
see each other.
Node processes run with torch blocked by an import guard: the ground station must not need it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from mlkd_ros import launch_xml  # noqa: E402
from mlkd_ros.camera_frame import CAMERA_FRAME  # noqa: E402
from mlkd_ros.dds import IMAGE_QOS, ros_env  # noqa: E402
from mlkd_ros.image_conversion import numpy_to_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch"
SEQUENCE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sequences" / "fixtures" / "otb_Crossing"

# A folder whose sitecustomize.py blocks torch in every node process the launcher starts.
TORCH_GUARD = Path(__file__).resolve().parent / "torch_guard"


@pytest.fixture(scope="session")
def sequence() -> tuple[list[np.ndarray], np.ndarray]:
    if not SEQUENCE.is_dir():
        pytest.skip(f"fixture sequence missing: {SEQUENCE}")
    frames = [cv2.imread(str(p)) for p in sorted((SEQUENCE / "img").glob("*.jpg"))]
    gt = np.loadtxt(SEQUENCE / "groundtruth_rect.txt", delimiter=",")
    return frames, gt


@pytest.fixture
def domain_id() -> int:
    return random.Random(os.getpid() * 1000003 + time.time_ns()).randint(100, 200)


@pytest.fixture
def env(domain_id: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The DDS environment, for the node processes and for this process's own participant."""
    e = ros_env(domain_id)
    for k in ("ROS_LOCALHOST_ONLY", "FASTRTPS_DEFAULT_PROFILES_FILE", "ROS_STATIC_PEERS"):
        monkeypatch.delenv(k, raising=False)
    for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION", "FASTDDS_DEFAULT_PROFILES_FILE"):
        monkeypatch.setenv(k, e[k])
    return e


class Probe:
    """The test's own ROS node: publish, record, call services, spin for a while."""

    def __init__(self, domain_id: int) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(f"probe_{os.getpid()}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=min(left, 0.05))

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def wait_matched(self, pub, timeout: float = 20.0, settle: float = 0.5) -> bool:
        """A subscriber is matched, plus time for it to match us back (see Camera.wait_connected)."""
        ok = self.spin_until(lambda: pub.get_subscription_count() > 0, timeout)
        self.spin(settle)
        return ok

    def record(self, msg_type, topic: str, qos=10) -> list:
        got: list = []
        self.node.create_subscription(msg_type, topic, lambda m: got.append((time.monotonic(), m)), qos)
        return got

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        client = self.node.create_client(srv_type, name)
        assert self.spin_until(client.service_is_ready, timeout), f"service {name} not available"
        future = client.call_async(request)
        assert self.spin_until(future.done, timeout), f"service {name} did not answer"
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def probe(env: dict[str, str], domain_id: int) -> Iterator[Probe]:
    p = Probe(domain_id)
    yield p
    p.close()


class Camera:
    """Publishes frames on camera/image (stamp = now) and remembers which frame each stamp was."""

    def __init__(self, probe: Probe, frames: list[np.ndarray]) -> None:
        self.probe = probe
        self.pub = probe.node.create_publisher(Image, "camera/image", IMAGE_QOS)
        self.data = [numpy_to_image(f).data for f in frames]  # converted once: the publisher stays cheap
        self.height, self.width = frames[0].shape[:2]
        self.index = 0  # next frame of the sequence
        self.frame_id = CAMERA_FRAME  # header.frame_id of what it publishes
        self.sent: dict[tuple[int, int], int] = {}  # stamp -> frame index

    def publish(self, msg: Image | None = None) -> Image:
        """The next frame of the sequence, or `msg` as given (bad-input tests); stamped now."""
        index = None
        if msg is None:
            index = self.index % len(self.data)
            msg = Image(height=self.height, width=self.width, encoding="bgr8", step=self.width * 3)
            msg.data = self.data[index]
            self.index += 1
        msg.header.stamp = self.probe.node.get_clock().now().to_msg()
        msg.header.frame_id = self.frame_id
        if index is not None:
            self.sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = index
        self.pub.publish(msg)
        return msg

    def stream(self, n: int, rate: float = 30.0, on_frame: Callable[[int, Image], None] | None = None) -> None:
        t0 = time.monotonic()
        for i in range(n):
            msg = self.publish()
            if on_frame:
                on_frame(i, msg)
            self.probe.spin(max(0.0, t0 + (i + 1) / rate - time.monotonic()))

    def wait_connected(self, timeout: float = 20.0, settle: float = 0.5) -> None:
        """Wait for the node's image subscription, then a little more: discovery is not symmetric, and
        best-effort frames sent before the node's reader has matched our writer are silently lost."""
        assert self.probe.spin_until(lambda: self.pub.get_subscription_count() > 0, timeout), "no image subscriber"
        self.probe.spin(settle)


class Launcher:
    """Starts nodes declared in a launch XML as processes; stops them and checks their logs at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.procs: dict = {}

    def start(self, launch_file: str, only: list[str], params: dict[str, dict] | None = None, **args: str) -> dict:
        """Start the nodes `only` of the launch file; `params`: node name -> extra parameters, after the file's."""
        desc = launch_xml.parse_launch(LAUNCH / launch_file, {k: str(v) for k, v in args.items()})
        for spec in desc.nodes:
            if params and spec.name in params:
                spec.params.append(params[spec.name])
        env = dict(self.env, PYTHONPATH=os.pathsep.join(p for p in (str(TORCH_GUARD), self.env.get("PYTHONPATH")) if p))
        procs = launch_xml.start(desc, only, env=env, log_dir=self.log_dir)
        self.procs.update(procs)
        return procs

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def stop(self) -> None:
        launch_xml.stop(self.procs, timeout=3.0)


@pytest.fixture
def launcher(env: dict[str, str], tmp_path: Path) -> Iterator[Launcher]:
    lx = Launcher(env, tmp_path)
    yield lx
    lx.stop()
    for name in lx.procs:
        assert "TORCH_IMPORT_ATTEMPT" not in lx.log(name), f"{name} tried to import torch:\n{lx.log(name)[-2000:]}"


@pytest.fixture
def camera(probe: Probe, sequence) -> Camera:
    return Camera(probe, sequence[0])
