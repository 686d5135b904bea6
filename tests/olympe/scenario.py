"""Olympe bridge scenarios, run by tests/olympe/test_*.py INSIDE a private network namespace.

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python tests/olympe/scenario.py video ...'

Everything that binds a port (RTSP server, RTP, the fake drone on 0.0.0.0:44444, DDS) lives and dies in
the namespace, so nothing can reach a real drone or another test run. Each scenario prints one JSON
line with what it measured; the pytest side makes the assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import rclpy  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from mlkd_ros.dds import IMAGE_QOS, ros_env  # noqa: E402
from mlkd_ros.image_conversion import image_to_numpy  # noqa: E402

DOMAIN = 77


def node_cmd(module: str, params: dict[str, object], name: str) -> list[str]:
    code = f"import sys; from {module} import main; sys.exit(main())"
    ros = ["--ros-args", "-r", f"__node:={name}"]
    for k, v in params.items():
        ros += ["-p", f"{k}:={json.dumps(v) if isinstance(v, str) else v}"]
    return [sys.executable, "-c", code, *ros]


def start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(p: subprocess.Popen | None, timeout: float = 8.0) -> None:
    if p is None or p.poll() is not None:
        return
    p.send_signal(2)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def rtsp_server(video: Path, log: Path, port: int = 8554) -> subprocess.Popen:
    p = subprocess.Popen(
        ["/usr/bin/python3", str(ROOT / "scripts" / "rtsp_server.py"), str(video), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
        text=True,
        start_new_session=True,
    )
    line = p.stdout.readline()  # "READY rtsp://..." once it listens
    if not line.startswith("READY"):
        raise RuntimeError(f"RTSP server did not start: {line!r}, see {log}")
    return p


class Collector(Node):
    """Keeps every camera/image frame it receives with its stamp and arrival time."""

    def __init__(self) -> None:
        super().__init__("scenario_collector")
        self.frames: list[tuple[float, float, object]] = []
        self.lock = threading.Lock()
        self.create_subscription(Image, "camera/image", self._on_image, IMAGE_QOS)

    def _on_image(self, msg: Image) -> None:
        arr, _ = image_to_numpy(msg)
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self.lock:
            self.frames.append((stamp, time.time(), arr.copy()))


def match_frames(frames, source_dir: Path) -> dict:
    """Best-matching source frame (by PSNR) of each received frame."""
    import cv2
    import numpy as np

    src = [cv2.imread(str(p)) for p in sorted((source_dir / "img").glob("*.jpg"))]
    idx, psnr = [], []
    for _, _, img in frames:
        scores = [cv2.PSNR(s, img) if s.shape == img.shape else 0.0 for s in src]
        best = int(np.argmax(scores))
        idx.append(best)
        psnr.append(float(scores[best]))
    stamps = [f[0] for f in frames]
    dt = np.diff(stamps) if len(stamps) > 1 else np.array([0.0])
    return {
        "n": len(frames),
        "index": idx,
        "psnr": psnr,
        "stamp_dt_median": float(np.median(dt)),
        "stamp_span": float(stamps[-1] - stamps[0]) if stamps else 0.0,
        "shape": list(frames[0][2].shape) if frames else [],
    }


def spin_for(node: Node, seconds: float, until=None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and until()):
        rclpy.spin_once(node, timeout_sec=0.05)


def scenario_video(ns: argparse.Namespace) -> dict:
    """Bridge plays a file or an RTSP URL; collect what it publishes for `duration` seconds."""
    work = Path(ns.work)
    env = ros_env(DOMAIN)
    server = rtsp_server(Path(ns.video), work / "rtsp_server.log") if ns.rtsp else None
    url = "rtsp://127.0.0.1:8554/live" if ns.rtsp else f"file://{ns.video}"
    bridge = start(
        node_cmd("mlkd_ros.olympe_bridge", {"drone_ip": "", "video_url": url}, "olympe_bridge"),
        work / "bridge.log",
        env,
    )
    os.environ.update(env)
    rclpy.init()
    node = Collector()
    try:
        spin_for(node, 30.0, until=lambda: len(node.frames) > 0)  # Olympe start-up
        t0 = time.monotonic()
        spin_for(node, ns.duration)
        if not ns.rtsp:  # a file ends: on a loaded host it plays slower than real time, so wait for its end
            seen = -1
            while len(node.frames) != seen and time.monotonic() - t0 < 20.0:
                seen = len(node.frames)
                spin_for(node, 1.0)
        out = {"first_frame_wait_s": None, "collect_s": time.monotonic() - t0}
        out.update(match_frames(node.frames, Path(ns.source)))
        return out
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        stop(bridge)
        stop(server)


class Thumbs:
    """Which source frame is this? Nearest 60x40 grayscale thumbnail (cheap enough for every frame at 30 fps)."""

    def __init__(self, source_dir: Path) -> None:
        import cv2
        import numpy as np

        self.cv2, self.np = cv2, np
        paths = sorted((source_dir / "img").glob("*.jpg"))
        self.src = np.stack([self._thumb(cv2.imread(str(p))) for p in paths])

    def _thumb(self, bgr):
        g = self.cv2.cvtColor(
            self.cv2.resize(bgr, (60, 40), interpolation=self.cv2.INTER_AREA), self.cv2.COLOR_BGR2GRAY
        )
        return g.astype(self.np.float32)

    def index(self, bgr) -> int:
        d = self.np.abs(self.src - self._thumb(bgr)[None]).mean(axis=(1, 2))
        return int(self.np.argmin(d))


def pingpong(n: int, start: int = 0, repeats: int = 4) -> list[int]:
    """0..n-1..1 repeated: the target moves back and forth with no jump (a loop would teleport it)."""
    one = list(range(n)) + list(range(n - 2, 0, -1))
    seq = one * repeats
    return seq[start:]


def sequence_mp4(source_dir: Path, order: list[int], out: Path) -> Path:
    """MP4 of the source frames in `order` (symlinked as a numbered sequence for ffmpeg)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from olympe_helpers import make_mp4

    tmp = out.with_suffix("")
    (tmp / "img").mkdir(parents=True, exist_ok=True)
    imgs = sorted((source_dir / "img").glob("*.jpg"))
    for i, k in enumerate(order):
        (tmp / "img" / f"{i + 1:06d}.jpg").symlink_to(imgs[k])
    return make_mp4(tmp, out)


class E2E(Node):
    """Observer + operator: images (-> source index), boxes, diagnostics; init, follow/enable, arm."""

    def __init__(self, thumbs: Thumbs, gt) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PolygonStamped
        from std_srvs.srv import SetBool, Trigger

        from mlkd_ros.dds import CONTROL_QOS

        super().__init__("scenario_e2e")
        self.thumbs, self.gt = thumbs, gt
        self.frame_index: dict[int, int] = {}  # stamp ns -> source frame
        self.last_frame: tuple | None = None  # (header, index, wall time)
        self.frame_times: deque[float] = deque(maxlen=30)
        self.boxes: list[tuple[float, int, list | None]] = []  # (wall time, stamp ns, x,y,w,h or None)
        self.diag: dict[str, str] = {}
        self.tracker_diag: dict[str, str] = {}
        self.create_subscription(Image, "camera/image", self._on_image, IMAGE_QOS)
        self.create_subscription(PolygonStamped, "tracker/box", self._on_box, CONTROL_QOS)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, CONTROL_QOS)
        self.init_pub = self.create_publisher(PolygonStamped, "tracker/init", CONTROL_QOS)
        self.enable = self.create_client(SetBool, "follow/enable")
        self.arm = self.create_client(SetBool, "olympe_bridge/arm")
        self.triggers = {
            n: self.create_client(Trigger, f"olympe_bridge/{n}") for n in ("takeoff", "land", "emergency_hover")
        }

    def _on_image(self, msg: Image) -> None:
        arr, _ = image_to_numpy(msg)
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        k = self.thumbs.index(arr)
        self.frame_index[stamp] = k
        self.last_frame = (msg.header, k, time.time())
        self.frame_times.append(time.monotonic())

    def streaming_steadily(self) -> bool:
        """30 frames within the last 1.5 s (the source is 30 fps)."""
        t = self.frame_times
        return len(t) == t.maxlen and time.monotonic() - t[0] < 1.5

    def _on_box(self, msg) -> None:
        from mlkd_ros.bag import polygon_box

        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        box = polygon_box(msg.polygon)
        self.boxes.append((time.time(), stamp, None if not msg.polygon.points else [float(v) for v in box]))

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            if st.name.startswith("mlkd_olympe_bridge"):
                self.diag = {kv.key: kv.value for kv in st.values}
            elif st.name.startswith("mlkd_tracker"):
                self.tracker_diag = {kv.key: kv.value for kv in st.values}

    def tracker_receiving(self) -> bool:
        """The tracker has a second of frames buffered: an init on the newest frame seen here names one it has
        (a live stream's first frames reach the subscribers at different times, and the tracker refuses an
        init naming a frame older than its buffer)."""
        return int(self.tracker_diag.get("frames_received", "0")) >= 30

    def call(self, client, value: bool | None, timeout: float = 10.0):
        from std_srvs.srv import SetBool, Trigger

        if not client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f"service {client.srv_name} not available")
        fut = client.call_async(Trigger.Request() if value is None else SetBool.Request(data=value))
        rclpy.spin_until_future_complete(self, fut, timeout_sec=timeout)
        return fut.result()

    def init_on_latest(self) -> int:
        from geometry_msgs.msg import Point32, PolygonStamped

        header, k, _ = self.last_frame
        x, y, w, h = (float(v) for v in self.gt[k])
        msg = PolygonStamped(header=header)
        msg.polygon.points = [Point32(x=x, y=y), Point32(x=x + w, y=y + h)]
        self.init_pub.publish(msg)
        return k

    def box_errors(self, since: float) -> list[float]:
        """CLE of the boxes received after `since` against the ground truth of their frame (inf = lost)."""
        import numpy as np

        from mlkd_model.metrics import center_error

        out = []
        for t, stamp, box in self.boxes:
            if t < since or stamp not in self.frame_index:
                continue
            if box is None:
                out.append(float("inf"))
                continue
            g = np.asarray(self.gt[self.frame_index[stamp]], dtype=float)[None]
            out.append(float(center_error(np.asarray(box, dtype=float)[None], g)[0]))
        return out


def read_pcmds(path: Path) -> list[dict]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written
            if d["name"] == "ardrone3.Piloting.PCMD":
                out.append({"t": d["t"], **d["args"]})
    return out


def scenario_e2e(ns: argparse.Namespace) -> dict:
    from mlkd_ros import launch_xml
    from mlkd_ros.boxes import load_ground_truth

    work, source = Path(ns.work), Path(ns.source)
    env = ros_env(DOMAIN)
    os.environ.update(env)
    gt = load_ground_truth(source / "groundtruth_rect.txt")
    n_src = len(gt)
    order = pingpong(n_src)
    video1 = sequence_mp4(source, order, work / "video1.mp4")
    drone_log = work / "drone.jsonl"
    olympe_py = os.environ["MLKD_OLYMPE_PYTHON"]
    procs: dict[str, subprocess.Popen] = {}
    out: dict = {}
    rclpy.init()
    node = E2E(Thumbs(source), gt)
    try:
        fake = subprocess.Popen(
            [olympe_py, str(Path(__file__).parent / "fake_drone.py"), str(drone_log)],
            stdout=subprocess.PIPE,
            stderr=(work / "fake_drone.log").open("wb"),
            text=True,
            start_new_session=True,
        )
        procs["fake_drone"] = fake
        assert fake.stdout.readline().startswith("READY")
        desc = launch_xml.parse_launch(
            ROOT / "launch" / "ground_station.launch.xml",
            {"drone_ip": "127.0.0.1", "image_width": "360", "image_height": "240"},
        )
        procs.update(launch_xml.start(desc, env=env, log_dir=work))
        t0 = time.monotonic()
        spin_for(node, 60.0, until=lambda: node.diag.get("drone_state") == "connected")
        out["drone_connect_s"] = time.monotonic() - t0
        if node.diag.get("drone_state") != "connected":
            raise RuntimeError(f"bridge never connected to the fake drone: {node.diag}")
        # The drone's RTSP server comes up: the bridge (retrying with back-off) finds it on rtsp://127.0.0.1/live.
        procs["rtsp"] = rtsp_server(video1, work / "rtsp1.log", port=554)
        t0 = time.monotonic()
        spin_for(node, 30.0, until=lambda: node.last_frame is not None)
        out["first_frame_s"] = time.monotonic() - t0
        # Pdraw's first RTSP session sometimes stalls after a few frames (then the bridge reconnects, which the
        # video-loss part below tests on purpose): start the operator's part on a steady stream.
        spin_for(node, 30.0, until=node.streaming_steadily)
        spin_for(node, 30.0, until=node.tracker_receiving)
        r = node.call(node.triggers["takeoff"], None)
        out["takeoff"] = [r.success, r.message]
        out["init_frame"] = node.init_on_latest()
        node.call(node.enable, True)
        t_enable = time.time()
        spin_for(node, 1.5)
        out["pcmd_before_arm"] = len(read_pcmds(drone_log))
        out["boxes_before_arm"] = len([b for b in node.boxes if b[2] is not None])
        rec = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlkd_model.cli",
                "record",
                str(work / "flight"),
                "--topics",
                "camera/image",
                "tracker/box",
                "tracker/offset",
                "--duration",
                "4",
            ],
            env=env,
            stdout=(work / "record.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        arm = node.call(node.arm, True)
        out["arm"] = [arm.success, arm.message]
        t_arm = time.time()
        spin_for(node, ns.armed)
        # Pair each PCMD with the newest box the follow controller could have seen (0.1 s earlier). A PCMD
        # with no box for about the controller's timeout, or near a lost/stale report (empty box), is a hover
        # on doubt, which is right and tested below; it says nothing about the turn's sign: left out here.
        pairs, doubt = [], 0
        for p in read_pcmds(drone_log):
            if p["t"] <= t_arm + 0.3:
                continue
            prior = [(t, b) for t, _, b in node.boxes if t <= p["t"] - 0.1]
            recent = [b for t, _, b in node.boxes if p["t"] - 0.6 <= t <= p["t"]]
            stale = not prior or p["t"] - prior[-1][0] > 0.4  # the follow controller's timeout is 0.5 s
            if stale or prior[-1][1] is None or any(b is None for b in recent):
                doubt += 1
                continue
            box = prior[-1][1]
            pairs.append((box[0] + (box[2] - 1) / 2 - 180.0, p["yaw"], p["roll"], p["pitch"], p["gaz"]))
        out["pairs"], out["pcmds_on_doubt"] = pairs, doubt
        out["tracking_cle"] = node.box_errors(t_enable)
        spin_for(node, 30.0, until=lambda: rec.poll() is not None)  # keep observing while the recorder ends
        # Video stops: kill the RTSP server. Commands must fall back to hover.
        procs.pop("rtsp").kill()
        t_kill = time.time()
        last_k = node.last_frame[1]
        out["before_kill_cle"] = node.box_errors(t_kill - 1.0)
        spin_for(node, 3.0)
        p_after = [p for p in read_pcmds(drone_log) if p["t"] > t_kill]
        moving = [p["t"] - t_kill for p in p_after if p["yaw"] or p["roll"] or p["pitch"] or p["gaz"]]
        out["video_stop_last_move_s"] = max(moving) if moving else 0.0
        out["video_stop_pcmds"] = len(p_after)
        # The bridge notices after its stall_timeout (2 s) and says so at its next diagnostics (1 s period).
        spin_for(node, 10.0, until=lambda: node.diag.get("video_state") != "streaming")
        out["video_loss_reported_s"] = time.time() - t_kill
        out["video_stop_bridge"] = dict(node.diag)
        # Restart it; the scene continues where it was (a drone's camera keeps capturing).
        pos = max(i for i, k in enumerate(order[: 2 * n_src]) if k == last_k) if last_k in order else 0
        video2 = sequence_mp4(source, order[pos:], work / "video2.mp4")
        out["restart_at"] = [last_k, pos]
        procs["rtsp"] = rtsp_server(video2, work / "rtsp2.log", port=554)
        t_restart = time.time()
        n_frames = len(node.frame_index)
        spin_for(node, 20.0, until=lambda: len(node.frame_index) > n_frames + 30)
        out["video_back_s"] = time.time() - t_restart
        # The gap dropped the track: no box and no motion on the restarted video until re-init + re-enable.
        spin_for(node, 1.5)
        out["boxes_before_reinit"] = len([b for b in node.boxes if b[0] > t_restart and b[2] is not None])
        out["moving_before_reinit"] = len(
            [p for p in read_pcmds(drone_log) if p["t"] > t_kill + 1.5 and (p["yaw"] or p["pitch"] or p["gaz"])]
        )
        out["tracker_after_gap"] = dict(node.tracker_diag)
        t_reinit = time.time()
        node.init_on_latest()
        spin_for(node, 0.3)
        node.call(node.enable, True)
        n_before = len(node.boxes)
        spin_for(node, 20.0, until=lambda: len([b for b in node.boxes[n_before:] if b[2] is not None]) > 45)
        out["resume_s"] = time.time() - t_reinit
        out["resume_cle"] = node.box_errors(t_reinit)
        out["reconnects"] = node.diag.get("video_reconnects")
        moving_again = [p for p in read_pcmds(drone_log) if p["t"] > t_reinit and p["yaw"]]
        out["moving_again"] = len(moving_again)

        # Tracker stops while the drone is being steered (else hover would hold trivially): commands fall back
        # to hover within the timeouts.
        def steering() -> bool:
            return any(p["yaw"] or p["pitch"] for p in read_pcmds(drone_log) if p["t"] > time.time() - 0.15)

        spin_for(node, 15.0, until=steering)
        t_stop = time.time()
        out["moving_before_tracker_stop"] = len(
            [p for p in read_pcmds(drone_log) if t_stop - 1.0 < p["t"] <= t_stop and (p["yaw"] or p["pitch"])]
        )
        launch_xml.stop({"tracker": procs.pop("tracker")})
        spin_for(node, 2.5)
        moving = [p["t"] - t_stop for p in read_pcmds(drone_log) if p["t"] > t_stop and (p["yaw"] or p["pitch"])]
        out["tracker_stop_last_move_s"] = max(moving) if moving else 0.0
        r = node.call(node.triggers["emergency_hover"], None)
        out["emergency_hover"] = [r.success, r.message]
        t_emergency = time.time()
        spin_for(node, 1.0)
        out["after_emergency"] = [p for p in read_pcmds(drone_log) if p["t"] > t_emergency + 0.2]
        out["armed_after_emergency"] = node.diag.get("armed")
        r = node.call(node.triggers["land"], None)
        out["land"] = [r.success, r.message]
        names = [json.loads(line)["name"] for line in drone_log.read_text().splitlines() if line.strip()]
        out["drone_commands"] = [n for n in names if n in ("ardrone3.Piloting.TakeOff", "ardrone3.Piloting.Landing")]
        return out
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        launch_xml.stop({k: v for k, v in procs.items() if k not in ("rtsp", "fake_drone")})
        for name in ("rtsp", "fake_drone"):
            stop(procs.get(name))


class GapObserver(E2E):
    """E2E's observer plus cmd_vel and the tracker's diagnostics, with arrival times."""

    def __init__(self, thumbs: Thumbs, gt) -> None:
        from geometry_msgs.msg import Twist

        from mlkd_ros.dds import CONTROL_QOS

        super().__init__(thumbs, gt)
        self.cmds: list[tuple[float, bool]] = []  # wall time, non-zero
        self.tracker_states: list[tuple[float, str, str]] = []  # wall time, state, message
        self.create_subscription(Twist, "cmd_vel", self._on_cmd, CONTROL_QOS)

    def _on_cmd(self, t) -> None:
        self.cmds.append((time.time(), any((t.linear.x, t.linear.y, t.linear.z, t.angular.z))))

    def _on_diag(self, msg) -> None:
        super()._on_diag(msg)
        for st in msg.status:
            if st.name.startswith("mlkd_tracker"):
                values = {kv.key: kv.value for kv in st.values}
                self.tracker_states.append((time.time(), values["state"], st.message))

    def moving_after(self, t0: float) -> list[float]:
        return [t - t0 for t, m in self.cmds if m and t > t0]


def scenario_video_gap(ns: argparse.Namespace) -> dict:
    """Following, then the bridge is killed and restarted (MP4 or RTSP source): the target is lost for good."""
    from mlkd_ros import launch_xml
    from mlkd_ros.boxes import load_ground_truth

    work, source = Path(ns.work), Path(ns.source)
    env = ros_env(DOMAIN)
    os.environ.update(env)
    gt = load_ground_truth(source / "groundtruth_rect.txt")
    video = sequence_mp4(source, pingpong(len(gt)), work / "video.mp4")
    procs: dict[str, subprocess.Popen] = {}
    if ns.rtsp:
        procs["rtsp"] = rtsp_server(video, work / "rtsp.log")
    url = "rtsp://127.0.0.1:8554/live" if ns.rtsp else f"file://{video}"
    bridge_cmd = node_cmd("mlkd_ros.olympe_bridge", {"drone_ip": "", "video_url": url}, "olympe_bridge")
    out: dict = {}
    rclpy.init()
    node = GapObserver(Thumbs(source), gt)
    try:
        desc = launch_xml.parse_launch(
            ROOT / "launch" / "ground_station.launch.xml", {"image_width": "360", "image_height": "240"}
        )
        procs.update(launch_xml.start(desc, only=["tracker", "follow_controller"], env=env, log_dir=work))
        procs["bridge"] = start(bridge_cmd, work / "bridge1.log", env)
        spin_for(node, 60.0, until=lambda: node.last_frame is not None)
        spin_for(node, 30.0, until=node.streaming_steadily)
        spin_for(node, 30.0, until=node.tracker_receiving)
        node.init_on_latest()
        out["enable"] = node.call(node.enable, True).message
        t_enable = time.time()
        spin_for(node, 3.0)
        out["moving_while_following"] = len(node.moving_after(t_enable))
        # The bridge dies (a WiFi dropout looks the same to the tracker): no more frames.
        procs.pop("bridge").kill()
        spin_for(node, 0.3)
        t_last = node.last_frame[2]
        spin_for(node, 3.0)
        out["moving_after_last_frame_s"] = node.moving_after(t_last)
        out["tracker_states_after"] = [(round(t - t_last, 2), s) for t, s, _ in node.tracker_states if t > t_last]
        out["lost_message"] = next((m for t, s, m in node.tracker_states if t > t_last and s == "lost"), "")
        # Restarted: the video comes back with the scene elsewhere.
        procs["bridge"] = start(bridge_cmd, work / "bridge2.log", env)
        n_frames = len(node.frame_index)
        spin_for(node, 60.0, until=lambda: len(node.frame_index) > n_frames + 30)
        t_back = time.time()
        out["back_after_s"] = t_back - t_last
        spin_for(node, 3.0)
        out["boxes_after_restart"] = len([b for b in node.boxes if b[0] > t_back and b[2] is not None])
        out["moving_after_restart"] = node.moving_after(t_last + 0.5)
        # The operator re-inits: boxes again, but still no motion until following is re-enabled.
        node.init_on_latest()
        t_init = time.time()
        spin_for(node, 1.5)
        out["boxes_after_reinit"] = len([b for b in node.boxes if b[0] > t_init and b[2] is not None])
        out["moving_after_reinit"] = len(node.moving_after(t_init))
        out["enable_again"] = node.call(node.enable, True).message
        t_again = time.time()
        spin_for(node, 2.0)
        out["moving_after_reenable"] = len(node.moving_after(t_again))
        out["tracker_state_end"] = node.tracker_states[-1][1] if node.tracker_states else None
        return out
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        launch_xml.stop({k: v for k, v in procs.items() if k != "rtsp"})
        stop(procs.get("rtsp"))


def fake_drone(log: Path, work: Path, *extra: str, ready: bool = True) -> subprocess.Popen:
    """extra: command names never answered (ardrone3.Piloting.TakeOff), then fake_drone.py options.
    ready: wait until it listens (else read its READY line later, `wait_ready`)."""
    args = [os.environ["MLKD_OLYMPE_PYTHON"], str(Path(__file__).parent / "fake_drone.py"), str(log)]
    ignore = [e for e in extra if "." in e and not e.startswith("-") and not e[0].isdigit()]
    if ignore:
        args += ["--ignore", *ignore]
    args += [e for e in extra if e not in ignore]
    p = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=(work / f"{log.stem}.log").open("wb"), text=True, start_new_session=True
    )
    if ready:
        wait_ready(p)
    return p


def wait_ready(p: subprocess.Popen) -> None:
    assert p.stdout.readline().startswith("READY")


class Pilot(Node):
    """Operator side of the link tests: bridge diagnostics (with arrival times), cmd_vel, the bridge services."""

    def __init__(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import Twist
        from std_srvs.srv import SetBool, Trigger

        from mlkd_ros.dds import CONTROL_QOS

        super().__init__("scenario_pilot")
        self.Twist = Twist
        self.diags: list[tuple[float, int, dict[str, str], str]] = []  # wall time, level, values, message
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, CONTROL_QOS)
        self.cmd_pub = self.create_publisher(Twist, "cmd_vel", CONTROL_QOS)
        self.arm = self.create_client(SetBool, "olympe_bridge/arm")
        self.triggers = {
            n: self.create_client(Trigger, f"olympe_bridge/{n}")
            for n in ("takeoff", "land", "emergency_hover", "return_home")
        }

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            if st.name.startswith("mlkd_olympe_bridge"):
                level = st.level[0] if isinstance(st.level, bytes) else int(st.level)
                self.diags.append((time.time(), level, {kv.key: kv.value for kv in st.values}, st.message))

    @property
    def diag(self) -> dict[str, str]:
        return self.diags[-1][2] if self.diags else {}

    def cmd(self, pitch_speed: float) -> float:
        t = self.Twist()
        t.linear.x = pitch_speed
        self.cmd_pub.publish(t)
        return time.time()

    def fly(self, seconds: float, speed: float = 1.0, until=None) -> None:
        """cmd_vel at 20 Hz, as the follow controller sends it (for `seconds`, or until `until()`)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until()):
            self.cmd(speed)
            spin_for(self, 0.05)

    def set_param(self, name: str, value) -> list:
        from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
        from rcl_interfaces.srv import SetParameters

        if isinstance(value, str):
            v = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        else:
            v = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
        client = self.create_client(SetParameters, "olympe_bridge/set_parameters")
        if not client.wait_for_service(timeout_sec=10):
            raise RuntimeError("olympe_bridge/set_parameters not available")
        fut = client.call_async(SetParameters.Request(parameters=[Parameter(name=name, value=v)]))
        rclpy.spin_until_future_complete(self, fut, timeout_sec=10)
        r = fut.result().results[0]
        return [r.successful, r.reason]

    def call_async(self, client, value: bool | None):
        from std_srvs.srv import SetBool, Trigger

        if not client.wait_for_service(timeout_sec=10):
            raise RuntimeError(f"service {client.srv_name} not available")
        return client.call_async(Trigger.Request() if value is None else SetBool.Request(data=value))

    def call(self, client, value: bool | None, timeout: float = 10.0) -> list:
        fut = self.call_async(client, value)
        rclpy.spin_until_future_complete(self, fut, timeout_sec=timeout)
        return [fut.result().success, fut.result().message]


def scenario_link(ns: argparse.Namespace) -> dict:
    """Fake drone killed while armed and brought back; then a take-off it never acknowledges."""
    work = Path(ns.work)
    env = ros_env(DOMAIN)
    os.environ.update(env)
    out: dict = {}
    logs = [work / "drone1.jsonl", work / "drone2.jsonl"]
    drone = fake_drone(logs[0], work)
    bridge = start(
        node_cmd("mlkd_ros.olympe_bridge", {"drone_ip": "127.0.0.1", "flight_ack_timeout": 2.0}, "olympe_bridge"),
        work / "bridge.log",
        env,
    )
    rclpy.init()
    node = Pilot()
    try:
        spin_for(node, 90.0, until=lambda: node.diag.get("drone_state") == "connected")
        out["first_connect"] = node.diag.get("drone_state")
        out["arm"] = node.call(node.arm, True)
        node.fly(1.5)
        out["pcmd_armed"] = len([p for p in read_pcmds(logs[0]) if p["pitch"]])
        # The drone goes away (battery pulled, out of WiFi range) while the operator keeps commanding.
        drone.kill()
        t_kill = time.time()
        node.fly(3.0)
        lost = [d for d in node.diags if d[0] > t_kill and d[2]["drone_state"] == "disconnected"]
        out["loss_reported_s"] = lost[0][0] - t_kill if lost else None
        out["loss_level"] = lost[0][1] if lost else None
        out["loss_message"] = lost[0][3] if lost else ""
        out["armed_after_loss"] = lost[0][2]["armed"] if lost else None
        out["pcmd_sent_after_loss"] = [int(d[2]["pcmd_sent"]) for d in lost]
        out["arm_while_lost"] = node.call(node.arm, True)
        # It comes back: the bridge reconnects by itself, and stays disarmed.
        drone = fake_drone(logs[1], work, "ardrone3.Piloting.TakeOff")
        t_back = time.time()
        spin_for(node, 90.0, until=lambda: node.diag.get("drone_state") == "connected")
        out["reconnect_s"] = time.time() - t_back
        out["diag_after_reconnect"] = node.diag
        node.fly(2.0)
        out["pcmd_before_rearm"] = len(read_pcmds(logs[1]))
        out["rearm"] = node.call(node.arm, True)
        t_rearm = time.time()
        node.fly(1.5)
        out["pcmd_after_rearm"] = len([p for p in read_pcmds(logs[1]) if p["t"] > t_rearm and p["pitch"]])
        # Run-time parameters: a piloting cap applies at once; what picks the drone is read-only.
        out["set_max_pitch"] = node.set_param("max_pitch", 10)
        t_cap = time.time()
        node.fly(1.0)
        out["pitch_after_cap"] = sorted({p["pitch"] for p in read_pcmds(logs[1]) if p["t"] > t_cap + 0.2})
        out["set_drone_ip"] = node.set_param("drone_ip", "192.168.42.1")
        # A take-off the drone never acknowledges: meanwhile a stop on cmd_vel, then an emergency hover.
        takeoff = node.call_async(node.triggers["takeoff"], None)
        t_takeoff = time.time()
        node.fly(0.5)
        t_stop = node.cmd(0.0)
        spin_for(node, 0.5)
        node.fly(0.3)
        hover = node.call_async(node.triggers["emergency_hover"], None)
        t_hover = time.time()
        rclpy.spin_until_future_complete(node, hover, timeout_sec=10)
        out["hover_answer_s"] = time.time() - t_hover
        out["hover"] = [hover.result().success, hover.result().message]
        rclpy.spin_until_future_complete(node, takeoff, timeout_sec=10)
        out["takeoff"] = [takeoff.result().success, takeoff.result().message, time.time() - t_takeoff]
        spin_for(node, 0.5)
        pcmds = read_pcmds(logs[1])
        zero = lambda p: not (p["roll"] or p["pitch"] or p["yaw"] or p["gaz"])  # noqa: E731
        out["stop_reached_s"] = next((p["t"] - t_stop for p in pcmds if p["t"] > t_stop and zero(p)), None)
        out["moving_after_stop"] = [
            p["t"] - t_stop for p in pcmds if t_stop + 0.1 < p["t"] < t_stop + 0.45 and not zero(p)
        ]
        out["hover_reached_s"] = next((p["t"] - t_hover for p in pcmds if p["t"] > t_hover and zero(p)), None)
        out["pcmd_after_hover"] = [p["t"] - t_hover for p in pcmds if p["t"] > t_hover + 0.2]
        out["takeoff_sent"] = any(
            json.loads(line)["name"] == "ardrone3.Piloting.TakeOff" for line in logs[1].read_text().splitlines()
        )
        return out
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        stop(bridge)
        stop(drone)


def moving(p: dict) -> bool:
    return bool(p["roll"] or p["pitch"] or p["yaw"] or p["gaz"])


def threads_of(pid: int) -> int | None:
    """Thread count of a process of this PID namespace (/proc here is the host's: match on NSpid)."""
    ours = os.readlink("/proc/self/ns/pid")
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if os.readlink(status.parent / "ns" / "pid") != ours:
                continue
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("NSpid", "").split()[-1:] == [str(pid)]:
            return int(fields["Threads"])
    return None


BOOT_S = 3.5


def scenario_reconnect(ns: argparse.Namespace) -> dict:
    """One bridge; the fake drone SIGKILLed while armed and flying, started again after each absence in turn.

    A drone started again answers only after booting: the fake one listens BOOT_S after its restart, at a
    precise time. In the 20 s round that is ~23.5 s after the loss, when Olympe's 45 s connect (which the
    bridge once started right at the loss) switches from Net to NetRaw discovery: a drone appearing then
    left the bridge's one controller in an 'Error' state for good. The operator keeps sending cmd_vel at
    20 Hz all along. Per round: loss report, PCMD count, the back-off the bridge was waiting when the drone
    came back (its last "retrying in N s"), reconnect time, what the returned drone received before and
    after a new arm, the bridge's thread count.
    """
    import re

    work = Path(ns.work)
    env = ros_env(DOMAIN)
    os.environ.update(env)
    drone = fake_drone(work / "drone0.jsonl", work)
    bridge = start(
        node_cmd("mlkd_ros.olympe_bridge", {"drone_ip": "127.0.0.1"}, "olympe_bridge"), work / "bridge.log", env
    )
    rclpy.init()
    node = Pilot()
    out: dict = {"rounds": []}
    try:
        t0 = time.time()
        spin_for(node, 90.0, until=lambda: node.diag.get("drone_state") == "connected")
        out["first_connect_s"] = time.time() - t0
        for i, absence in enumerate(float(a) for a in ns.absences.split(",")):
            r: dict = {"absence_s": absence}
            out["rounds"].append(r)
            log, new_log = work / f"drone{i}.jsonl", work / f"drone{i + 1}.jsonl"
            r["arm"] = node.call(node.arm, True)
            t_arm = time.time()
            node.fly(1.0)
            r["pcmd_armed"] = len([p for p in read_pcmds(log) if p["t"] > t_arm and moving(p)])
            drone.kill()
            drone.wait()
            t_kill = time.time()
            t_back = t_kill + absence + BOOT_S  # when the returned drone listens
            drone = fake_drone(new_log, work, "--listen-at", f"{t_back:.3f}", ready=False)
            node.fly(t_back - 0.5 - time.time())  # the follow controller does not know
            lost = [d for d in node.diags if d[0] > t_kill and d[2]["drone_state"] == "disconnected"]
            r["loss_reported_s"] = lost[0][0] - t_kill if lost else None
            away = [d for d in node.diags if lost and d[0] >= lost[0][0]]
            r["states_away"] = sorted({d[2]["drone_state"] for d in away})
            r["armed_away"] = sorted({d[2]["armed"] for d in away})
            r["pcmd_sent_away"] = sorted({int(d[2]["pcmd_sent"]) for d in away})
            r["arm_while_away"] = node.call(node.arm, True)
            wait_ready(drone)
            r["late_s"] = time.time() - t_back  # listening after t_back by this much (~0)
            want = str(i + 2)
            node.fly(60.0, until=lambda w=want: node.diag.get("drone_connections") == w)
            up = [d for d in node.diags if d[0] > t_back and d[2]["drone_connections"] == want]
            r["reconnect_s"] = up[0][0] - t_back if up else None
            t_up = up[0][0] if up else time.time()
            retry = [
                d[2]["drone_detail"]
                for d in node.diags
                if t_kill < d[0] < t_up and "retrying in" in d[2]["drone_detail"]
            ]
            found = re.search(r"retrying in ([0-9.]+) s", retry[-1]) if retry else None
            r["backoff_s"] = float(found.group(1)) if found else 0.0  # 0: no failed attempt, none waited
            r["retry_detail"] = retry[-1] if retry else ""
            if not up:
                r["drone_detail"] = node.diag.get("drone_detail")
                break
            r["armed_after_reconnect"] = up[0][2]["armed"]
            node.fly(1.0)
            r["pcmd_before_rearm"] = len(read_pcmds(new_log))
            r["rearm"] = node.call(node.arm, True)
            t_rearm = time.time()
            node.fly(1.0)
            r["pcmd_after_rearm"] = len([p for p in read_pcmds(new_log) if p["t"] > t_rearm and moving(p)])
            r["bridge_threads"] = threads_of(bridge.pid)
        out["disarm"] = node.call(node.arm, False)
        return out
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        stop(bridge)
        stop(drone)


def spin_until_done(node: Node, futures: list, timeout: float) -> dict[int, float]:
    """Spin until every future is done; returns index -> wall time it was first seen done."""
    done: dict[int, float] = {}
    end = time.monotonic() + timeout
    while len(done) < len(futures) and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.01)
        now = time.time()
        done.update({k: now for k, f in enumerate(futures) if f.done() and k not in done})
    return done


def scenario_pending(ns: argparse.Namespace) -> dict:
    """Take-offs and landings the fake drone never acknowledges (flight_ack_timeout 2 s); 1 s into their wait,
    while flying, the operator presses emergency hover or disarm. Per case: that answer's latency, when the
    drone got a zero PCMD and its last PCMD, and every pending command's answer and latency."""
    work = Path(ns.work)
    env = ros_env(DOMAIN)
    os.environ.update(env)
    log = work / "drone.jsonl"
    drone = fake_drone(log, work, "ardrone3.Piloting.TakeOff", "ardrone3.Piloting.Landing")
    params = {"drone_ip": "127.0.0.1", "flight_ack_timeout": 2.0}
    bridge = start(node_cmd("mlkd_ros.olympe_bridge", params, "olympe_bridge"), work / "bridge.log", env)
    rclpy.init()
    node = Pilot()
    out: dict = {"cases": []}
    try:
        spin_for(node, 90.0, until=lambda: node.diag.get("drone_state") == "connected")
        for pending, action in (
            ("takeoff", "emergency_hover"),
            ("land", "disarm"),
            ("takeoff", "disarm"),
            ("land", "emergency_hover"),
            ("takeoff,takeoff,land,land", "emergency_hover"),  # an impatient operator presses each twice
            ("takeoff,takeoff,land,land", "disarm"),
        ):
            r: dict = {"pending": pending, "action": action}
            out["cases"].append(r)
            r["arm"] = node.call(node.arm, True)
            node.fly(0.5)
            t_case = time.time()
            futs = [(name, node.call_async(node.triggers[name], None), time.time()) for name in pending.split(",")]
            seen: dict[int, float] = {}  # a repeated request is answered during this second
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                node.cmd(1.0)
                spin_for(node, 0.05)
                now = time.time()
                seen.update({k + 1: now for k, (_, f, _) in enumerate(futs) if f.done() and k + 1 not in seen})
            t = time.time()
            fut = (
                node.call_async(node.arm, False) if action == "disarm" else node.call_async(node.triggers[action], None)
            )
            done = spin_until_done(node, [fut] + [f for _, f, _ in futs], 10.0)
            done.update(seen)
            r["answer_s"] = done[0] - t if 0 in done else None
            r["answer"] = [fut.result().success, fut.result().message] if fut.done() else None
            r["commands"] = [
                [name, f.result().success, f.result().message, done[k + 1] - sent] if k + 1 in done else [name, None]
                for k, (name, f, sent) in enumerate(futs)
            ]
            spin_for(node, 1.0)
            pcmds = read_pcmds(log)
            r["moving_before"] = len([p for p in pcmds if t - 0.5 < p["t"] < t and moving(p)])
            r["zero_reached_s"] = next((p["t"] - t for p in pcmds if p["t"] > t and not moving(p)), None)
            r["moving_after_s"] = [p["t"] - t for p in pcmds if p["t"] > t + 0.1 and moving(p)]
            r["last_pcmd_s"] = max((p["t"] - t for p in pcmds), default=None)
            lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
            flight = [
                d["name"].rsplit(".", 1)[1] for d in lines if d["t"] > t_case and "Piloting.PCMD" not in d["name"]
            ]
            r["drone_got"] = {n: flight.count(n) for n in ("TakeOff", "Landing")}
        return out
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        stop(bridge)
        stop(drone)


SETTINGS = {
    "max_tilt_deg": 15.0,
    "max_vertical_speed": 1.5,
    "max_rotation_speed_deg": 60.0,
    "max_altitude": 50.0,
    "max_distance": 200.0,
    "gimbal_pitch_deg": -30.0,
    "exposure_mode": "automatic_prefer_shutter_speed",
    "ev_compensation": "ev_1_00",
    "max_iso": "iso_3200",
    "battery_hover_percent": 20,
    "battery_rth_percent": 15,
}


def scenario_telemetry(ns: argparse.Namespace) -> dict:
    """Fake drone sending state messages; settings, gimbal, return-home and the low-battery failsafe."""
    from geometry_msgs.msg import QuaternionStamped, Vector3Stamped
    from sensor_msgs.msg import BatteryState, NavSatFix
    from std_msgs.msg import Float32, Int16

    from mlkd_ros.dds import CONTROL_QOS

    work = Path(ns.work)
    env = ros_env(DOMAIN)
    os.environ.update(env)
    log = work / "drone.jsonl"
    drone = None
    params = {"drone_ip": "127.0.0.1", **SETTINGS}
    bridge = start(node_cmd("mlkd_ros.olympe_bridge", params, "olympe_bridge"), work / "bridge.log", env)
    rclpy.init()
    node = Pilot()
    got: dict[str, object] = {}
    topics = {
        "battery": BatteryState,
        "gps": NavSatFix,
        "altitude": Float32,
        "attitude": QuaternionStamped,
        "speed": Vector3Stamped,
        "link_quality": Int16,
    }
    for name, typ in topics.items():
        node.create_subscription(typ, f"olympe_bridge/{name}", lambda m, n=name: got.__setitem__(n, m), CONTROL_QOS)
    batteries: list[float] = []
    node.create_subscription(
        BatteryState, "olympe_bridge/battery", lambda m: batteries.append(m.percentage), CONTROL_QOS
    )
    gimbal_pub = node.create_publisher(Float32, "olympe_bridge/gimbal_pitch", CONTROL_QOS)
    out: dict = {}
    try:
        # Telemetry is published on change: the drone comes once our subscriptions see the bridge's publishers
        # (the fake Anafi connects in under a second, before DDS would have matched them).
        seen = lambda: all(node.count_publishers(f"olympe_bridge/{n}") for n in topics)  # noqa: E731
        spin_for(node, 60.0, until=lambda: bool(node.diag) and seen())
        spin_for(node, 1.0)
        drone = fake_drone(log, work, "--battery", "24,2")  # 24 %, 2 %/s once flying: 20 % after 2 s, 15 % after 4.5 s
        spin_for(node, 90.0, until=lambda: node.diag.get("drone_state") == "connected")
        spin_for(node, 5.0, until=lambda: len(got) == len(topics))
        b, g, q, v = got.get("battery"), got.get("gps"), got.get("attitude"), got.get("speed")
        out["telemetry"] = {
            "topics": sorted(got),
            "battery": b and round(b.percentage, 3),
            "gps": g and [round(g.latitude, 4), round(g.longitude, 4), round(g.altitude, 1), g.status.status],
            "altitude": got.get("altitude") and round(got["altitude"].data, 2),
            "attitude": q and [round(x, 4) for x in (q.quaternion.x, q.quaternion.y, q.quaternion.z, q.quaternion.w)],
            "speed": v and [round(x, 2) for x in (v.vector.x, v.vector.y, v.vector.z)],
            "link_quality": got.get("link_quality") and got["link_quality"].data,
        }
        spin_for(node, 2.0, until=lambda: gimbal_pub.get_subscription_count() > 0)
        gimbal_pub.publish(Float32(data=-45.0))
        spin_for(node, 1.0)
        out["rth"] = node.call(node.triggers["return_home"], None)
        out["arm"] = node.call(node.arm, True)
        t_arm = time.time()
        node.fly(7.0)
        out["diag_end"] = node.diag
        out["battery_seen"] = sorted({round(x * 100) for x in batteries})
        cmds = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        out["commands"] = [
            [c["name"], c.get("args", {}), c["t"] - t_arm] for c in cmds if c["name"] != "ardrone3.Piloting.PCMD"
        ]
        out["pcmd_moving_s"] = [p["t"] - t_arm for p in read_pcmds(log) if p["pitch"]]
        return out
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        stop(bridge)
        stop(drone)


def scenario_replay(ns: argparse.Namespace) -> dict:
    """Recorded flight replayed to the tracker node twice: by launch/replay.launch.xml's own bag_player
    (bag_player + tracker + cle_logger), then by `mlkd replay --rate 2` to a tracker + cle_logger."""
    from mlkd_ros import launch_xml

    work = Path(ns.work)
    out = {}
    for i, how in enumerate(("launch", "cli")):
        env = ros_env(DOMAIN + 1 + i)
        cle_csv = work / f"replay_{how}.csv"
        args = {"bag": ns.bag, "cle_csv": str(cle_csv), "ground_truth": ns.gt}
        desc = launch_xml.parse_launch(ROOT / "launch" / "replay.launch.xml", args)
        only = None if how == "launch" else ["tracker", "cle_logger"]
        procs = launch_xml.start(desc, only=only, env=env, log_dir=work)
        try:
            t0 = time.monotonic()
            if how == "launch":
                rc = procs["bag_player"].wait(120)
            else:
                cmd = [
                    sys.executable,
                    "-m",
                    "mlkd_model.cli",
                    "replay",
                    ns.bag,
                    "--rate",
                    "2",
                    "--gt",
                    ns.gt,
                    "--wait-for",
                    "tracker/cle",
                ]
                player = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
                (work / "player_cli.log").write_text(player.stdout + player.stderr)
                rc = player.returncode
            play_s = time.monotonic() - t0
            time.sleep(1.0)  # the tracker finishes its last frames, the logger flushes
            lines = cle_csv.read_text().splitlines() if cle_csv.exists() else []
            out[how] = {"rc": rc, "play_s": play_s, "cle_lines": len(lines) - 1, "cle_csv": str(cle_csv)}
        finally:
            launch_xml.stop(procs)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    v = sub.add_parser("video")
    v.add_argument("--video", required=True)
    v.add_argument("--source", required=True, help="OTB folder the video was made from")
    v.add_argument("--rtsp", action="store_true", help="serve the video over RTSP instead of file://")
    v.add_argument("--duration", type=float, default=5.0)
    v.add_argument("--work", required=True)
    e = sub.add_parser("e2e")
    e.add_argument("--source", required=True, help="OTB folder")
    e.add_argument("--armed", type=float, default=6.0, help="seconds of armed following")
    e.add_argument("--work", required=True)
    r = sub.add_parser("replay")
    r.add_argument("--bag", required=True)
    r.add_argument(
        "--gt",
        required=True,
        help="ground truth: the players init on its first box, the tracker measures CLE against it",
    )
    r.add_argument("--work", required=True)
    g = sub.add_parser("video_gap")
    g.add_argument("--source", required=True, help="OTB folder")
    g.add_argument("--rtsp", action="store_true", help="the bridge plays an RTSP stream instead of the MP4")
    g.add_argument("--work", required=True)
    m = sub.add_parser("telemetry")
    m.add_argument("--work", required=True)
    k = sub.add_parser("link")
    k.add_argument("--work", required=True)
    c = sub.add_parser("reconnect")
    c.add_argument("--absences", default="5,20,60", help="seconds the drone stays away, in turn")
    c.add_argument("--work", required=True)
    pe = sub.add_parser("pending")
    pe.add_argument("--work", required=True)
    ns = ap.parse_args()
    out = {
        "video": scenario_video,
        "e2e": scenario_e2e,
        "replay": scenario_replay,
        "link": scenario_link,
        "reconnect": scenario_reconnect,
        "pending": scenario_pending,
        "video_gap": scenario_video_gap,
        "telemetry": scenario_telemetry,
    }[ns.what](ns)
    print("RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
