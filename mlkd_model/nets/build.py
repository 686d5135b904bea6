"""Build networks of each family, optionally loading a checkpoint."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from mlkd_model.families import get_family
from mlkd_model.nets.checkpoint import load_weights
from mlkd_model.nets.darklighter import DarkLighter
from mlkd_model.nets.teacher import Teacher


def build_tracker(family: str, checkpoint: str | Path | None = None) -> nn.Module:
    """The network of `family` (mlkd_model/families/), with `checkpoint` loaded when one is given."""
    spec = get_family(family)
    model = spec.build_network()
    if checkpoint is not None:
        load_weights(model, checkpoint, spec.unused_checkpoint_keys)
    return model.eval()


def build_darklighter(checkpoint: str | Path | None = None) -> DarkLighter:
    # DarkLighter checkpoints carry nothing the network does not use.
    model = DarkLighter()
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model.eval()


def build_teacher(tracker: nn.Module, enhancer_checkpoint: str | Path, input_order: str = "bgr") -> Teacher:
    return Teacher(build_darklighter(enhancer_checkpoint), tracker, input_order)
