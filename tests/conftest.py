"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from shared_paths import SHARED


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"the shared data folder {SHARED} is missing; tests need ../shared beside the repository")
    return SHARED


@pytest.fixture(scope="session", autouse=True)
def night_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Darkened-frame cache of the session (training/protocol.py), never the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("mlkd_cache")
    os.environ["MLKD_CACHE"] = str(folder)
    return folder
