"""One call from a model directory to a ready tracker."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlkd_model.confidence import DEFAULT_CONFIDENCE, read_judgement
from mlkd_model.default_model import MODEL_DIR
from mlkd_model.honest_tracker import HonestTracker
from mlkd_model.manifest import ModelDir, read_model_dir
from mlkd_model.tracker import TrackerBackend

BACKENDS = ("onnx", "torch")


def load_tracker(
    model_dir: str | Path | None = None,
    backend: str = "onnx",
    enhance: bool = False,
    providers: Sequence[str] = ("cpu",),
    threads: int = 1,
    spin: bool = False,
) -> HonestTracker:
    """Tracker from `model_dir` (None: the embedded default model).

    backend: "onnx" (ONNX Runtime, no torch) or "torch". enhance: run the teacher path
    (DarkLighter on every crop, then the tracker). providers: ONNX Runtime preference order
    among tensorrt, cuda, cpu. threads, spin: ONNX Runtime's intra-op threads (0 = its default,
    one per core) and busy-waiting (see mlkd_model.onnx_backend.session_options). The tracker reports a
    confidence and a state with every frame (mlkd_model.honest_tracker), judged by the model directory's
    `confidence.json` if it has one, else by the one fitted for the embedded model.
    """
    model = read_model_dir(MODEL_DIR if model_dir is None else model_dir)
    if backend == "onnx":
        from mlkd_model.onnx_backend import OnnxBackend

        return honest(OnnxBackend(model, providers, teacher=enhance, threads=threads, spin=spin), model)
    if backend == "torch":
        from mlkd_model.torch_backend import TorchBackend

        device = "cuda" if any(p in ("cuda", "tensorrt") for p in providers) else "cpu"
        return honest(TorchBackend.from_model_dir(model, teacher=enhance, device=device), model)
    raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")


def honest(backend: TrackerBackend, model: ModelDir) -> HonestTracker:
    """The tracking loop with the confidence and state judgement that belongs to `model`."""
    own = model.path / "confidence.json"
    return HonestTracker(backend, None, *read_judgement(own if own.is_file() else DEFAULT_CONFIDENCE))
