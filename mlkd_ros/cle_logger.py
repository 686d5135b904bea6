"""CLE logger: tracker/box + tracker/cle -> one CSV line per box (replay evaluation input).

Columns: stamp (s), x, y, w, h (empty when lost), cle_x, cle_y, cle (pixels; empty when lost).
Lines are flushed as they come so a replay killed half-way still leaves a usable file.
"""

from __future__ import annotations

from pathlib import Path

import rclpy
from geometry_msgs.msg import PointStamped, PolygonStamped
from rclpy.node import Node

from mlkd_ros.boxes import polygon_to_box
from mlkd_ros.dds import CONTROL_QOS
from mlkd_ros.node_help import print_help, wants_help
from mlkd_ros.node_process import spin_node
from mlkd_ros.ros_params import declare
from mlkd_ros.topics import BOX_TOPIC, CLE_TOPIC

HEADER = "stamp,x,y,w,h,cle_x,cle_y,cle\n"


def _key(header) -> tuple[int, int]:
    return header.stamp.sec, header.stamp.nanosec


class CleLogger(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("cle_logger", **kwargs)
        path = Path(declare(self, "output", "cle.csv", "CSV file to write (overwritten)"))
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("w")
        self.file.write(HEADER)
        # The CLE of a box is published right after it; keep boxes until their CLE arrives.
        self.boxes: dict[tuple[int, int], PolygonStamped] = {}
        self.create_subscription(PolygonStamped, BOX_TOPIC, self._on_box, CONTROL_QOS)
        self.create_subscription(PointStamped, CLE_TOPIC, self._on_cle, CONTROL_QOS)
        self.create_timer(0.5, self._flush_old)
        self.get_logger().info(f"writing CLE to {path}")

    def _on_box(self, msg: PolygonStamped) -> None:
        if msg.polygon.points:
            self.boxes[_key(msg.header)] = msg
        else:
            self._write(msg, None)

    def _on_cle(self, msg: PointStamped) -> None:
        box = self.boxes.pop(_key(msg.header), None)
        if box is not None:
            self._write(box, msg)

    def _flush_old(self) -> None:
        while len(self.boxes) > 5:  # boxes whose CLE never came (should not happen): log without it
            self._write(self.boxes.pop(next(iter(self.boxes))), None)

    def _write(self, box_msg: PolygonStamped, cle: PointStamped | None) -> None:
        stamp = box_msg.header.stamp.sec + box_msg.header.stamp.nanosec * 1e-9
        box = ",".join(f"{v:.2f}" for v in polygon_to_box(box_msg.polygon)) if box_msg.polygon.points else ",,,"
        err = f"{cle.point.x:.2f},{cle.point.y:.2f},{cle.point.z:.2f}" if cle else ",,"
        self.file.write(f"{stamp:.9f},{box},{err}\n")
        self.file.flush()


def main(args: list[str] | None = None) -> int | None:
    if wants_help(args):
        return print_help(__file__, "cle_logger", __doc__.splitlines()[0])
    rclpy.init(args=args)
    return spin_node(CleLogger(), lambda node: node.file.close())


if __name__ == "__main__":
    main()
