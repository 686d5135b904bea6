"""The tracker-family registry: one `Family` object per family, looked up by the name manifests carry.

Torch-free on purpose: the ground station imports it to decode outputs. A family names its network by
import path, so torch is imported only when `build_network()` is asked for (export, training, the
torch backend).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:
    from torch import nn

# Side of the search crop while training (the tracker may search a larger one, e.g. 287 for SiamRPN).
TRAIN_SEARCH_SIZE = 255


class GridParams(Protocol):
    """The part of mlkd_model.params.TrackerParams that priors are made from (params imports this module)."""

    score_size: int
    stride: int
    anchor_ratios: tuple[float, ...]
    anchor_scales: tuple[float, ...]


class TargetCounts(Protocol):
    """How many labelled locations a training target keeps (mlkd_training.data.DataConfig has them)."""

    pos_num: int
    total_num: int
    neg_num: int


class Family:
    """What ties one network to the tracking loop and to training. Subclass, fill in, `@register`."""

    name: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]]  # TrackerParams fields (all but `family`) of the release config
    anchor_based: ClassVar[bool] = False  # priors are (cx, cy, w, h) anchors rather than (x, y) points
    network: ClassVar[str]  # "module:Class" of the torch network, imported by build_network()
    # Checkpoint keys the released weights carry but the network does not use (dropped with a log line).
    unused_checkpoint_keys: ClassVar[tuple[str, ...]] = ()
    train_score: ClassVar[tuple[int, int]]  # (score-map side, stride) for a TRAIN_SEARCH_SIZE crop
    regression_loss: ClassVar[str]  # key of mlkd_training.losses.REGRESSION_LOSSES
    kd_reg_range: ClassVar[tuple[float, float]]  # bins of the distilled regression values (kd_reg_values)
    target: ClassVar[Callable[[TargetCounts], Callable[..., dict[str, np.ndarray]]]]  # training target maker

    def prior(self, params: GridParams) -> np.ndarray:
        """One row per candidate of the score map: anchors (cx, cy, w, h) or points (x, y), crop-centred."""
        raise NotImplementedError

    def decode(self, delta: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """4 x N head regression -> 4 x N boxes (cx, cy, w, h) in crop pixels from the centre."""
        raise NotImplementedError

    def decode_one(self, d: tuple[float, float, float, float], prior_row: np.ndarray) -> tuple[float, ...]:
        """`decode` of one candidate in Python floats (math raises where numpy would give inf / NaN)."""
        raise NotImplementedError

    def rank_constants(self, prior: np.ndarray) -> np.ndarray | None:
        """Per-track constants `rank_sizes` needs, made once at init."""
        return None

    def rank_sizes(self, delta: np.ndarray, constants: np.ndarray | None) -> np.ndarray:
        """2 x N candidate widths and heights in the head's dtype (float32), for ranking only."""
        raise NotImplementedError

    def kd_reg_values(self, loc: Any) -> Any:
        """The regression output (a torch tensor) as the values that L_KDR spreads over bins."""
        return loc

    def build_network(self) -> nn.Module:
        module, _, cls = self.network.partition(":")
        return getattr(importlib.import_module(module), cls)()


_FAMILIES: dict[str, Family] = {}


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: make the family known by its `name`."""
    if cls.name in _FAMILIES:
        raise ValueError(f"tracker family {cls.name!r} is registered twice")
    _FAMILIES[cls.name] = cls()
    return cls


def family_names() -> tuple[str, ...]:
    return tuple(_FAMILIES)


def get_family(name: str) -> Family:
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown tracker family {name!r}; expected one of {family_names()}") from None


def score_grid(size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every score-map cell in search-crop pixels from the centre, as float32 meshgrids."""
    origin = -(size // 2) * stride
    grid = origin + stride * np.arange(size, dtype=np.float32)
    return np.meshgrid(grid, grid)


def keep_at_most(
    rng: np.random.Generator, idx: tuple[np.ndarray, ...], keep: int
) -> tuple[tuple[np.ndarray, ...], int]:
    """A random `keep` of the np.where-style indices `idx` (all when there are fewer) and their count."""
    n = len(idx[0])
    if n <= keep:
        return idx, n
    chosen = rng.permutation(n)[:keep]
    return tuple(i[chosen] for i in idx), keep
