"""torch backend: the same tracking loop on the torch networks (research, export checks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mlkd_model.manifest import ModelDir, read_model_dir
from mlkd_model.nets.build import build_teacher, build_tracker
from mlkd_model.params import TrackerParams


class TorchBackend:
    def __init__(self, net: nn.Module, params: TrackerParams, device: str = "cpu") -> None:
        self.net = net.eval().to(device)
        self.params = params
        self.device = device
        self._kernels: tuple[torch.Tensor, ...] = ()

    @classmethod
    def from_model_dir(
        cls, model_dir: str | Path | ModelDir, teacher: bool = False, device: str = "cpu"
    ) -> TorchBackend:
        model = model_dir if isinstance(model_dir, ModelDir) else read_model_dir(model_dir)
        net = build_tracker(model.params.family, model.file("weights"))
        if teacher:
            net = build_teacher(net, model.file("enhancer"), model.params.input_order)
        return cls(net, model.params, device)

    @torch.no_grad()
    def kernels(self, z_crop: np.ndarray) -> list[np.ndarray]:
        """The template branch's output for a crop, without making it the template (appearance checks)."""
        return [k.cpu().numpy() for k in self.net.template_kernels(torch.from_numpy(z_crop).to(self.device))]

    @torch.no_grad()
    def search_with(self, kernels: list[np.ndarray], x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The search branch with other kernels than the track's (verification)."""
        k = tuple(torch.from_numpy(v).to(self.device) for v in kernels)
        out = self.net.search_with_kernels(k, torch.from_numpy(x_crop).to(self.device))
        return out.cls.cpu().numpy(), out.loc.cpu().numpy()

    @torch.no_grad()
    def set_template(self, z_crop: np.ndarray) -> None:
        self._kernels = self.net.template_kernels(torch.from_numpy(z_crop).to(self.device))

    @torch.no_grad()
    def search(self, x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.net.search_with_kernels(self._kernels, torch.from_numpy(x_crop).to(self.device))
        return out.cls.cpu().numpy(), out.loc.cpu().numpy()
