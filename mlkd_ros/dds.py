"""DDS settings shared by the nodes, the tests and the benchmark."""

from __future__ import annotations

import os
from pathlib import Path

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

FASTDDS_PROFILE_NAME = "fastdds_localhost.xml"  # shared memory only: no other host reaches it

# Camera frames: best effort, depth 1 — a late frame is worth nothing, a queue only adds latency.
IMAGE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=qos_profile_sensor_data.durability,
)
# Boxes, init, commands: small and each one matters to the controller, so reliable.
CONTROL_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)


def launch_dir() -> Path:
    """launch/ of the package: installed share/mlkd_ros/launch, or the source checkout's."""
    from mlkd_ros.launch_xml import find_pkg_share

    return find_pkg_share("mlkd_ros") / "launch"


def fastdds_profile() -> Path:
    return launch_dir() / FASTDDS_PROFILE_NAME


def ros_env(domain_id: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for nodes that must only see each other on this host, on their own domain."""
    env = dict(os.environ if base is None else base)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        # The profile is shared memory only; LOCALHOST would make rmw add UDP sockets on every address.
        ROS_AUTOMATIC_DISCOVERY_RANGE="SYSTEM_DEFAULT",
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        FASTDDS_DEFAULT_PROFILES_FILE=str(fastdds_profile()),  # Fast DDS 3; FASTRTPS_* is deprecated
        PYTHONUNBUFFERED="1",
    )
    env.pop("ROS_LOCALHOST_ONLY", None)  # ignored since Jazzy
    env.pop("ROS_STATIC_PEERS", None)
    env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    return env
