#!/usr/bin/env bash
# Newcomer command 2: install everything the test suite needs (torch CPU, ROS 2 wheels, tools) and run it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" dev
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
