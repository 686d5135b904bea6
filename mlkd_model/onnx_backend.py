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


def session_options(threads: int = 1, spin: bool = False):
    """ONNX Runtime options for a small ground station.

    threads: intra-op threads of each session (0 = ONNX Runtime's default, one per physical core). One
    is the default: on 2 cores a second inference thread competes with the ROS executor, the video
    decoder and the node's own worker, and NanoTrack's small convolutions gain little from it.
    spin: let idle worker threads busy-wait for the next run (ONNX Runtime's default); off, so that
    waiting threads leave the cores to the rest of the ground station.
    """
    import onnxruntime as ort

    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = ONNX Runtime's default), got {threads}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # the branches are run one at a time, never in parallel
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "1" if spin else "0")
    # DarkLighter's activations on dark crops underflow to denormal floats, which x86 computes some 50x
    # slower: measured 4.1-7.1 s against 87 ms for one teacher template branch. Flushing them to zero changes
    # values below 1e-38 only.
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    return options


class OnnxBackend:
    """Runs a model directory's template branch once and its search branch per frame.

    The search branch runs through an IO binding: the template's kernels are bound once per track, the
    search crop is bound once per buffer (the tracker reuses one), and the outputs land in arrays made
    once, so a frame costs ONNX Runtime no feed dictionaries, conversions or output allocations. The
    arrays search() returns are overwritten by the next call.
    """

    def __init__(
        self,
        model_dir: str | Path | ModelDir,
        providers: Sequence[str] = ("cpu",),
        teacher: bool = False,
        threads: int = 1,
        spin: bool = False,
    ) -> None:
        self.model = model_dir if isinstance(model_dir, ModelDir) else read_model_dir(model_dir)
        self.params = self.model.params
        prefix = "teacher_" if teacher else ""
        chosen = resolve_providers(providers)
        options = session_options(threads, spin)
        self.template_session = self._session(f"{prefix}template", options, chosen)
        self.search_session = self._session(f"{prefix}search", options, chosen)
        self.providers = self.search_session.get_providers()
        log.info(
            "ONNX Runtime %s: providers %s, %s intra-op thread(s), spinning %s",
            "teacher" if teacher else "tracker",
            self.providers,
            threads or "default",
            "on" if spin else "off",
        )
        self._kernel_names = [o.name for o in self.template_session.get_outputs()]
        self._outputs = {o.name: o for o in self.search_session.get_outputs()}
        self._binding = None
        self._kernels: list[np.ndarray] = []
        self._bound_search: np.ndarray | None = None
        self._cls = self._loc = np.empty(0, np.float32)
        self._check_graphs()

    def _session(self, role: str, options, providers: list[str]):
        """An ONNX Runtime session for one of the model directory's files; a file ONNX Runtime cannot load
        (cut, garbage, empty: its sha256 in the manifest may have been updated with it) is a ModelDirError
        naming the file, not ONNX Runtime's own exception."""
        import onnxruntime as ort
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

        path = self.model.file(role)
        try:
            return ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:
            if type(exc).__module__ != ort_errors.__name__:  # ONNX Runtime's errors all live there
                raise
            reason = str(exc).rpartition("failed:")[2].strip(" .") or str(exc)  # "Load model from X failed:WHY"
            raise ModelDirError(
                f"model directory {self.model.path}: ONNX Runtime cannot load {path.name}: {reason}"
            ) from exc

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

    def kernels(self, z_crop: np.ndarray) -> list[np.ndarray]:
        """The template branch's output for a crop, without making it the template (appearance checks)."""
        return self.template_session.run(None, {"template": z_crop})

    def search_with(self, kernels: list[np.ndarray], x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The search branch with other kernels than the track's (verification), leaving the track's binding alone."""
        feed = dict(zip(self._kernel_names, kernels, strict=True))
        cls, loc = self.search_session.run(["cls", "loc"], {**feed, "search": x_crop})
        return cls, loc

    def set_template(self, z_crop: np.ndarray) -> None:
        self._kernels = self.template_session.run(None, {"template": z_crop})  # kept alive: the binding reads them
        binding = self.search_session.io_binding()
        for name, kernel in zip(self._kernel_names, self._kernels, strict=True):
            binding.bind_cpu_input(name, kernel)
        self._bound_search = None
        self._binding = binding

    def _bind_outputs(self, binding) -> None:
        """Output arrays of the shapes the graph declares; symbolic ones are sized by a first plain run."""
        shapes = [self._outputs[name].shape for name in ("cls", "loc")]
        if not all(isinstance(d, int) for shape in shapes for d in shape):
            feed = dict(zip(self._kernel_names, self._kernels, strict=True))
            shapes = [a.shape for a in self.search_session.run(["cls", "loc"], {**feed, "search": self._bound_search})]
        self._cls, self._loc = (np.empty(shape, np.float32) for shape in shapes)
        for name, array in (("cls", self._cls), ("loc", self._loc)):
            binding.bind_output(name, "cpu", 0, np.float32, array.shape, array.ctypes.data)

    def search(self, x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        binding = self._binding
        if binding is None:
            raise RuntimeError("search() before set_template()")
        if x_crop is not self._bound_search:  # a new buffer (or the first frame of a track): bind it
            x_crop = np.ascontiguousarray(x_crop, dtype=np.float32)
            binding.bind_cpu_input("search", x_crop)
            first = self._bound_search is None
            self._bound_search = x_crop
            if first:
                self._bind_outputs(binding)
        self.search_session.run_with_iobinding(binding)
        return self._cls, self._loc
