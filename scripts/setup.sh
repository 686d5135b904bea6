#!/usr/bin/env bash
# Builds (or refreshes) the project's virtual environment in .venv and installs the product into it.
# Idempotent: re-running only installs what changed. Usage: scripts/setup.sh [runtime|train|dev]
#   runtime  ground-station tracking with ONNX Runtime (no torch)
#   train    + torch (CPU wheel, pinned), ONNX export, plots, TensorBoard
#   dev      + ROS 2 wheels, rosbags, test and lint tools (what the test suite needs)
set -euo pipefail
profile="${1:-runtime}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
case "$profile" in runtime|train|dev) ;; *) echo "unknown profile '$profile' (runtime|train|dev)" >&2; exit 2;; esac

[ -x "$venv/bin/python" ] || python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
stamp="$venv/.installed-$profile"
req="$root/requirements/$profile.txt"
# Skip pip entirely when the requirement files and setup.py are older than the last install.
if [ -f "$stamp" ] && [ -z "$(find "$root/requirements" "$root/setup.py" -newer "$stamp" 2>/dev/null)" ]; then
  exit 0
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install -r "$req"
"${pip[@]}" install --no-deps -e "$root"
if [ "$profile" = dev ]; then
  # Olympe pins protobuf 3.19, which the main environment's onnx / onnxruntime cannot share: it gets a
  # small venv of its own, which the Olympe bridge node re-executes itself in (mlkd_ros/olympe_bridge.py).
  olympe="$venv/olympe"
  [ -x "$olympe/bin/python" ] || python3.11 -m venv "$olympe" 2>/dev/null || python3 -m venv "$olympe"
  "$olympe/bin/python" -m pip --disable-pip-version-check -q install -r "$root/requirements/ros.txt" -r "$root/requirements/olympe.txt"
  # colcon outside the venv's site-packages, as in the Docker image (tests/test_docker.py builds with it).
  "${pip[@]}" install --no-deps --upgrade --target "$venv/colcon" -r "$root/requirements/colcon.txt"
fi
touch "$stamp"
