#!/usr/bin/env bash
# Newcomer command 2: install everything the test suite needs and run it: Debian packages for the video
# tests (ffmpeg, GStreamer RTSP server; apt, as root or via sudo), torch CPU, ROS 2 wheels, Olympe, tools.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup_system.sh"
"$root/scripts/setup.sh" dev
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
