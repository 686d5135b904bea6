"""Fixtures for the Olympe bridge tests: system packages, Olympe's virtualenv, test videos, netns runner.

Skips (with the reason) only when a prerequisite was not installed: scripts/setup_system.sh (ffmpeg,
GStreamer RTSP server) or Olympe's virtualenv (.venv/olympe, requirements/olympe.txt).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from olympe_helpers import CROSSING, SETUP_MARKER, make_mp4, olympe_python


@pytest.fixture(scope="session")
def system_ready() -> None:
    if not SETUP_MARKER.exists() or shutil.which("ffmpeg") is None:
        pytest.skip("system packages missing: run scripts/setup_system.sh (ffmpeg, GStreamer RTSP server)")
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("setup_system.sh ran but unshare/ip are missing")


@pytest.fixture(scope="session")
def olympe_venv(system_ready) -> Path:
    py = olympe_python()
    if py is None:
        pytest.skip("Olympe's virtualenv missing: create .venv/olympe from requirements/olympe.txt (docs/olympe.md)")
    return py


@pytest.fixture(scope="session")
def crossing_mp4(system_ready, tmp_path_factory) -> Path:
    return make_mp4(CROSSING, tmp_path_factory.mktemp("video") / "crossing.mp4")
