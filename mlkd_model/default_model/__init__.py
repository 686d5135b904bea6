"""The embedded default model directory shipped inside the package (see SOURCE.txt)."""

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent
