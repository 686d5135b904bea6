"""The validation protocol: several darkening seeds, darkened frames cached on disk, and statistics that
say how sure a comparison is (bootstrap confidence intervals over sequences).

A model's night score is its success AUC averaged over the darkening seeds; its day score is the AUC on
the clean frames (forgetting shows there). Confidence intervals resample *sequences* (the unit that
varies most: one failure sequence moves the mean), each sequence's value being its mean over seeds; a
difference between two trackers is bootstrapped paired, on the same resampled sequences.

Darkened frames are cached as the simulation's own JPEG bytes, under
`<cache>/night-v<TRANSFORM_VERSION>/seed<S>/<sequence>-<frames>-<folder hash>/<index>.jpg` ($MLKD_CACHE,
else ~/.cache/mlkd), so reading one back gives
exactly the frame `darken` returns, and a model's validation costs the tracking alone.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mlkd_model.datasets import Sequence, cache_root
from mlkd_training.night import TRANSFORM_VERSION, darken, encode_jpeg, frame_rng, light_field, sequence_params

log = logging.getLogger(__name__)

BOOTSTRAP_SAMPLES = 10000


def night_cache_dir(seq: Sequence, seed: int, root: Path | None = None) -> Path:
    """Keyed by transform version, seed, sequence name, length and where its frames live."""
    where = zlib.crc32(str(Path(seq.frames[0]).resolve().parent).encode()) if len(seq) else 0
    key = f"{seq.name}-{len(seq)}-{where:08x}"
    return (root or cache_root()) / f"night-v{TRANSFORM_VERSION}" / f"seed{seed}" / key


def cached_night_frames(seq: Sequence, seed: int, root: Path | None = None) -> Callable[[int], np.ndarray]:
    """Frame i of seq darkened with `seed`, from the cache (filled for the whole sequence on first use)."""
    folder = night_cache_dir(seq, seed, root)
    done = folder / "COMPLETE"
    if not done.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        params = sequence_params(seed, seq.name)
        lights: dict[tuple[int, int], np.ndarray] = {}  # one light field per frame size, not per frame
        for i in tqdm(range(len(seq)), desc=f"darken {seq.name} seed {seed}", unit="frame", leave=False):
            image = seq.image(i)
            shape = image.shape[:2]
            if shape not in lights:
                lights[shape] = light_field(shape[0], shape[1], params)
            dark = darken(image, params, frame_rng(seed, seq.name, i), compress=False, light=lights[shape])
            tmp = folder / f"{i:06d}.part"
            tmp.write_bytes(encode_jpeg(dark, params).tobytes())
            os.replace(tmp, folder / f"{i:06d}.jpg")
        done.write_text(f"{len(seq)}\n")

    def frame(i: int) -> np.ndarray:
        image = cv2.imread(str(folder / f"{i:06d}.jpg"), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cached night frame {folder / f'{i:06d}.jpg'} is unreadable: delete {folder} to rebuild")
        return image

    return frame


def bootstrap_mean_ci(
    values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap of the mean of `values` (one value per sequence)."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"expected one value per sequence, got shape {values.shape}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (samples, len(values)))].mean(1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)


def per_sequence_auc(summaries: list[dict], tracker: str) -> dict[str, float]:
    """Mean success AUC of each sequence over several evaluate() summaries (one per darkening seed)."""
    per: dict[str, list[float]] = {}
    for summary in summaries:
        for name, r in summary["trackers"][tracker]["sequences"].items():
            per.setdefault(name, []).append(r["success_auc"])
    return {name: float(np.mean(v)) for name, v in sorted(per.items())}


def compare(night: list[dict], clean: dict | None, trackers: list[str], baseline: str | None = None) -> dict[str, dict]:
    """Per tracker: night and clean success (mean, 95% CI over sequences) and the paired difference to baseline."""
    baseline = baseline or trackers[0]
    out: dict[str, dict] = {}
    base_night = per_sequence_auc(night, baseline)
    base_clean = per_sequence_auc([clean], baseline) if clean else None
    for name in trackers:
        row: dict[str, object] = {}
        seq_night = per_sequence_auc(night, name)
        names = sorted(seq_night)
        v = np.array([seq_night[n] for n in names])
        row["night"] = bootstrap_mean_ci(v)
        row["night_per_seed"] = [s["trackers"][name]["success_auc"] for s in night]
        row["night_delta"] = bootstrap_mean_ci(v - np.array([base_night[n] for n in names]))
        if clean is not None and name in clean["trackers"] and base_clean is not None:
            seq_clean = per_sequence_auc([clean], name)
            c = np.array([seq_clean[n] for n in names])
            row["clean"] = bootstrap_mean_ci(c)
            row["clean_delta"] = bootstrap_mean_ci(c - np.array([base_clean[n] for n in names]))
        row["fps"] = night[0]["trackers"][name].get("fps")
        out[name] = row
    return out


def _ci(t: tuple[float, float, float], signed: bool = False) -> str:
    mean, low, high = t
    f = "+.3f" if signed else ".3f"
    return f"{mean:{f}} [{low:{f}}, {high:{f}}]"


def comparison_markdown(rows: dict[str, dict], labels: dict[str, str], baseline: str, seeds: list[int]) -> str:
    """The comparison as a Markdown table: means with 95% bootstrap CIs over sequences (baseline: a key of rows)."""
    lines = [
        f"Night = success AUC averaged over darkening seeds {', '.join(map(str, seeds))}; day = the clean frames. "
        f"[95% bootstrap CI over sequences]; differences are paired against {labels.get(baseline, baseline)}.",
        "",
        "| Tracker | Night success | vs baseline | Day success | vs baseline | fps |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        fps = f"{r['fps']:.0f}" if r.get("fps") else "-"
        day = _ci(r["clean"]) if "clean" in r else "-"
        day_d = _ci(r["clean_delta"], True) if "clean_delta" in r and name != baseline else "-"
        night_d = _ci(r["night_delta"], True) if name != baseline else "-"
        lines.append(f"| {labels.get(name, name)} | {_ci(r['night'])} | {night_d} | {day} | {day_d} | {fps} |")
    return "\n".join(lines) + "\n"
