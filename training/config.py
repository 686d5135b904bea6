"""Training run configuration: the YAML schema (dataclasses), `key=value` overrides and `${MLKD_SHARED}`."""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlkd_model.datasets import shared_dir
from mlkd_training.data import DataConfig
from mlkd_training.framework import FrameworkConfig, LossWeights


@dataclass
class TrainConfig:
    epochs: int = 20
    batch: int = 64  # global batch, split evenly over the processes
    lr: float = 0.005
    lr_end: float = 0.0005  # log-linear decay from lr to lr_end after warm-up (pysot's "log" schedule)
    warmup_epochs: float = 0.0
    warmup_factor: float = 0.2  # warm-up starts at lr * warmup_factor
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float = 10.0  # max gradient norm of each student (pysot's value); 0 = off
    calibration_batches: int = 8  # batches that measure the loss sizes for framework.normalize
    checkpoint_every: int = 200  # steps; a checkpoint is also written at every epoch end
    log_every: int = 10
    amp: bool = True  # mixed precision, only where a GPU is used
    sync_bn: bool = False  # SyncBatchNorm across GPUs (CUDA only)


@dataclass
class RunConfig:
    family: str
    data: DataConfig
    framework: FrameworkConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    tracker_checkpoint: str | None = None  # the teacher's tracker weights; students start from them
    enhancer_checkpoint: str | None = None  # DarkLighter, for teacher "darklighter"
    seed: int = 0
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _expand(value: Any) -> Any:
    if isinstance(value, str):
        return os.path.expandvars(value.replace("${MLKD_SHARED}", shared_dir()))
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    return value


def _make(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    return cls(**values)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`section.key=value` strings (value parsed as YAML) -> a modified copy of raw."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(text)
    return raw


def config_from_dict(raw: dict[str, Any]) -> RunConfig:
    raw = _expand(copy.deepcopy(raw))
    family = raw.get("family")
    fw = dict(raw.pop("framework", {}) or {})
    fw["weights"] = _make(LossWeights, fw.get("weights", {}) or {}, "framework.weights")
    fw.setdefault("family", family)
    if fw["family"] != family:
        raise ValueError(f"framework.family {fw['family']!r} differs from family {family!r}")
    raw["framework"] = _make(FrameworkConfig, fw, "framework")
    raw["data"] = _make(DataConfig, raw.get("data", {}) or {}, "data")
    raw["train"] = _make(TrainConfig, raw.get("train", {}) or {}, "train")
    if raw["framework"].teacher == "clean":
        raw["data"].clean = True
    return _make(RunConfig, raw, "config")


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    return config_from_dict(apply_overrides(raw, overrides or []))
