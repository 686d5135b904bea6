"""Operator console latency: image stamp -> frame painted in a real (headless) Chromium, at 30 Hz 640x480.

Starts the tracker and the console from launch/ground_station.launch.xml (real processes over DDS on
this host), publishes a night clip resized to 640x480 at 30 Hz, opens the page, drags the init box on
the video with the mouse, and prints the latency the page measured for every frame it painted (stamp
-> the animation frame after drawing, same host clock), before the init (frames go out at once) and
while tracking (each frame waits for its box). Optionally saves a screenshot for docs/console.md.

    .venv/bin/python benchmarks/console_latency.py [--frames DIR] [--seconds 10] [--screenshot docs/img/console.png]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ros"))

from console_helpers import FramePublisher, chromium, console_address  # noqa: E402

from mlkd_ros import launch_xml  # noqa: E402
from mlkd_ros.dds import ros_env  # noqa: E402

NIGHT = ROOT.parent / "shared" / "data" / "night" / "uavdark135_person11"


def load(folder: Path, size: tuple[int, int]) -> tuple[list[np.ndarray], tuple[float, ...]]:
    paths = sorted(folder.glob("*.jpg")) or sorted((folder / "img").glob("*.jpg"))
    frames = [cv2.imread(str(p)) for p in paths]
    h0, w0 = frames[0].shape[:2]
    box = [float(v) for v in (folder / "init_box.txt").read_text().replace(",", " ").split()[:4]]
    sx, sy = size[0] / w0, size[1] / h0
    frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    return frames, (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def summary(name: str, ms: list[float]) -> str:
    a = np.asarray(ms)
    if not len(a):
        return f"{name}: no frames"
    p = np.percentile(a, [50, 90, 99])
    return f"{name}: {len(a)} frames, median {p[0]:.0f} ms, p90 {p[1]:.0f} ms, p99 {p[2]:.0f} ms, max {a.max():.0f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=Path, default=NIGHT, help="folder of frames with init_box.txt")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=10.0, help="measure this long while tracking")
    ap.add_argument("--screenshot", type=Path, help="save a PNG of the page this long into tracking")
    ap.add_argument("--screenshot-at", type=float, default=2.0, help="seconds after the init")
    ns = ap.parse_args()
    size = tuple(int(v) for v in ns.size.split("x"))
    frames, init_box = load(ns.frames, size)
    from test_console_browser import drag  # the same mouse drag as the browser test

    domain = random.randint(100, 200)
    env = ros_env(domain)
    work = Path(tempfile.mkdtemp(prefix="console_latency_"))
    desc = launch_xml.parse_launch(ROOT / "launch" / "ground_station.launch.xml", {"console_port": "0"})
    procs = launch_xml.start(desc, ["tracker", "operator_console"], env=env, log_dir=work)
    import os

    os.environ.update(env)
    pub = FramePublisher(domain, frames, rate=ns.rate)
    pub.hold = True  # a still first frame until the init: the drag uses the clip's own init box
    driver = None
    try:
        url = console_address(lambda: (work / "operator_console.log").read_text(errors="replace"), 60)
        driver = chromium(work / "chromium")
        driver.get(url)
        js = driver.execute_script
        end = time.monotonic() + 60
        while js("return window.mlkdConsole.shown") < 3 * ns.rate and time.monotonic() < end:
            time.sleep(0.1)
        idle = list(js("return window.mlkdConsole.latencies"))[int(ns.rate) :]  # skip the page's warm-up
        from selenium.webdriver.common.by import By

        canvas = driver.find_element(By.ID, "video")
        scale = js("const c = arguments[0]; return c.getBoundingClientRect().width / c.width;", canvas)
        drag(driver, canvas, init_box, scale)
        end = time.monotonic() + 20
        while not pub.inits and time.monotonic() < end:
            time.sleep(0.02)
        if not pub.inits:
            raise RuntimeError(f"no init from the page:\n{(work / 'operator_console.log').read_text()[-2000:]}")
        pub.hold = False
        n0, t0 = js("return window.mlkdConsole.latencies.length"), time.monotonic()
        shot_done = ns.screenshot is None
        while time.monotonic() - t0 < ns.seconds:
            if not shot_done and time.monotonic() - t0 >= ns.screenshot_at:
                ns.screenshot.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(ns.screenshot))
                shot_done = True
            time.sleep(0.05)
        lat = list(js("return window.mlkdConsole.latencies"))
        tracking = lat[n0:] if len(lat) >= n0 else lat
        stats = js("return {shown: window.mlkdConsole.shown, withBox: window.mlkdConsole.withBox}")
        print(f"console latency, {size[0]}x{size[1]} at {ns.rate:.0f} Hz, {ns.frames.name}, host {os.cpu_count()} CPUs")
        print(summary("  before init (no box to wait for)", idle))
        print(summary("  tracking (each frame waits for its box)", tracking))
        print(f"  painted {len(tracking) / ns.seconds:.1f} frames/s while tracking; {stats['withBox']} with a box")
        if ns.screenshot:
            print(f"  screenshot: {ns.screenshot}")
    finally:
        if driver is not None:
            driver.quit()
        pub.close()
        launch_xml.stop(procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
