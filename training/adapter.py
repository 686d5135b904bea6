"""The night-adapter student: the tracker frozen, small low-rank residual adapters on its backbone
features that switch on only for dark crops.

`AdaptedBackbone` runs the backbone's layers and after each tapped layer adds `gate * up(act(dw(down(f))))`
(a bottleneck of `rank` channels with a depthwise 3x3 for local context, `up` zero-initialised so the
student starts as the stock tracker). `gate = sigmoid((GATE_MEAN - mean grey of the crop) / GATE_WIDTH)`
is computed from the network's own input: darkened crops (mean grey ~5-55) open it, daytime crops
(the validation frames' means are 82-123) leave it below 0.015, so on clean frames the student *is* the
stock tracker, whatever the adapters learn: it cannot forget the day. The adapter runs inside the
backbone, so an exported student keeps the model directory's two ONNX branches and their inputs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from mlkd_model.nets.build import build_tracker
from mlkd_model.nets.checkpoint import read_checkpoint

GATE_MEAN = 65.0  # grey level (0..255) at which the gate is half open
GATE_WIDTH = 4.0  # grey levels per e-fold of the gate
NANOTRACK_TAPS = (1, 3, 6, 8)  # layers of MobileNetV3Small.features: stride 4, 8, 16, 16 (output)
ADAPTER_PREFIX = "backbone.adapters."


class LowRankAdapter(nn.Module):
    def __init__(self, channels: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(channels, rank, 1)
        self.mix = nn.Conv2d(rank, rank, 3, padding=1, groups=rank)
        self.act = nn.Hardswish()
        self.up = nn.Conv2d(rank, channels, 1)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.mix(self.down(f))))


def darkness_gate(x: torch.Tensor) -> torch.Tensor:
    """B x 1 x 1 x 1: ~1 for a dark crop (0..255 input), ~0 for a daytime one."""
    return torch.sigmoid((GATE_MEAN - x.mean(dim=(1, 2, 3), keepdim=True)) / GATE_WIDTH)


class AdaptedBackbone(nn.Module):
    def __init__(self, body: nn.Module, taps: tuple[int, ...], rank: int) -> None:
        super().__init__()
        self.body = body
        features = body.features
        channels = {}
        was_training = body.training
        body.eval()  # probing the widths must not touch BatchNorm statistics
        with torch.no_grad():
            h = torch.zeros(1, 3, 64, 64)
            for i, layer in enumerate(features):
                h = layer(h)
                channels[i] = h.shape[1]
        body.train(was_training)
        self.adapters = nn.ModuleDict({str(i): LowRankAdapter(channels[i], rank) for i in taps})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = darkness_gate(x)
        h = x
        for i, layer in enumerate(self.body.features):
            h = layer(h)
            adapter = self.adapters[str(i)] if str(i) in self.adapters else None
            if adapter is not None:
                h = h + gate * adapter(h)
        return h


def make_adapter_student(tracker: nn.Module, rank: int = 8) -> nn.Module:
    """A copy of the tracker, every weight frozen, with trainable adapters in its backbone."""
    if getattr(tracker, "family", None) != "nanotrack":
        raise ValueError(f"adapter students exist for the nanotrack family only, not {tracker.family!r}")
    student = copy.deepcopy(tracker)
    for p in student.parameters():
        p.requires_grad_(False)
    student.backbone = AdaptedBackbone(student.backbone, NANOTRACK_TAPS, rank)
    return student


def is_adapter_state(state: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith(ADAPTER_PREFIX) for k in state)


def load_student(family: str, weights: str | Path) -> nn.Module:
    """A trained student's network from its state dict: a plain tracker, or one with night adapters."""
    state = read_checkpoint(weights)
    if not is_adapter_state(state):
        return build_tracker(family, weights)
    rank = state[f"{ADAPTER_PREFIX}{NANOTRACK_TAPS[0]}.down.weight"].shape[0]
    student = make_adapter_student(build_tracker(family), rank)
    student.load_state_dict(state, strict=True)
    return student.eval()
