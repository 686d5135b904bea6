"""Tracker hyper-parameters: the numbers that tie a network to its tracking loop.

They travel in a model directory's manifest, so an exported model is self-describing and the
ground station never has to guess crop sizes or penalties.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mlkd_model.families import get_family


@dataclass(frozen=True)
class TrackerParams:
    family: str
    exemplar_size: int  # template crop, pixels
    instance_size: int  # search crop while tracking, pixels
    score_size: int  # side of the score map at instance_size
    stride: int  # pixels of the search crop per score-map cell
    context_amount: float = 0.5
    penalty_k: float = 0.15
    window_influence: float = 0.42
    lr: float = 0.3
    # Channel order the network was trained on. pysot and NanoTrack train on cv2.imread (BGR) images.
    input_order: str = "bgr"
    anchor_ratios: tuple[float, ...] = field(default_factory=tuple)
    anchor_scales: tuple[float, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        family = get_family(self.family)  # ValueError naming the known families
        if self.input_order not in ("bgr", "rgb"):
            raise ValueError(f"input_order must be 'bgr' or 'rgb', got {self.input_order!r}")
        # Checked here, at load, so a bad manifest is refused at once rather than failing on the first frame.
        for name in ("exemplar_size", "instance_size", "score_size", "stride"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 4096:
                raise ValueError(f"{name} must be an integer in 1..4096, got {v!r}")
        if self.instance_size < self.exemplar_size:
            raise ValueError(f"instance_size {self.instance_size} is smaller than exemplar_size {self.exemplar_size}")
        for name, lo, hi in (("context_amount", 0.0, 10.0), ("penalty_k", 0.0, 10.0)):
            v = getattr(self, name)
            if not lo < v <= hi:
                raise ValueError(f"{name} must be in ({lo:g}, {hi:g}], got {v!r}")
        for name in ("window_influence", "lr"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if family.anchor_based and not (self.anchor_ratios and self.anchor_scales):
            raise ValueError("an anchor-based family needs anchor_ratios and anchor_scales")
        if any(not v > 0 for v in (*self.anchor_ratios, *self.anchor_scales)):
            raise ValueError(f"anchor ratios and scales must be positive: {self.anchor_ratios}, {self.anchor_scales}")

    @property
    def anchor_num(self) -> int:
        return len(self.anchor_ratios) * len(self.anchor_scales)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["anchor_ratios"] = list(self.anchor_ratios)
        d["anchor_scales"] = list(self.anchor_scales)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrackerParams:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown tracker parameters {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        for key in ("anchor_ratios", "anchor_scales"):
            if key in d:
                d[key] = tuple(float(v) for v in d[key])
        return cls(**d)

    def replace(self, **changes: Any) -> TrackerParams:
        return TrackerParams.from_dict({**self.to_dict(), **changes})


def default_params(family: str) -> TrackerParams:
    """Defaults of each family, as their official tracking configs set them (mlkd_model/families/)."""
    return TrackerParams(family=family, **get_family(family).defaults)
