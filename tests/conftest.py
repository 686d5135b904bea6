"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_paths import SHARED


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"the shared data folder {SHARED} is missing; tests need ../shared beside the repository")
    return SHARED
