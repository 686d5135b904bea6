"""Per-frame cues that tell the target from a look-alike, and the confidence they are combined into.

The network's score alone saturates on distractors (a lit car scores 0.97-1.0 once the tracker has jumped
onto it). The cues here add what one frame's score does not carry:
- `ambiguity`: the strongest response away from the chosen peak, over the chosen score (two peaks precede
  a switch to a distractor);
- `spread`: the share of response cells above 0.5;
- `jump`: how far the chosen box lies from the crop centre, in target sizes (a switch is a jump);
- `size_change`: |log| of the box area against the previous frame's;
- `appearance`: cosine of the template branch's features of a crop at the tracked box against the init
  template's, relative to its level on the first frames of the track (sequences differ in level);
- `recall`: the network's own answer to "is what I follow now what stood at the target's place on the init
  frame?": the current box's template searched in the init frame's search crop, its foreground logit at
  the init target's place (the probability saturates near 1 for any salient object), relative to its
  level on the first frames. A look-alike taken later answers low
  there; the target answers high however far it has moved since.
A logistic model over them, fitted on the training split (`mlkd_training.confidence_fit`), gives the
per-frame confidence; its weights and the state thresholds travel as JSON (`confidence.json` in a model
directory, else `confidence_default.json` beside this module, fitted for the embedded model).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mlkd_model.target_state import StateRule
from mlkd_model.tracker import LastSearch

FEATURES = ("score_logit", "ambiguity", "spread", "jump", "size_change", "appearance", "recall")
DEFAULT_CONFIDENCE = Path(__file__).with_name("confidence_default.json")


def response_cues(last: LastSearch, score_size: int, stride: int) -> tuple[float, float, float]:
    """(ambiguity, spread, jump) of one search."""
    n2 = score_size * score_size
    fg = foreground(last.cls, score_size).ravel()
    cell = last.best % n2
    row, col = divmod(cell, score_size)
    tw, th = last.target
    target = math.sqrt(max(tw * th, 1.0))
    radius = max(2, math.ceil(target / stride / 2))  # cells that belong to the chosen peak
    rr, cc = np.divmod(np.arange(n2), score_size)
    away = np.maximum(np.abs(rr - row), np.abs(cc - col)) > radius
    peak = float(fg[cell])
    second = float(fg[away].max()) if away.any() else 0.0
    ambiguity = second / max(peak, 1e-6)
    spread = float((fg > 0.5).mean())
    jump = math.hypot(last.box[0], last.box[1]) / target
    return ambiguity, spread, jump


def foreground_logit(cls: np.ndarray, score_size: int) -> np.ndarray:
    """Foreground minus background logit per score-map cell (the best anchor's), score_size x score_size."""
    c = cls.reshape(2, -1, score_size * score_size)
    return (c[1] - c[0]).max(axis=0).reshape(score_size, score_size)


def foreground(cls: np.ndarray, score_size: int) -> np.ndarray:
    """Foreground probability per score-map cell (the best anchor's), score_size x score_size."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-foreground_logit(cls, score_size)))


def cosine(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    x = np.concatenate([k.ravel() for k in a]).astype(np.float64)
    y = np.concatenate([k.ravel() for k in b]).astype(np.float64)
    return float(x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-12))


def logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class ConfidenceModel:
    """confidence = sigmoid(bias + sum weight_f * (feature_f - mean_f) / scale_f), then an exponential
    moving average over frames (`smoothing` = the weight of the past), since on-target dips are short and
    off-target stretches long."""

    weights: dict[str, float] = field(default_factory=lambda: {"score_logit": 1.0})
    bias: float = 0.0
    mean: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    smoothing: float = 0.0
    fitted_on: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(FEATURES)
        if unknown:
            raise ValueError(f"confidence model: unknown features {sorted(unknown)}; known: {', '.join(FEATURES)}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"confidence model: smoothing must be in [0, 1), got {self.smoothing}")

    def linear(self, features: dict[str, float]) -> float:
        """The logistic model's linear predictor (the confidence's log-odds before smoothing)."""
        z = self.bias
        for name, w in self.weights.items():
            v = features.get(name, math.nan)
            if not math.isfinite(v):
                v = self.mean.get(name, 0.0)  # a cue not measured on this frame counts as average
            z += w * (v - self.mean.get(name, 0.0)) / self.scale.get(name, 1.0)
        return z

    def instant(self, features: dict[str, float]) -> float:
        z = min(max(self.linear(features), -50.0), 50.0)
        return 1.0 / (1.0 + math.exp(-z))


def read_judgement(path: str | Path) -> tuple[ConfidenceModel, StateRule]:
    """The confidence model and state rule of a `confidence.json`."""
    try:
        data = json.loads(Path(path).read_text())
        return ConfidenceModel(**data["confidence"]), StateRule(**data["state_rule"])
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: not a confidence file ({exc}); refit it with mlkd_training.confidence_fit") from exc


def write_judgement(path: str | Path, model: ConfidenceModel, rule: StateRule) -> None:
    text = json.dumps({"confidence": asdict(model), "state_rule": asdict(rule)}, indent=2)
    Path(path).write_text(text + "\n")


class Confidence:
    """Per-track cues and the smoothed confidence. The two checks against the init frame (appearance and
    recall) cost a template and a search branch run, so the tracker makes them every few frames and the
    values hold in between."""

    def __init__(self, model: ConfidenceModel) -> None:
        self.model = model
        self.reset()

    def reset(self) -> None:
        self._early: list[tuple[float, float]] = []  # first checks' (cosine, recall): the track's own levels
        self._checked = (math.nan, math.nan)
        self._prev_area = math.nan
        self.features: dict[str, float] = {}
        self.value = math.nan  # the smoothed confidence; NaN until the first frame

    @property
    def calibrating(self) -> bool:
        """The first checks set the track's levels: make them on consecutive frames."""
        return len(self._early) < 3

    def level(self, k: int) -> float:
        """The track's own level of check k (0 appearance cosine, 1 recall) on its first checks."""
        return max(max((e[k] for e in self._early), default=1.0), 1e-6)

    @property
    def features_checked(self) -> tuple[float, float]:
        """The latest check, relative to the track's levels: (appearance, recall)."""
        return self._checked

    def checked(self, cos: float, recall: float) -> None:
        """A check of the tracked box against the init frame: appearance cosine and recall response."""
        if self.calibrating:
            self._early.append((cos, recall))
        self._checked = (cos / self.level(0), recall / self.level(1))

    def update(self, score: float, cues: tuple[float, float, float], area: float) -> float:
        """One frame: the network score, response_cues() and the box area (pixels), with the latest check.
        Returns the smoothed confidence."""
        ambiguity, spread, jump = cues
        size_change = abs(math.log(area / self._prev_area)) if self._prev_area > 0 and area > 0 else 0.0
        self._prev_area = area
        self.features = {
            "score_logit": logit(score),
            "ambiguity": ambiguity,
            "spread": spread,
            "jump": jump,
            "size_change": size_change,
            "appearance": self._checked[0],
            "recall": self._checked[1],
        }
        now = self.model.instant(self.features)
        a = self.model.smoothing
        self.value = now if not math.isfinite(self.value) else a * self.value + (1 - a) * now
        return self.value
