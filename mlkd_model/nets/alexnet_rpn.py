"""SiamRPN++ with the AlexNet backbone and depthwise-xcorr RPN head (pysot `siamrpn_alex_dwxcorr`).

Module names follow pysot so that pysot and official-MLKD checkpoints load key for key:
`backbone.features.*`, `rpn_head.cls.*`, `rpn_head.loc.*`.
"""

from __future__ import annotations

import torch
from torch import nn

from mlkd_model.families.siamrpn_alex import SiamRPNAlex as SiamRPNAlexFamily
from mlkd_model.nets.common import HeadOutput, xcorr_depthwise


class AlexNetBackbone(nn.Module):
    """Widths 3-96-256-384-384-256; 127 px -> 6x6, 255 -> 22x22, 287 -> 26x26."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=2),
            nn.BatchNorm2d(96),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(96, 256, kernel_size=5),
            nn.BatchNorm2d(256),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 384, kernel_size=3),
            nn.BatchNorm2d(384),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3),
            nn.BatchNorm2d(384),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3),
            nn.BatchNorm2d(256),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class DepthwiseXCorr(nn.Module):
    """3x3 conv+BN+ReLU on template and search, depthwise xcorr, then 1x1 conv+BN+ReLU and 1x1 conv."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__()

        def branch() -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(channels, channels, 3, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
            )

        self.conv_kernel = branch()
        self.conv_search = branch()
        self.head = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, out_channels, 1),
        )

    def kernel(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_kernel(z)

    def correlate(self, kernel: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        corr = xcorr_depthwise(self.conv_search(x), kernel)
        return self.head(corr), corr


class DepthwiseRPN(nn.Module):
    def __init__(self, anchor_num: int = 5, channels: int = 256) -> None:
        super().__init__()
        self.cls = DepthwiseXCorr(channels, 2 * anchor_num)
        self.loc = DepthwiseXCorr(channels, 4 * anchor_num)


class SiamRPNAlex(nn.Module):
    family = SiamRPNAlexFamily.name

    def __init__(self, anchor_num: int = 5) -> None:
        super().__init__()
        self.backbone = AlexNetBackbone()
        self.rpn_head = DepthwiseRPN(anchor_num)

    def template_kernels(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Template branch: what is computed once per track (the two head kernels)."""
        zf = self.backbone(z)
        return self.rpn_head.cls.kernel(zf), self.rpn_head.loc.kernel(zf)

    def search_with_kernels(self, kernels: tuple[torch.Tensor, ...], x: torch.Tensor) -> HeadOutput:
        xf = self.backbone(x)
        cls, corr = self.rpn_head.cls.correlate(kernels[0], xf)
        loc, _ = self.rpn_head.loc.correlate(kernels[1], xf)
        return HeadOutput(cls, loc, corr)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> HeadOutput:
        return self.search_with_kernels(self.template_kernels(z), x)
