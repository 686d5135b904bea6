"""One call from a model directory to a ready tracker."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlkd_model.default_model import MODEL_DIR
from mlkd_model.manifest import read_model_dir
from mlkd_model.tracker import SiameseTracker

BACKENDS = ("onnx", "torch")


def load_tracker(
    model_dir: str | Path | None = None,
    backend: str = "onnx",
    enhance: bool = False,
    providers: Sequence[str] = ("cpu",),
    threads: int = 1,
    spin: bool = False,
) -> SiameseTracker:
    """Tracker from `model_dir` (None: the embedded default model).

    backend: "onnx" (ONNX Runtime, no torch) or "torch". enhance: run the teacher path
    (DarkLighter on every crop, then the tracker). providers: ONNX Runtime preference order
    among tensorrt, cuda, cpu. threads, spin: ONNX Runtime's intra-op threads (0 = its default,
    one per core) and busy-waiting (see mlkd_model.onnx_backend.session_options).
    """
    model = read_model_dir(MODEL_DIR if model_dir is None else model_dir)
    if backend == "onnx":
        from mlkd_model.onnx_backend import OnnxBackend

        return SiameseTracker(OnnxBackend(model, providers, teacher=enhance, threads=threads, spin=spin))
    if backend == "torch":
        from mlkd_model.torch_backend import TorchBackend

        device = "cuda" if any(p in ("cuda", "tensorrt") for p in providers) else "cpu"
        return SiameseTracker(TorchBackend.from_model_dir(model, teacher=enhance, device=device))
    raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
