"""Export a tracker (and optionally its teacher) to a self-describing ONNX model directory.

Branches: `template.onnx` (template crop -> kernels, run once per track) and `search.onnx`
(kernels + search crop -> cls, loc, run per frame); with an enhancer also `teacher_template.onnx`
and `teacher_search.onnx`. The torch weights are copied in as well, so `--backend torch` works
from the same directory.
"""

from __future__ import annotations

import datetime
import logging
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from mlkd_model.manifest import sha256, write_manifest
from mlkd_model.nets.build import build_darklighter, build_teacher, build_tracker
from mlkd_model.params import TrackerParams, default_params
from mlkd_model.provenance import git_revision

log = logging.getLogger(__name__)
OPSET = 17


class _TemplateBranch(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, template: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net.template_kernels(template))


class _SearchBranch(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        *kernels, search = inputs
        out = self.net.search_with_kernels(tuple(kernels), search)
        return out.cls, out.loc


def _export_pair(net: nn.Module, params: TrackerParams, out_dir: Path, prefix: str) -> dict[str, str]:
    net = net.eval()
    z = torch.zeros(1, 3, params.exemplar_size, params.exemplar_size)
    x = torch.zeros(1, 3, params.instance_size, params.instance_size)
    with torch.no_grad():
        kernels = net.template_kernels(z)
    kernel_names = [f"kernel{i}" for i in range(len(kernels))]
    names = {"template": f"{prefix}template.onnx", "search": f"{prefix}search.onnx"}
    # The TorchScript exporter needs no extra packages (the dynamo one needs onnxscript); hush its deprecation notes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            _TemplateBranch(net),
            (z,),
            out_dir / names["template"],
            input_names=["template"],
            output_names=kernel_names,
            opset_version=OPSET,
            dynamo=False,
        )
        torch.onnx.export(
            _SearchBranch(net),
            (*kernels, x),
            out_dir / names["search"],
            input_names=[*kernel_names, "search"],
            output_names=["cls", "loc"],
            opset_version=OPSET,
            dynamo=False,
        )
    return {f"{prefix}{role}": name for role, name in names.items()}


def export_model(
    tracker: nn.Module,
    out_dir: str | Path,
    params: TrackerParams | None = None,
    source_checkpoint: str | Path | None = None,
    enhancer_checkpoint: str | Path | None = None,
    notes: str = "",
) -> Path:
    """Write `out_dir` with the ONNX branches, torch weights and manifest.json; returns out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = params or default_params(tracker.family)
    files = _export_pair(tracker, params, out_dir, "")
    torch.save(tracker.state_dict(), out_dir / "tracker.pth")
    files["weights"] = "tracker.pth"
    info: dict = {
        "source_checkpoint": str(source_checkpoint) if source_checkpoint else None,
        "source_sha256": sha256(Path(source_checkpoint)) if source_checkpoint else None,
        "inputs": {
            "template": [1, 3, params.exemplar_size, params.exemplar_size],
            "search": [1, 3, params.instance_size, params.instance_size],
        },
        "outputs": ["cls", "loc"],
        "exported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "exporter_revision": git_revision(),
        "torch_version": torch.__version__,
        "notes": notes,
    }
    if enhancer_checkpoint is not None:
        teacher = build_teacher(tracker, enhancer_checkpoint, params.input_order)
        files.update(_export_pair(teacher, params, out_dir, "teacher_"))
        shutil.copyfile(enhancer_checkpoint, out_dir / "darklighter.pth")
        files["enhancer"] = "darklighter.pth"
        info["enhancer_checkpoint"] = str(enhancer_checkpoint)
        info["enhancer_sha256"] = sha256(Path(enhancer_checkpoint))
    write_manifest(out_dir, params, files, info)
    log.info("exported %s model to %s (%s)", params.family, out_dir, ", ".join(sorted(files.values())))
    return out_dir


def export_checkpoint(
    family: str,
    checkpoint: str | Path | None,
    out_dir: str | Path,
    enhancer_checkpoint: str | Path | None = None,
    params: TrackerParams | None = None,
    notes: str = "",
) -> Path:
    """Checkpoint file -> model directory (the `mlkd export` command)."""
    tracker = build_tracker(family, checkpoint)
    if enhancer_checkpoint is not None:
        build_darklighter(enhancer_checkpoint)  # fail early, naming the file, before writing anything
    return export_model(tracker, out_dir, params, checkpoint, enhancer_checkpoint, notes)
