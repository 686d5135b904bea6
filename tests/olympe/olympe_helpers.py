"""Helpers for the Olympe bridge tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

# What the C++ runtime prints when Olympe's Pdraw aborts the bridge process (see run_in_netns).
OLYMPE_NATIVE_ABORT = "pure virtual method called"

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
CROSSING = SHARED / "data" / "sequences" / "fixtures" / "otb_Crossing"
SETUP_MARKER = Path("/var/lib/mlkd/setup_system.done")


def olympe_python() -> Path | None:
    env = os.environ.get("MLKD_OLYMPE_PYTHON")
    cand = Path(env) if env else ROOT / ".venv" / "olympe" / "bin" / "python"
    return cand if cand.exists() else None


def make_mp4(src: Path, out: Path, fps: int = 30, repeat: int = 1) -> Path:
    """H.264 MP4 as Pdraw wants it: no B-frames, SPS/PPS before every IDR, media named "Front camera"."""
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-framerate", str(fps)]
    if repeat > 1:
        cmd += ["-stream_loop", str(repeat - 1)]
    cmd += [
        "-i",
        str(src / "img" / "%06d.jpg"),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "16",
        "-bf",
        "0",
        "-g",
        str(fps),
        "-x264-params",
        "repeat-headers=1",
        "-pix_fmt",
        "yuv420p",
        "-metadata:s:v",
        "handler_name=Front camera",
        "-metadata",
        "title=Front camera",
        str(out),
    ]
    subprocess.run(cmd, check=True, timeout=120)
    return out


def run_in_netns(args: list[str], work: Path, timeout: float = 150) -> dict:
    """Run tests/olympe/scenario.py in a private network namespace; return its RESULT json."""
    work.mkdir(parents=True, exist_ok=True)
    inner = shlex.join([sys.executable, str(ROOT / "tests" / "olympe" / "scenario.py"), *args, "--work", str(work)])
    env = dict(os.environ)
    py = olympe_python()
    if py is not None:
        env["MLKD_OLYMPE_PYTHON"] = str(py)
    # Own PID namespace too (--pid --fork), whose init is the scenario: when it ends, or is killed on a
    # timeout (--kill-child), the kernel ends every node it started, instead of leaving them running.
    proc = subprocess.run(
        ["unshare", "-rn", "--pid", "--fork", "--kill-child", "sh", "-c", f"ip link set lo up && exec {inner}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(work.glob("*.log")))
    bridge_log = work / "olympe_bridge.log"
    if bridge_log.is_file() and OLYMPE_NATIVE_ABORT in bridge_log.read_text(errors="replace"):
        # Known, not ours to fix in a test: Olympe's Pdraw sometimes aborts the process natively when an RTSP
        # server goes away (its own replay coroutine races the destroy). Reported as xfail, not hidden;
        # any other failure of the scenario still fails the test (docs/olympe.md, Known limits).
        pytest.xfail(f"Olympe Pdraw native abort ({OLYMPE_NATIVE_ABORT!r}) killed the bridge")
    raise AssertionError(f"scenario failed rc={proc.returncode}\n{proc.stderr[-3000:]}\n{logs}")
