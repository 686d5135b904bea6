"""Where the real data lives: ../shared beside the repository (tests, training and benchmarks only)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEQUENCES = SHARED / "data" / "sequences"
WEIGHTS = SHARED / "weights"
NANOTRACK_PTH = WEIGHTS / "nanotrack_v2" / "nanotrackv2.pth"
DARKLIGHTER_PTH = WEIGHTS / "darklighter" / "Epoch193.pth"
