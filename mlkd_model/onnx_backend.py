"""ONNX Runtime backend: the ground station's inference, no torch needed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlkd_model.manifest import ModelDir, ModelDirError, read_model_dir

log = logging.getLogger(__name__)

PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def resolve_providers(requested: Sequence[str]) -> list[str]:
    """Map short names (tensorrt, cuda, cpu) to the available ONNX Runtime providers, in order.

    Unavailable ones are skipped with a warning; CPU is always appended as the last resort.
    """
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    chosen = []
    for name in requested:
        full = PROVIDER_NAMES.get(name.lower(), name)
        if full not in PROVIDER_NAMES.values():
            raise ValueError(f"unknown execution provider {name!r}; use one of {', '.join(PROVIDER_NAMES)}")
        if full in available:
            chosen.append(full)
        else:
            log.warning("%s is not available in this onnxruntime build (has %s); falling back", full, sorted(available))
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class OnnxBackend:
    """Runs a model directory's template branch once and its search branch per frame."""

    def __init__(
        self, model_dir: str | Path | ModelDir, providers: Sequence[str] = ("cpu",), teacher: bool = False
    ) -> None:
        import onnxruntime as ort

        self.model = model_dir if isinstance(model_dir, ModelDir) else read_model_dir(model_dir)
        self.params = self.model.params
        prefix = "teacher_" if teacher else ""
        chosen = resolve_providers(providers)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.template_session = ort.InferenceSession(
            str(self.model.file(f"{prefix}template")), options, providers=chosen
        )
        self.search_session = ort.InferenceSession(str(self.model.file(f"{prefix}search")), options, providers=chosen)
        self.providers = self.search_session.get_providers()
        log.info("ONNX Runtime %s: providers %s", "teacher" if teacher else "tracker", self.providers)
        self._kernel_names = [o.name for o in self.template_session.get_outputs()]
        self._feed: dict[str, np.ndarray] = {}
        self._check_graphs()

    def _check_graphs(self) -> None:
        """Inputs, outputs and output sizes against the manifest, with one dry run on blank crops."""
        p, path = self.params, self.model.path
        t_in = [i.name for i in self.template_session.get_inputs()]
        s_in = {i.name for i in self.search_session.get_inputs()}
        s_out = {o.name for o in self.search_session.get_outputs()}
        expected_in = {"search", *self._kernel_names}
        if t_in != ["template"] or s_in != expected_in or not {"cls", "loc"} <= s_out:
            raise ModelDirError(
                f"model directory {path}: ONNX graphs do not fit together: template inputs {t_in} (want "
                f"['template']), search inputs {sorted(s_in)} (want {sorted(expected_in)}), search outputs "
                f"{sorted(s_out)} (want cls, loc)"
            )
        try:
            z = np.zeros((1, 3, p.exemplar_size, p.exemplar_size), np.float32)
            x = np.zeros((1, 3, p.instance_size, p.instance_size), np.float32)
            kernels = dict(zip(self._kernel_names, self.template_session.run(None, {"template": z}), strict=True))
            cls, loc = self.search_session.run(["cls", "loc"], {**kernels, "search": x})
        except Exception as exc:
            raise ModelDirError(
                f"model directory {path}: the networks do not run at the manifest's sizes "
                f"(exemplar {p.exemplar_size}, instance {p.instance_size}): {exc}"
            ) from exc
        cells = max(p.anchor_num, 1) * p.score_size**2
        if cls.size != 2 * cells or loc.size != 4 * cells:
            raise ModelDirError(
                f"model directory {path}: outputs cls {list(cls.shape)} / loc {list(loc.shape)} do not match the "
                f"manifest (score_size {p.score_size}, {max(p.anchor_num, 1)} prior(s) per cell)"
            )

    def set_template(self, z_crop: np.ndarray) -> None:
        kernels = self.template_session.run(None, {"template": z_crop})
        self._feed = dict(zip(self._kernel_names, kernels, strict=True))

    def search(self, x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cls, loc = self.search_session.run(["cls", "loc"], {**self._feed, "search": x_crop})
        return cls, loc
