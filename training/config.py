"""Training run configuration: the YAML schema (dataclasses), `base:` files, `key=value` overrides and
`${MLKD_SHARED}`.

A config may start from another: `base: other.yaml` (a path relative to the config's own folder) takes
other.yaml's values, and the config's own values update them, mappings key by key and anything else
(lists included) replaced whole; `key: null` sets a value back to its default. So a variant of a run
says only what it changes. Runs record the merged result (config.yaml in the run folder).
"""

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
    return config_from_dict(apply_overrides(read_config_file(path), overrides or []))


def read_config_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The values of a config file, its `base:` chain merged in (see the module docstring)."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ValueError(f"config base loop: {chain}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        named = f" (named as base by {_seen[-1]})" if _seen else ""
        raise FileNotFoundError(f"config file {path} does not exist{named}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a config file is a YAML mapping, got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    return _merged(read_config_file(path.parent / base, (*_seen, path)), raw)


def _merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if value is None:
            out.pop(key, None)  # back to the schema's default
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out
