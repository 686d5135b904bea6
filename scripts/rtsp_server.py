#!/usr/bin/python3
"""RTSP server that serves an H.264 MP4 the way a Parrot Anafi serves its camera (tests and demos).

    /usr/bin/python3 scripts/rtsp_server.py VIDEO.mp4 [--address 127.0.0.1] [--port 8554] [--path /live]

Runs with Debian's python3 (python3-gi, gir1.2-gst-rtsp-server-1.0; see scripts/setup_system.sh), not the
project's virtualenv. The MP4's H.264 is sent as is (no re-encoding, so the frames a client decodes are the
file's frames and the CPU cost is negligible); it must have no B-frames and in-band SPS/PPS, which Olympe's
Pdraw needs. GStreamer names the media "stream=0" (no SDP `i=` line; its Python bindings cannot override the
SDP), so players select it as the default media: the bridge registers Pdraw's default stream for that.
Each client (each reconnect) gets the video from its start; the file is not live, so its SDP range is
`npt=0-<duration>` (a live `npt=now-` range is what Pdraw rejects).
Prints "READY rtsp://..." on stdout once it listens, so a test can wait for that line.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

log = logging.getLogger("rtsp_server")


def pipeline(video: str) -> str:
    # h264parse config-interval=-1 repeats SPS/PPS before every IDR; rtph264pay too, for late joiners.
    loc = video.replace('"', '\\"')
    return (
        f'( filesrc location="{loc}" ! qtdemux ! h264parse config-interval=-1 '
        "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", help="H.264 MP4 (no B-frames, SPS/PPS in band)")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--path", default="/live", help="mount point (the Anafi uses /live)")
    ns = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[rtsp_server] %(message)s")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(ns.address)
    server.set_service(str(ns.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(ns.video))
    # One pipeline per client: each player (and each reconnect) gets the video from its start.
    factory.set_shared(False)
    server.get_mount_points().add_factory(ns.path, factory)
    if server.attach(None) == 0:
        log.error("cannot listen on %s:%d", ns.address, ns.port)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print(f"READY rtsp://{ns.address}:{server.get_bound_port()}{ns.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
