"""`mlkd record OUT`: record camera, tracker box and CLE topics (ground truth if any) into a rosbag2.

Subscriptions are raw (serialized CDR straight from DDS into the bag: no decode, no re-encode) with a deep
queue so a slow disk costs memory, not frames; images best effort (that matches a best-effort camera and a
reliable one alike), the other topics reliable. Stops on Ctrl-C, after --duration
seconds, or after --frames images; the bag is always closed properly (metadata.yaml written).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path

log = logging.getLogger("mlkd.record")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="bag folder to create (must not exist)")
    p.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    p.add_argument(
        "--topics",
        nargs="+",
        help="topics to record, relative or absolute (default: all of camera/image, camera/image/compressed, "
        "camera/camera_info, tracker/box, tracker/cle, tracker/offset, tracker/init, ground_truth/box)",
    )
    p.add_argument("--duration", type=float, help="stop this many seconds after the first image")
    p.add_argument("--frames", type=int, help="stop after this many camera frames (raw or compressed)")
    p.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID (default: environment)")


class Recorder:
    def __init__(self, node, writer, topics: dict[str, str]) -> None:
        import importlib

        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

        from mlkd_ros.topics import COMPRESSED_TOPIC, IMAGE_TOPIC

        self.writer, self.lock = writer, threading.Lock()
        self.images = 0
        self.image_event = threading.Event()
        for topic, msgtype in topics.items():
            pkg, _, name = msgtype.split("/")
            cls = getattr(importlib.import_module(f"{pkg}.msg"), name)
            # Best-effort subscribers match both best-effort and reliable publishers (the bridge's camera is
            # best effort); the deep queue absorbs disk hiccups.
            qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
            # --frames / --duration count the raw camera, or the compressed one when it is recorded alone.
            is_image = topic == (IMAGE_TOPIC if IMAGE_TOPIC in topics else COMPRESSED_TOPIC)
            if topic not in (IMAGE_TOPIC, COMPRESSED_TOPIC):
                qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
            # The bag gets the fully qualified name (/camera/image), as `ros2 bag record` writes it.
            name_in_bag = node.resolve_topic_name(topic)
            node.create_subscription(cls, topic, self._cb(name_in_bag, msgtype, is_image), qos, raw=True)

    def _cb(self, topic: str, msgtype: str, is_image: bool):
        def on_msg(data: bytes) -> None:
            with self.lock:
                self.writer.write(topic, msgtype, data, time.time_ns())
                if is_image:
                    self.images += 1
                    self.image_event.set()

        return on_msg


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from mlkd_ros.bag import RECORD_TOPICS, BagWriter
    from mlkd_ros.topics import COMPRESSED_TOPIC, IMAGE_TOPIC

    topics = dict(RECORD_TOPICS)
    if args.topics:  # relative or absolute names
        unknown = [t for t in args.topics if t.strip().lstrip("/") not in RECORD_TOPICS]
        if unknown:
            known = ", ".join("/" + t for t in RECORD_TOPICS)
            log.error("cannot record %s: mlkd record knows the types of %s only", ", ".join(unknown), known)
            return 2
        topics = {t.strip().lstrip("/"): RECORD_TOPICS[t.strip().lstrip("/")] for t in args.topics}
    try:
        writer = BagWriter(args.out, args.storage)
    except (FileExistsError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    rclpy.init(domain_id=args.domain_id)  # None: ROS_DOMAIN_ID from the environment
    node = rclpy.create_node("mlkd_recorder")
    rec = Recorder(node, writer, topics)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    end = float("inf")
    log.info("recording %s to %s", ", ".join(topics), args.out)
    try:
        while time.monotonic() < end and not (args.frames and rec.images >= args.frames):
            ex.spin_once(timeout_sec=0.1)
            started = rec.images if {IMAGE_TOPIC, COMPRESSED_TOPIC} & set(topics) else writer.count
            if args.duration and end == float("inf") and started:
                # The clock starts with the first frame, not at discovery (big-message readers match last).
                end = time.monotonic() + args.duration
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        with rec.lock:
            writer.close()
    log.info("wrote %d messages (%d images) to %s", writer.count, rec.images, args.out)
    return 0
