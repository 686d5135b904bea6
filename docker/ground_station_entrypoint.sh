#!/usr/bin/env bash
# Sources ROS and the colcon workspace, then launches the ground station; arguments are launch
# arguments (drone_ip:=..., model_dir:=..., providers:=[cuda,cpu]).
set -eo pipefail
source "/opt/ros/${ROS_DISTRO}/setup.bash"
source /ws/install/setup.bash
exec ros2 launch mlkd_ros ground_station.launch.xml "$@"
