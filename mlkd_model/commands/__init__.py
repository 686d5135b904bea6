"""`mlkd` sub-commands of the runtime; what a command module holds: mlkd_model/cli.py."""

from __future__ import annotations

import logging

# Top-level modules that only the dev profile installs (ROS 2 wheels, rosbags); anything else a command
# lacks (torch, onnx, tensorboard, matplotlib, ...) comes with the train profile.
_DEV_ONLY = ("rclpy", "rosbags", "sensor_msgs", "geometry_msgs", "std_msgs", "std_srvs", "diagnostic_msgs", "olympe")


def missing_dependency(exc: ImportError) -> int:
    """Say which install profile brings what an optional import lacked; the exit status to return (2)."""
    missing = exc.name or str(exc)
    profile = "dev" if missing.split(".")[0] in _DEV_ONLY else "train"
    logging.getLogger("mlkd").error(
        "this needs the %s profile (%s is not installed): run scripts/setup.sh %s", profile, missing, profile
    )
    return 2
