"""ROS header stamps as integer nanoseconds (the key frames, boxes and ground truth are matched on)."""

from __future__ import annotations


def stamp_ns(header) -> int:
    """builtin_interfaces/Time of an rclpy or rosbags header -> nanoseconds since the epoch."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
