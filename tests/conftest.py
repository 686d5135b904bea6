"""Shared test fixtures: where the real data lives (../shared beside the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEQUENCES = SHARED / "data" / "sequences"
WEIGHTS = SHARED / "weights"
NANOTRACK_PTH = WEIGHTS / "nanotrack_v2" / "nanotrackv2.pth"
DARKLIGHTER_PTH = WEIGHTS / "darklighter" / "Epoch193.pth"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"the shared data folder {SHARED} is missing; tests need ../shared beside the repository")
    return SHARED
