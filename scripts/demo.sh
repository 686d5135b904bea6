#!/usr/bin/env bash
# Newcomer command 1: install the ground-station runtime (no torch) and track the walking person in the
# shipped night clip with the embedded default model. Writes runs/demo/uavdark135_person11.{txt,mp4,json}.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" runtime
exec "$root/.venv/bin/mlkd" track "$root/demo/uavdark135_person11" --video --out "$root/runs/demo" "$@"
