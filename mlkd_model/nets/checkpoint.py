"""Checkpoint loading that never guesses: weights_only=True, and every key accounted for.

Accepted layouts: a plain state dict; a dict with `state_dict` or `model` (pysot, NanoTrack,
official MLKD, our trainer); DistributedDataParallel's `module.` prefix.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

# Old NumPy pickles (NanoTrack's `epoch`/`best_acc` fields) reference these; they are plain data.
_NUMPY_SAFE = [
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
    np.dtype,
    *{type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)},
]


class CheckpointError(RuntimeError):
    """A checkpoint that is unreadable or does not fit the network it is loaded into."""


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file safely and return its state dict (tensors only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals(_NUMPY_SAFE):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file: {exc}".splitlines()[0]) from exc
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"checkpoint {path} holds no state dict (found {type(obj).__name__})")
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"checkpoint {path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        state[key.removeprefix("module.")] = value
    return state


def load_weights(
    model: nn.Module,
    path: str | Path,
    ignore_prefixes: Iterable[str] = (),
    state: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Load `path` into `model`; any missing, unexpected or mis-shaped key is a CheckpointError naming them.

    `ignore_prefixes` lists checkpoint keys known to be unused by this network (documented per
    family), which are dropped with a log line rather than silently.
    """
    state = dict(state if state is not None else read_checkpoint(path))
    ignored = [k for k in state if any(k.startswith(p) for p in ignore_prefixes)]
    for k in ignored:
        del state[k]
    if ignored:
        log.info(
            "%s: ignoring %d keys unused by %s (%s)",
            path,
            len(ignored),
            type(model).__name__,
            ", ".join(ignore_prefixes),
        )
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_short(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {_short(mismatched)}")
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def _short(items: list[str], limit: int = 8) -> str:
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
