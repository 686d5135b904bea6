#!/usr/bin/env python3
"""Latency of the ROS 2 tracker node at 30 Hz 640x480 (or --width x --height) input (a benchmark, not a test).

Starts the tracker from launch/ground_station.launch.xml (as the tests do), streams a sequence
resized to 640x480 bgr8 at --rate Hz, inits on the first frame and measures:
- latency from the image stamp to the box arriving here (median, p95): the node's stamp-to-publish
  time plus one small-message DDS hop back;
- pure inference: the same tracker on the same frames in this process, with no ROS around it;
- the node's overhead = median latency - median inference, and where it goes, from the node's own
  per-frame timings in /diagnostics (medians over the run): stamp -> the node's middleware received
  the image (publisher serialisation, the DDS hop), -> the node's callback ran (executor wake-up, take,
  deserialisation), callback -> box published minus inference (image view, box / offset messages), the
  node's inference against the same tracker alone here, and box published -> received here (the hop
  back); plus rclpy's (de)serialisation of one such Image timed in this process;
- frames sent / received by the node / processed / dropped (newest-frame policy) from /diagnostics.

    .venv/bin/python scripts/bench_ros_latency.py [--seconds 10] [--rate 30] [--sequence DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_SEQ = ROOT.parent / "shared" / "data" / "sequences" / "fixtures" / "otb_Crossing"


def load_frames(seq: Path, size: tuple[int, int]) -> tuple[list[np.ndarray], np.ndarray]:
    paths = sorted((seq / "img").glob("*.jpg"))
    first = cv2.imread(str(paths[0]))
    sx, sy = size[0] / first.shape[1], size[1] / first.shape[0]
    frames = [cv2.resize(cv2.imread(str(p)), size) for p in paths]
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",") * [sx, sy, sx, sy]
    return frames, gt


def pure_inference_ms(frames: list[np.ndarray], box, n: int, threads: int, spin: bool) -> np.ndarray:
    from mlkd_model.load import load_tracker

    tracker = load_tracker(threads=threads, spin=spin)
    tracker.init(frames[0], box)
    times = []
    for i in range(1, n + 1):
        f = frames[i % len(frames)]
        t0 = time.perf_counter()
        tracker.track(f)
        times.append((time.perf_counter() - t0) * 1e3)
    return np.asarray(times)


def node_medians(diags: list) -> dict[str, float]:
    """Medians of the node's latency / processing / inference figures over the diagnostics of the run."""
    keys = ("latency_ms", "delivery_ms", "wait_ms", "processing_ms", "inference_ms")
    samples: dict[str, list[float]] = {k: [] for k in keys}
    for msg in diags:
        values = {kv.key: kv.value for kv in msg.status[0].values}
        if values.get("state") in ("tracking", "low_score") and all(values.get(k, "nan") != "nan" for k in keys):
            for k in keys:
                samples[k].append(float(values[k]))
    return {k: round(float(np.median(v)), 2) if v else float("nan") for k, v in samples.items()}


def serialisation_ms(frame: np.ndarray, n: int = 30) -> tuple[float, float]:
    """rclpy's serialise / deserialise of one bgr8 Image of this frame's size, median ms."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from mlkd_ros.image_conversion import numpy_to_image

    msg = numpy_to_image(frame)
    raw = serialize_message(msg)
    ser, de = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        serialize_message(msg)
        t1 = time.perf_counter()
        deserialize_message(raw, Image)
        de.append(time.perf_counter() - t1)
        ser.append(t1 - t0)
    return 1e3 * float(np.median(ser)), 1e3 * float(np.median(de))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--sequence", type=Path, default=DEFAULT_SEQ)
    ap.add_argument("--threads", type=int, default=1, help="the node's inference_threads (and this process's)")
    ap.add_argument("--spin", action="store_true", help="the node's inference_spin (and this process's)")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON too")
    args = ap.parse_args()

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PolygonStamped
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from mlkd_ros import launch_xml
    from mlkd_ros.boxes import box_to_polygon
    from mlkd_ros.camera_frame import CAMERA_FRAME
    from mlkd_ros.dds import CONTROL_QOS, IMAGE_QOS, ros_env
    from mlkd_ros.image_conversion import numpy_to_image

    frames, gt = load_frames(args.sequence, (args.width, args.height))
    domain = random.randint(100, 200)
    env = ros_env(domain)
    os.environ.update(env)  # this process's participant needs the same DDS settings as the node
    log_dir = Path(tempfile.mkdtemp(prefix="bench_ros_"))
    desc = launch_xml.parse_launch(ROOT / "launch" / "ground_station.launch.xml")
    for spec in desc.nodes:
        if spec.name == "tracker":
            spec.params.append({"inference_threads": args.threads, "inference_spin": args.spin})
    procs = launch_xml.start(desc, ["tracker"], env=env, log_dir=log_dir)

    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("bench_ros_latency", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    latencies: list[float] = []
    diags: list = []

    def on_box(msg: PolygonStamped) -> None:
        if msg.polygon.points:
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            latencies.append((time.time() - stamp) * 1e3)

    node.create_subscription(PolygonStamped, "tracker/box", on_box, CONTROL_QOS)
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, CONTROL_QOS)
    img_pub = node.create_publisher(Image, "camera/image", IMAGE_QOS)
    init_pub = node.create_publisher(PolygonStamped, "tracker/init", CONTROL_QOS)
    data = [numpy_to_image(f).data for f in frames]
    try:
        t_end = time.monotonic() + 30
        while time.monotonic() < t_end and not (img_pub.get_subscription_count() and diags):
            ex.spin_once(timeout_sec=0.1)
        if not diags:
            print((log_dir / "tracker.log").read_text(), file=sys.stderr)
            raise SystemExit("tracker node did not come up")
        t_end = time.monotonic() + 0.5  # discovery is not symmetric: let the node match us back
        while time.monotonic() < t_end:
            ex.spin_once(timeout_sec=0.05)
        n = int(args.seconds * args.rate)
        t0 = time.monotonic()
        for i in range(n):
            msg = Image(height=args.height, width=args.width, encoding="bgr8", step=args.width * 3)
            msg.data = data[i % len(data)]
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.header.frame_id = CAMERA_FRAME
            img_pub.publish(msg)
            if i == 0:
                init_pub.publish(PolygonStamped(header=msg.header, polygon=box_to_polygon(gt[0])))
            while (left := t0 + (i + 1) / args.rate - time.monotonic()) > 0:
                ex.spin_once(timeout_sec=left)
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:
            ex.spin_once(timeout_sec=0.1)
    finally:
        launch_xml.stop(procs)
        node.destroy_node()
        rclpy.shutdown(context=ctx)

    values = {kv.key: kv.value for kv in diags[-1].status[0].values}
    node_ms = node_medians(diags)
    ser_ms, deser_ms = serialisation_ms(frames[0])
    lat = np.asarray(latencies[1:])  # the first box is the init echo, not a tracked frame
    inf = pure_inference_ms(frames, gt[0], min(len(lat), 300) or 100, args.threads, args.spin)
    result = {
        "input": f"{args.width}x{args.height} bgr8 at {args.rate:g} Hz for {args.seconds:g} s",
        "onnxruntime": f"{args.threads} intra-op thread(s), spinning {'on' if args.spin else 'off'}",
        "frames_sent": n,
        "frames_received_by_node": int(values["frames_received"]),
        "frames_processed": int(values["frames_processed"]),
        "frames_dropped_newest_frame_policy": int(values["frames_dropped"]),
        "boxes_received": len(latencies),
        "latency_ms_median": round(float(np.median(lat)), 2),
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
        "pure_inference_ms_median": round(float(np.median(inf)), 2),
        "pure_inference_ms_p95": round(float(np.percentile(inf, 95)), 2),
        "node_overhead_ms_median": round(float(np.median(lat) - np.median(inf)), 2),
        "node_reported_inference_ms_median": node_ms["inference_ms"],
        "stamp_to_node_middleware_ms_median": node_ms["delivery_ms"],
        "node_middleware_to_callback_ms_median": node_ms["wait_ms"],
        "node_callback_to_publish_minus_inference_ms": round(node_ms["processing_ms"] - node_ms["inference_ms"], 2),
        "box_hop_back_ms_median": round(float(np.median(lat)) - node_ms["latency_ms"], 2),
        "rclpy_serialise_image_ms": round(ser_ms, 2),
        "rclpy_deserialise_image_ms": round(deser_ms, 2),
    }
    width = max(map(len, result))
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
