#!/usr/bin/env bash
# System packages for the Olympe bridge tests and demos (Debian 12): ffmpeg/x264 to encode test videos,
# GStreamer's RTSP server (run with Debian's /usr/bin/python3 + python3-gi) to serve them like an Anafi,
# iproute2 for `ip link set lo up` inside the tests' private network namespace (unshare -rn),
# chromium + chromium-driver for the operator console's headless-browser test (selenium drives it).
# Idempotent: does nothing when every package is already installed. Needs root (or sudo).
# Writes /var/lib/mlkd/setup_system.done so the tests can tell "not set up" (skip) from "broken" (fail).
set -euo pipefail
packages=(
  ffmpeg x264 iproute2 util-linux
  python3 python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  chromium chromium-driver
)
marker=/var/lib/mlkd/setup_system.done
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup_system: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Fail loudly here rather than in the tests if the RTSP server's bindings are unusable.
/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
"${sudo[@]}" mkdir -p "$(dirname "$marker")"
echo "${packages[*]}" | "${sudo[@]}" tee "$marker" >/dev/null
