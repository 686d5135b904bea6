"""NanoTrack v2: MobileNetV3-small backbone (stride 16, 48 channels) and an anchor-free head with
pixel-wise correlation and channel attention. Names follow the released `nanotrackv2.pth`.
"""

from __future__ import annotations

import torch
from torch import nn

from mlkd_model.families.nanotrack import NanoTrack as NanoTrackFamily
from mlkd_model.nets.common import HeadOutput, xcorr_pixelwise

# kernel, expansion, out channels, squeeze-excite, hard-swish, stride  (MobileNetV3-small, first 8 blocks)
_BLOCKS = [
    (3, 1, 16, True, False, 2),
    (3, 4.5, 24, False, False, 2),
    (3, 3.67, 24, False, False, 1),
    (5, 4, 40, True, True, 2),
    (5, 6, 40, True, True, 1),
    (5, 6, 40, True, True, 1),
    (5, 3, 48, True, True, 1),
    (5, 3, 48, True, True, 1),
]


def _divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = _divisible(channels // 4)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Hardsigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        return x * self.fc(self.avg_pool(x).reshape(b, c)).reshape(b, c, 1, 1)


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, hidden: int, out: int, k: int, stride: int, se: bool, hs: bool) -> None:
        super().__init__()
        self.identity = stride == 1 and inp == out

        def act() -> nn.Module:
            return nn.Hardswish() if hs else nn.ReLU(inplace=True)

        se_layer = SqueezeExcite(hidden) if se else nn.Identity()
        dw = [nn.Conv2d(hidden, hidden, k, stride, (k - 1) // 2, groups=hidden, bias=False), nn.BatchNorm2d(hidden)]
        pw_linear = [nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        if inp == hidden:
            layers = [*dw, act(), se_layer, *pw_linear]
        else:
            layers = [
                nn.Conv2d(inp, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden),
                act(),
                *dw,
                se_layer,
                act(),
                *pw_linear,
            ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.identity else self.conv(x)


class MobileNetV3Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        ]
        inp = 16
        for k, t, c, se, hs, s in _BLOCKS:
            out = _divisible(c)
            layers.append(InvertedResidual(inp, _divisible(inp * t), out, k, s, se, hs))
            inp = out
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class ChannelAttention(nn.Module):
    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels, 1)
        self.fc2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * w


class PixelwiseXCorr(nn.Module):
    def __init__(self, channels: int = 48, positions: int = 64) -> None:
        super().__init__()
        self.CA_layer = ChannelAttention(positions)
        self.conv_kernel = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.conv_search = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, kernel: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return self.CA_layer(xcorr_pixelwise(self.conv_search(search), self.conv_kernel(kernel)))


def _tower(cin: int = 64, width: int = 96, depth: int = 6) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        c = cin if i == 0 else width
        layers += [
            nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False),
            nn.Conv2d(c, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU6(inplace=True),
        ]
    return nn.Sequential(*layers)


class NanoHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.corr_pw_reg = PixelwiseXCorr()
        self.corr_pw_cls = PixelwiseXCorr()
        self.cls_pw_tower = _tower()
        self.bbox_pw_tower = _tower()
        self.cls_pred = nn.Sequential(nn.Conv2d(96, 2, 1))
        self.bbox_pred = nn.Sequential(nn.Conv2d(96, 4, 1))

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> HeadOutput:
        corr = self.corr_pw_cls(zf, xf)
        cls = self.cls_pred(self.cls_pw_tower(corr))
        loc = torch.exp(self.bbox_pred(self.bbox_pw_tower(self.corr_pw_reg(zf, xf))))
        return HeadOutput(cls, loc, corr)


class NanoTrackV2(nn.Module):
    family = NanoTrackFamily.name

    def __init__(self) -> None:
        super().__init__()
        self.backbone = MobileNetV3Small()
        self.ban_head = NanoHead()

    def template_kernels(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.backbone(z),)

    def search_with_kernels(self, kernels: tuple[torch.Tensor, ...], x: torch.Tensor) -> HeadOutput:
        return self.ban_head(kernels[0], self.backbone(x))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> HeadOutput:
        return self.search_with_kernels(self.template_kernels(z), x)
