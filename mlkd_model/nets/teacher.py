"""The MLKD teacher: DarkLighter on every crop, then the tracker. Frozen in eval mode when used to teach."""

from __future__ import annotations

import torch
from torch import nn

from mlkd_model.nets.common import Freezable, HeadOutput
from mlkd_model.nets.darklighter import DarkLighter, EnhancedInput


class Teacher(Freezable):
    def __init__(self, enhancer: DarkLighter, tracker: nn.Module, input_order: str = "bgr") -> None:
        super().__init__()
        self.enhance = EnhancedInput(enhancer, input_order)
        self.tracker = tracker
        self.family = tracker.family

    def template_kernels(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.tracker.template_kernels(self.enhance(z))

    def search_with_kernels(self, kernels: tuple[torch.Tensor, ...], x: torch.Tensor) -> HeadOutput:
        return self.tracker.search_with_kernels(kernels, self.enhance(x))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> HeadOutput:
        return self.search_with_kernels(self.template_kernels(z), x)
