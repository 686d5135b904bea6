"""Plots and tables from an evaluation folder (ours, or any toolkit's results in the pysot layout).

Writes into the folder: success_plot.png, precision_plot.png, norm_precision_plot.png (curves with the
score in the legend, best first, as the MLKD paper's Fig. 4), comparison.md (tracker, success, normalized
precision, precision, fps) and attributes.md (per-attribute success / precision, as the paper's Table I).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from mlkd_model import metrics as M
from mlkd_model.datasets import DatasetError, load_dataset
from mlkd_training.evaluate import score_results, sequence_attributes

log = logging.getLogger(__name__)

ATTRIBUTE_TITLES = {
    "SV": "Scale variation",
    "ARC": "Aspect ratio change",
    "LR": "Low resolution",
    "FM": "Fast motion",
    "FOC": "Full occlusion",
    "POC": "Partial occlusion",
    "OV": "Out-of-view",
    "BC": "Background clutter",
    "IV": "Illumination variation",
    "VC": "Viewpoint change",
    "CM": "Camera motion",
    "SOB": "Similar object",
}


def load_scores(folder: Path, data: Path | None = None) -> dict:
    """Scores of every tracker in folder/results/<dataset>/, re-computed from the result files.

    data: the dataset's path; defaults to the one summary.json records. Without either, summary.json's own
    numbers are used as they are.
    """
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    data = data or (Path(summary["data"]) if summary.get("data") else None)
    if data is None or not data.exists():
        if summary.get("trackers"):
            log.info("dataset not found (%s): using the scores in %s", data, summary_path)
            return summary
        raise DatasetError(f"{folder} has no summary.json with a reachable dataset: pass the dataset with --data DATA")
    results_root = folder / "results"
    datasets = sorted(d for d in results_root.iterdir() if d.is_dir()) if results_root.is_dir() else []
    if not datasets:
        raise DatasetError(f"no result folders under {results_root} (expected results/<dataset>/<tracker>/<seq>.txt)")
    chosen = next((d for d in datasets if d.name == summary.get("dataset")), None)
    if chosen is None:
        if len(datasets) > 1:
            names = ", ".join(d.name for d in datasets)
            raise DatasetError(f"{results_root} holds several datasets ({names}); report them from separate folders")
        chosen = datasets[0]
    sequences = load_dataset(data)
    trackers = score_results(chosen, sequences)
    for name, scores in trackers.items():  # keep a recorded speed where the run left no times/ files
        if scores["fps"] is None:
            scores["fps"] = summary.get("trackers", {}).get(name, {}).get("fps")
    return {
        "dataset": chosen.name,
        "data": str(data),
        "sequences": len(sequences),
        "attribute_source": sequence_attributes(sequences)[1],
        "trackers": trackers,
    }


def _ordered(trackers: dict, key: str) -> list[str]:
    return sorted(trackers, key=lambda n: -np.nan_to_num(trackers[n][key], nan=-1.0))


def plot_curves(scores: dict, out: Path) -> list[Path]:
    """Success, precision and normalized precision plots (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot as plt

    trackers = scores["trackers"]
    plots = [
        ("success", "success_auc", M.SUCCESS_THRESHOLDS, "Overlap threshold", "Success rate", "Success plots of OPE"),
        (
            "precision",
            "precision_20",
            M.PRECISION_THRESHOLDS,
            "Location error threshold (px)",
            "Precision",
            "Precision plots of OPE",
        ),
        (
            "norm_precision",
            "norm_precision_20",
            M.NORM_PRECISION_THRESHOLDS,
            "Normalized location error threshold",
            "Normalized precision",
            "Normalized precision plots of OPE",
        ),
    ]
    styles = ["-", "--", "-.", ":"]
    written = []
    for curve, key, x, xlabel, ylabel, title in plots:
        fig, ax = plt.subplots(figsize=(5.2, 4.2), dpi=120)
        for k, name in enumerate(_ordered(trackers, key)):
            label = f"[{trackers[name][key]:.3f}] {name}"
            ax.plot(x, trackers[name]["curves"][curve], styles[(k // 10) % 4], color=f"C{k % 10}", lw=2, label=label)
        if curve == "precision":
            ax.axvline(20, color="0.6", lw=0.8, ls=":")
        elif curve == "norm_precision":
            ax.axvline(0.2, color="0.6", lw=0.8, ls=":")
        ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(x[0], x[-1]), ylim=(0, 1.02))
        ax.set_title(f"{title} on {scores['dataset']}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left" if curve == "success" else "lower right", fontsize=8)
        fig.tight_layout()
        path = out / f"{curve}_plot.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def comparison_table(scores: dict) -> str:
    trackers = scores["trackers"]
    lines = [
        f"OPE on `{scores['dataset']}` ({scores.get('sequences', '?')} sequences), best success first.",
        "",
        "| tracker | success (AUC) | norm. precision@0.2 | precision@20px | fps | frames scored | frames excluded |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in _ordered(trackers, "success_auc"):
        t = trackers[name]
        lines.append(
            f"| {name} | {_fmt(t['success_auc'])} | {_fmt(t['norm_precision_20'])} | {_fmt(t['precision_20'])} | "
            f"{_fmt(t['fps'], '.1f')} | {t['frames']} | {t['excluded_frames']} |"
        )
    missing = {n: t["missing_sequences"] for n, t in trackers.items() if t.get("missing_sequences")}
    for name, seqs in missing.items():
        lines.append(f"\n{name}: no results for {', '.join(seqs)} (scored on the others).")
    return "\n".join(lines) + "\n"


def attribute_table(scores: dict) -> str:
    trackers = scores["trackers"]
    names = _ordered(trackers, "success_auc")
    attrs = sorted({a for t in trackers.values() for a in t["attributes"]})
    head = f"Per-attribute success (AUC) / precision@20px on `{scores['dataset']}`; attributes from "
    head += f"{scores.get('attribute_source', 'the dataset')}. Best per row in bold."
    if not attrs:
        return head + "\n\nThe dataset provides no attributes.\n"
    lines = [head, "", "| attribute | sequences | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for a in attrs:
        cells = [trackers[n]["attributes"].get(a) for n in names]
        best_auc = max((c["success_auc"] for c in cells if c), default=None)
        best_prec = max((c["precision_20"] for c in cells if c), default=None)
        count = next((c["sequences"] for c in cells if c), 0)
        row = []
        for c in cells:
            if not c:
                row.append("-")
                continue
            auc, prec = _fmt(c["success_auc"]), _fmt(c["precision_20"])
            auc = f"**{auc}**" if c["success_auc"] == best_auc and len(names) > 1 else auc
            prec = f"**{prec}**" if c["precision_20"] == best_prec and len(names) > 1 else prec
            row.append(f"{auc} / {prec}")
        title = ATTRIBUTE_TITLES.get(a, a)
        label = f"{title} ({a})" if title != a else a
        lines.append(f"| {label} | {count} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def make_report(folder: Path, data: Path | None = None) -> dict[str, Path]:
    """Write plots and tables into folder; returns {what: path}."""
    scores = load_scores(folder, data)
    if not scores["trackers"]:
        raise DatasetError(f"no trackers to report in {folder}")
    written = {p.stem: p for p in plot_curves(scores, folder)}
    for name, text in (("comparison", comparison_table(scores)), ("attributes", attribute_table(scores))):
        path = folder / f"{name}.md"
        path.write_text(text)
        written[name] = path
    return written
