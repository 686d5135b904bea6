"""DarkLighter, the MLKD teacher's low-light enhancer (weights: the official `Epoch193.pth`).

Seven 3x3 convolutions with 32 filters; conv3..5 take the concatenation of the two previous
outputs; two tanh heads give 8 illumination maps r and 8 noise maps n; the image is refined
8 times as x <- (x - n_i) * (r_i + 1). Input and output are RGB in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn


class DarkLighter(nn.Module):
    def __init__(self, width: int = 32, iterations: int = 8) -> None:
        super().__init__()
        self.iterations = iterations
        self.e_conv1 = nn.Conv2d(3, width, 3, 1, 1)
        self.e_conv2 = nn.Conv2d(width, width, 3, 1, 1)
        self.e_conv3 = nn.Conv2d(2 * width, width, 3, 1, 1)
        self.e_conv4 = nn.Conv2d(2 * width, width, 3, 1, 1)
        self.e_conv5 = nn.Conv2d(2 * width, width, 3, 1, 1)
        self.e_conv7 = nn.Conv2d(2 * width, iterations, 3, 1, 1)
        self.e_conv8 = nn.Conv2d(2 * width, iterations, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = torch.relu(self.e_conv1(x))
        x2 = torch.relu(self.e_conv2(x1))
        x3 = torch.relu(self.e_conv3(torch.cat([x1, x2], 1)))
        x4 = torch.relu(self.e_conv4(torch.cat([x2, x3], 1)))
        x5 = torch.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        top = torch.cat([x4, x5], 1)
        r = torch.tanh(self.e_conv7(top))
        n = torch.tanh(self.e_conv8(top))
        for i in range(self.iterations):
            x = (x - n[:, i : i + 1]) * (r[:, i : i + 1] + 1)
        return x


class EnhancedInput(nn.Module):
    """DarkLighter applied to a tracker crop: 0..255 in the tracker's channel order in and out."""

    def __init__(self, enhancer: DarkLighter, input_order: str = "bgr") -> None:
        super().__init__()
        self.enhancer = enhancer
        self.flip = input_order == "bgr"  # DarkLighter works on RGB

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        x = crop.flip(1) if self.flip else crop
        y = self.enhancer(x / 255.0).clamp(0, 1) * 255.0
        return y.flip(1) if self.flip else y
