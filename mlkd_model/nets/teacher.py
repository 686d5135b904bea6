"""The MLKD teacher: DarkLighter on every crop, then the tracker. Frozen in eval mode when used to teach."""

from __future__ import annotations

import torch
from torch import nn

from mlkd_model.nets.common import HeadOutput
from mlkd_model.nets.darklighter import DarkLighter, EnhancedInput


class Teacher(nn.Module):
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

    def freeze(self) -> Teacher:
        """Eval mode and no gradients: the official code left the teacher in train mode (BN drift)."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> Teacher:
        # A frozen teacher stays in eval mode even when a parent module is switched to train().
        frozen = not any(p.requires_grad for p in self.parameters())
        return super().train(False if frozen else mode)
