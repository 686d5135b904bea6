"""A model directory = ONNX branches + `manifest.json` that says what they are (no torch needed).

manifest.json: format version, family, tracker parameters, the files with their sha256, the
input/output names and shapes, and where the weights came from. An INT8 directory (`mlkd quantize`)
adds `quantization`: format, activation and weight types, `reduce_range` (7-bit weights) and
`worst_pair_sum` (<= 32767: CPUs without VNNI compute the same as those with it), and its calibration.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlkd_model.errors import UserError
from mlkd_model.params import TrackerParams

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class ModelDirError(UserError, RuntimeError):
    """A model directory that is missing, incomplete or altered."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelDir:
    path: Path
    params: TrackerParams
    files: dict[str, str]  # role -> file name: template, search, teacher_template, teacher_search, weights, enhancer
    info: dict[str, Any]

    def file(self, role: str) -> Path:
        if role not in self.files:
            hint = " (export with an enhancer checkpoint to get the teacher)" if role.startswith("teacher") else ""
            raise ModelDirError(f"model directory {self.path} has no {role!r} file{hint}; it has {sorted(self.files)}")
        return self.path / self.files[role]

    def has(self, role: str) -> bool:
        return role in self.files


def read_model_dir(path: str | Path, verify: bool = True) -> ModelDir:
    """Read and check a model directory; `verify` compares every file with its recorded sha256."""
    path = Path(path)
    manifest = path / MANIFEST
    if not path.is_dir():
        raise ModelDirError(f"model directory {path} does not exist")
    if not manifest.is_file():
        raise ModelDirError(f"{path} is not a model directory: no {MANIFEST} (make one with `mlkd export`)")
    try:
        data = json.loads(manifest.read_text())
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelDirError(f"{manifest}: format_version {data.get('format_version')!r}, expected {FORMAT_VERSION}")
        params = TrackerParams.from_dict(data["params"])
        files = {role: entry["name"] for role, entry in data["files"].items()}
        hashes = {role: entry["sha256"] for role, entry in data["files"].items()}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ModelDirError(f"{manifest} is malformed: {exc}") from exc
    for role, name in files.items():
        f = path / name
        if not f.is_file():
            raise ModelDirError(f"model directory {path}: {role} file {name} is missing")
        if verify and sha256(f) != hashes[role]:
            raise ModelDirError(
                f"model directory {path}: {name} does not match its sha256 in {MANIFEST} (altered or corrupt)"
            )
    return ModelDir(path, params, files, data)


def write_manifest(path: Path, params: TrackerParams, files: dict[str, str], info: dict[str, Any]) -> Path:
    entries = {role: {"name": name, "sha256": sha256(path / name)} for role, name in files.items()}
    data = {
        "format_version": FORMAT_VERSION,
        "family": params.family,
        "params": params.to_dict(),
        "files": entries,
        **info,
    }
    out = path / MANIFEST
    out.write_text(json.dumps(data, indent=2) + "\n")
    return out
