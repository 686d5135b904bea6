"""Weight averages of students that share a starting point ("model soups", and WiSE-FT's interpolation
toward the pre-trained weights).

The students of one room start from the same tracker weights and see the same batches, so their weights
stay close enough for a plain average to be a working network; an average of fine-tuned weights is often
more robust than either, and moving it part of the way back toward the stock weights keeps more of
their daytime skill. Both are candidates of `mlkd select --soups`, scored on the validation protocol
like any student.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from mlkd_model.nets.checkpoint import read_checkpoint


class SoupError(ValueError):
    """Weights that cannot be averaged (different networks)."""


def average_states(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """sum_i weights[i] * states[i] for every floating-point tensor (weights normalised to sum 1); integer
    tensors (BatchNorm's batch counters) are taken from the first state."""
    if not states or len(states) != len(weights):
        raise SoupError(f"need one weight per state dict, got {len(states)} states and {len(weights)} weights")
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise SoupError(f"weights must be >= 0 with a positive sum, got {list(weights)}")
    keys = set(states[0])
    for i, state in enumerate(states[1:], 1):
        if set(state) != keys:
            raise SoupError(f"state dict {i} has other keys than state dict 0: {sorted(set(state) ^ keys)[:5]}")
        bad = [k for k in keys if state[k].shape != states[0][k].shape]
        if bad:
            raise SoupError(f"state dict {i} differs in shape from state dict 0 at {sorted(bad)[:5]}")
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            out[key] = sum(s[key].double() * (w / total) for s, w in zip(states, weights, strict=True)).to(first.dtype)
        else:
            out[key] = first.clone()
    return out


def write_soup(sources: Sequence[str | Path | Mapping[str, torch.Tensor]], weights: Sequence[float], out: Path) -> Path:
    """Average the sources (state dicts, or checkpoint files of any layout `read_checkpoint` takes) and save
    a plain state dict to `out`."""
    states = [s if isinstance(s, Mapping) else read_checkpoint(s) for s in sources]
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(average_states(states, weights), out)
    return out
