"""Build networks of each family, optionally loading a checkpoint."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from mlkd_model.nets.alexnet_rpn import SiamRPNAlex
from mlkd_model.nets.checkpoint import load_weights
from mlkd_model.nets.darklighter import DarkLighter
from mlkd_model.nets.nanotrack import NanoTrackV2
from mlkd_model.nets.teacher import Teacher

# The released nanotrackv2.pth carries a 64->64 `neck` that NanoTrack never applies (its AdjustLayer
# is the identity when in and out widths agree); DarkLighter checkpoints carry nothing extra.
_UNUSED_KEYS = {"nanotrack": ("neck.",), "siamrpn_alex": ()}


def build_tracker(family: str, checkpoint: str | Path | None = None) -> nn.Module:
    model: nn.Module
    if family == "nanotrack":
        model = NanoTrackV2()
    elif family == "siamrpn_alex":
        model = SiamRPNAlex()
    else:
        raise ValueError(f"unknown tracker family {family!r}; expected nanotrack or siamrpn_alex")
    if checkpoint is not None:
        load_weights(model, checkpoint, _UNUSED_KEYS[family])
    return model.eval()


def build_darklighter(checkpoint: str | Path | None = None) -> DarkLighter:
    model = DarkLighter()
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model.eval()


def build_teacher(tracker: nn.Module, enhancer_checkpoint: str | Path, input_order: str = "bgr") -> Teacher:
    return Teacher(build_darklighter(enhancer_checkpoint), tracker, input_order)
