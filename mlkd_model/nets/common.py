"""Pieces shared by the tracker networks and the output record they all return."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class HeadOutput(NamedTuple):
    cls: torch.Tensor  # B x 2A x S x S classification logits, [class][anchor] channel layout
    loc: torch.Tensor  # B x 4A x S x S regression (anchor deltas, or ltrb distances)
    corr: torch.Tensor  # classification-branch correlation map, what L_CRL and L_ML compare


class Freezable(nn.Module):
    """A network that teaches: freeze() puts it in eval mode without gradients, and it stays in eval mode
    when a parent module is switched to train() (the official code left its teacher in train mode: BN drift)."""

    def freeze(self):
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True):
        frozen = not any(p.requires_grad for p in self.parameters())
        return super().train(False if frozen else mode)


def xcorr_depthwise(search: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Per-channel cross-correlation of each search map with its own template kernel (grouped conv)."""
    b, c = kernel.shape[:2]
    out = F.conv2d(
        search.reshape(1, b * c, *search.shape[2:]), kernel.reshape(b * c, 1, *kernel.shape[2:]), groups=b * c
    )
    return out.reshape(b, c, *out.shape[2:])


def xcorr_pixelwise(search: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Every template position against every search position: B x (Hz*Wz) x Hx x Wx.

    Computed as (search^T kernel)^T: the direct kernel^T search form hands BatchNorm's backward a
    gradient layout for which torch 2.13 on CPU returns wrong input gradients at batch size 1
    (tests/test_networks.py checks the gradient against finite differences).
    """
    b, c, h, w = search.shape
    corr = torch.matmul(search.reshape(b, c, -1).transpose(1, 2), kernel.reshape(b, c, -1))
    return corr.transpose(1, 2).reshape(b, -1, h, w)
