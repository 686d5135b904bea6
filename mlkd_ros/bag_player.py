"""Play a recorded flight (rosbag2) to the tracker: the `bag_player` node of launch/replay.launch.xml
(console script `bag_player`) and the online part of `mlkd replay` (mlkd_ros/commands/replay.py).

Messages go out with their recorded timing scaled by the rate, as raw CDR (no decode on the way), and
tracker/init on the frame to start on: the given box, the first ground-truth box, or where the live
tracker was when the flight was recorded.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import PolygonStamped
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mlkd_model.frames import parse_box
from mlkd_ros.bag import BagError, image_topic, read_boxes, read_messages, stamp_ns
from mlkd_ros.boxes import box_to_polygon, load_ground_truth
from mlkd_ros.dds import CONTROL_QOS
from mlkd_ros.node_help import print_help, wants_help
from mlkd_ros.ros_params import declare
from mlkd_ros.topics import BOX_TOPIC, CAMERA_INFO_TOPIC, COMPRESSED_TOPIC, GT_TOPIC, IMAGE_TOPIC, INIT_TOPIC

log = logging.getLogger("mlkd.replay")


def ground_truth(bag: Path, stamps: np.ndarray, gt_file: Path | None) -> np.ndarray | None:
    """N x 4 ground truth aligned with the bag's frames, from --gt or the bag's ground_truth/box topic."""
    if gt_file is not None:
        gt = load_ground_truth(gt_file)
        if len(gt) < len(stamps):
            raise ValueError(f"{gt_file}: {len(gt)} boxes for {len(stamps)} frames")
        return gt[: len(stamps)]
    by_stamp = read_boxes(bag, GT_TOPIC)
    if not by_stamp:
        return None
    return np.array([by_stamp.get(int(s), np.full(4, np.nan)) for s in stamps])


def default_init(bag: Path, stamps: np.ndarray, gt: np.ndarray | None, text: str = "") -> tuple[int, tuple] | None:
    """(frame index, x,y,w,h) to start the tracker on: the given box on frame 0, else the first ground-truth
    box, else where the live tracker was (the first non-empty tracker/box recorded with the flight).
    A given box that is not four numbers is a BoxError."""
    if text:
        return 0, parse_box(text)
    if gt is not None and np.all(np.isfinite(gt[0])):
        return 0, tuple(float(v) for v in gt[0])
    index = {int(s): i for i, s in enumerate(stamps)}
    for stamp, box in sorted(read_boxes(bag, BOX_TOPIC).items()):
        if stamp in index and np.all(np.isfinite(box)):
            return index[stamp], tuple(float(v) for v in box)
    return None


def frame_stamps(bag: Path) -> np.ndarray:
    """Header stamps of the bag's camera frames (raw or compressed); BagError when it has none."""
    topic = image_topic(bag)
    stamps = np.array([stamp_ns(m.decode().header) for m in read_messages(bag, [topic])], dtype=np.int64)
    if not len(stamps):  # listed in metadata.yaml, but the data holding them is gone
        raise BagError(f"bag {bag} has no readable /{topic} frames")
    return stamps


def play(
    bag: Path,
    rate: float = 1.0,
    init=None,
    gt: np.ndarray | None = None,
    domain_id: int | None = None,
    wait_subscribers: float = 10.0,
    wait_for: list[str] = (),
) -> int:
    """Publish the bag from this process (a ROS node); returns the number of images published."""
    rclpy.init(domain_id=domain_id)  # None: ROS_DOMAIN_ID from the environment
    try:
        player = Player(bag, rate, init, gt)
        player.wait_for_subscribers(wait_subscribers, list(wait_for))
        return player.play()
    finally:
        rclpy.try_shutdown()


class Player:
    """Publishes a bag's messages with their recorded timing (log time), raw CDR: no decode on the way."""

    def __init__(self, bag: Path, rate: float, init=None, gt: np.ndarray | None = None, node=None) -> None:
        self.bag, self.rate, self.init, self.gt = Path(bag), max(rate, 1e-3), init, gt
        self.node = node or Node("bag_player")
        self.image_topic = image_topic(self.bag)  # camera/image, else camera/image/compressed
        self.image_type = CompressedImage if self.image_topic == COMPRESSED_TOPIC else Image
        # Reliable, depth 10 for images too: a replay is an evaluation, every frame should reach the tracker.
        self.pubs = {
            self.image_topic: self.node.create_publisher(self.image_type, self.image_topic, CONTROL_QOS),
            CAMERA_INFO_TOPIC: self.node.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, CONTROL_QOS),
            GT_TOPIC: self.node.create_publisher(PolygonStamped, GT_TOPIC, CONTROL_QOS),
        }
        self.init_pub = self.node.create_publisher(PolygonStamped, INIT_TOPIC, CONTROL_QOS)

    def wait_for_subscribers(self, timeout: float, topics: list[str] = ()) -> None:
        """Wait until camera/image, tracker/init (when this player inits) and `topics` (say tracker/cle, when a
        logger must see every result) each have a subscriber; a replay is an evaluation, the start counts."""
        topics = [self.image_topic if t.lstrip("/") == IMAGE_TOPIC else t for t in topics]  # the bag's camera
        init = [INIT_TOPIC] if self.init is not None else []
        wanted = list(dict.fromkeys([self.image_topic, *init, *topics]))
        end = time.monotonic() + timeout
        missing = wanted
        while missing and time.monotonic() < end:
            time.sleep(0.05)
            missing = [t for t in wanted if self.node.count_subscribers(t) == 0]
        if missing:
            log.warning("no subscriber on %s after %.0f s; playing anyway", ", ".join(missing), timeout)
        time.sleep(0.5)  # matched does not mean connected yet: let the reliable handshake finish

    def _gt_msg(self, header, box):
        finite = box is not None and bool(np.all(np.isfinite(box)))  # an unlabelled frame: empty polygon
        return PolygonStamped(header=header, polygon=box_to_polygon(box if finite else None))

    def play(self) -> int:
        use_file_gt = self.gt is not None
        t_first = wall0 = None
        n = 0
        for m in read_messages(self.bag, list(self.pubs)):
            if use_file_gt and m.topic == GT_TOPIC:
                continue  # --gt replaces the bag's own ground truth
            if t_first is None:
                t_first, wall0 = m.t_ns, time.monotonic()
            delay = wall0 + (m.t_ns - t_first) * 1e-9 / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if m.topic == self.image_topic:
                header = deserialize_message(m.data, self.image_type).header
                if use_file_gt and n < len(self.gt):
                    self.pubs[GT_TOPIC].publish(self._gt_msg(header, self.gt[n]))
                self.pubs[self.image_topic].publish(m.data)
                if self.init is not None and n == self.init[0]:
                    # The tracker keeps recent frames and starts on the one whose stamp the init carries.
                    self.init_pub.publish(self._gt_msg(header, self.init[1]))
                n += 1
            else:
                self.pubs[m.topic].publish(m.data)
        log.info("published %d frames from %s", n, self.bag)
        time.sleep(0.5)  # let the last reliable messages go out before the node is destroyed
        return n


def main(args: list[str] | None = None) -> int:
    """`bag_player` node (launch/replay.launch.xml): parameters bag, rate, init, ground_truth, wait_for."""
    if wants_help(args):
        return print_help(__file__, "bag_player", "Play a rosbag2 flight to the tracker (launch/replay.launch.xml).")

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rclpy.init(args=args)
    node = rclpy.create_node("bag_player")
    try:
        bag = Path(declare(node, "bag", "", "rosbag2 folder to play"))
        rate = declare(node, "rate", 1.0, "playback speed factor", 0.001, 1000.0)
        init_text = declare(node, "init", "", "X,Y,W,H on the first frame; '' = ground truth / recorded box")
        gt_text = declare(
            node, "ground_truth", "", "x,y,w,h per frame; '' = the bag's ground_truth/box topic, if it has one"
        )
        wait_for = declare(
            node,
            "wait_for",
            [IMAGE_TOPIC],
            "topics that must each have a subscriber before playing (tracker/init is added when the player inits)",
        )
        try:
            if not str(bag) or str(bag) == ".":
                raise BagError("no bag given: set the bag parameter (replay.launch.xml bag:=/path/to/flight)")
            stamps = frame_stamps(bag)
            gt = ground_truth(bag, stamps, Path(gt_text) if gt_text else None)
            init = default_init(bag, stamps, gt, init_text)
        except (BagError, ValueError, OSError) as exc:  # BoxError (init) is a ValueError
            node.get_logger().error(str(exc))
            return 2
        if init is None:
            node.get_logger().warning("no init box (no init, ground truth or recorded tracker/box): send tracker/init")
        player = Player(bag, rate, init, gt if gt_text else None, node=node)
        player.wait_for_subscribers(10.0, wait_for)
        if player.play() == 0:
            node.get_logger().error(f"no frame of {bag} was published")
            return 2
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
