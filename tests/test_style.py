"""The code base stays ruff-clean (lint rules and formatting in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (scripts/setup.sh dev installs it)")
@pytest.mark.parametrize("args", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(args):
    res = subprocess.run([RUFF, *args, "."], cwd=ROOT, capture_output=True, text=True)
    fix = {"check": "ruff check --fix .", "format": "ruff format ."}[args[0]]
    assert res.returncode == 0, f"ruff {' '.join(args)} found problems (try `.venv/bin/{fix}`):\n{res.stdout}"
