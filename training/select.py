"""Model selection: score every trained student (and the teacher) on a darkened VALIDATION split, pick
MLKD-Track, export it, and write the Table-II-style comparison as Markdown.

Never point this at a test set: choosing the best student on the data you report is the leak the
paper's protocol must avoid. Candidates are exported to ONNX model directories first, so the numbers
(fps included) are those of the deployed ONNX Runtime path.

    python -m mlkd_training.select --runs runs/kd runs/ml --val ${MLKD_SHARED}/data/sequences/val \
        --out runs/select --export runs/mlkd_track
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlkd_model.export import export_model
from mlkd_model.nets.build import build_tracker
from mlkd_training.evaluate import TrackerSpec, evaluate

log = logging.getLogger(__name__)

CRL_TITLE = {"none": "without L_CRL", "l2": "L2", "spatial": "spatial consistency", "threshold": "response threshold"}


@dataclass
class Candidate:
    name: str  # results folder name
    label: str  # row title in the table
    model_dir: Path
    spec: str = ""  # evaluate's tracker kind: "" = ONNX student, "teacher" = DarkLighter + tracker
    mlkd: bool = False  # a mutual-learning student (MLKD-Track is chosen among these when there are any)
    oracle: bool = False  # clean-frame tracker: a reference that sees undarkened frames
    student: bool = False


def _run_config(run: Path) -> dict:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    if not (run / "students").is_dir():
        raise FileNotFoundError(f"{run} has no students/ folder: did the run finish?")
    return cfg


def collect_candidates(runs: list[Path], models: Path) -> tuple[list[Candidate], dict]:
    """Export the base tracker (with its enhancer: the teacher) and every student of every run."""
    candidates: list[Candidate] = []
    base_cfg: dict | None = None
    for run in runs:
        cfg = _run_config(run)
        fw = cfg["framework"]
        if base_cfg is None:
            base_cfg = cfg
        elif (cfg["family"], cfg["tracker_checkpoint"]) != (base_cfg["family"], base_cfg["tracker_checkpoint"]):
            raise ValueError(f"{run}: runs compared in one table must share family and teacher tracker")
        for k, crl in enumerate(fw["students"]):
            weights = run / "students" / f"student{k}.pth"
            name = f"{run.name}_s{k}_{crl}"
            if fw["mode"] == "ml":
                label = f"MLKD student {k + 1} ({CRL_TITLE[crl]})"
            elif crl == "none":
                label = "Student without L_CRL (KD only)"
            else:
                label = f"Student {CRL_TITLE[crl]} without mutual learning"
            label += f" [{fw['teacher']} teacher]"
            out = models / name
            if not (out / "manifest.json").is_file():
                export_model(
                    build_tracker(cfg["family"], weights),
                    out,
                    source_checkpoint=weights,
                    notes=f"MLKD candidate {name} from {run}",
                )
            candidates.append(Candidate(name, label, out, mlkd=fw["mode"] == "ml", student=True))
    assert base_cfg is not None
    base_dir = models / "base"
    if not (base_dir / "manifest.json").is_file():
        ckpt = base_cfg["tracker_checkpoint"]
        export_model(
            build_tracker(base_cfg["family"], ckpt),
            base_dir,
            source_checkpoint=ckpt,
            enhancer_checkpoint=base_cfg["enhancer_checkpoint"],
            notes="teacher's tracker before MLKD",
        )
    candidates = [
        Candidate("teacher", "Teacher: DarkLighter + tracker", base_dir, spec="teacher"),
        Candidate("base", "Tracker before distillation (no enhancer)", base_dir),
        Candidate("base_clean", "Tracker on clean frames (oracle, not a night result)", base_dir, oracle=True),
        *candidates,
    ]
    return candidates, base_cfg


def _row(label: str, r: dict) -> str:
    fps = f"{r['fps']:.1f}" if r.get("fps") else "-"
    return f"| {label} | {r['success_auc']:.3f} | {r['norm_precision_20']:.3f} | {r['precision_20']:.3f} | {fps} |"


def table_markdown(candidates: list[Candidate], scores: dict[str, dict], best: str, dataset: str) -> str:
    lines = [
        f"Validation: `{dataset}` (darkened). Success = AUC of the success plot, N.Prec = normalized precision at 0.2,",
        "Prec = precision at 20 px, fps = ONNX Runtime on this machine's CPU (shared, indicative only).",
        "",
        "| Tracker | Success | N.Prec | Prec | fps |",
        "|---|---|---|---|---|",
    ]
    for c in candidates:
        label = f"**MLKD-Track** = {c.label}" if c.name == best else c.label
        lines.append(_row(label, scores[c.name]))
    return "\n".join(lines) + "\n"


def select(runs: list[Path], val: Path, out: Path, darken_seed: int = 1, export: Path | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    candidates, base_cfg = collect_candidates(runs, out / "models")
    night = [c for c in candidates if not c.oracle]
    specs = [TrackerSpec(c.spec or c.name, str(c.model_dir)) for c in night]
    summary = evaluate(val, specs, out / "eval", darken_seed=darken_seed)
    scores = {c.name: summary["trackers"][c.spec or c.name] for c in night}
    clean = evaluate(val, [TrackerSpec("base_clean", str(out / "models" / "base"))], out / "eval_clean")
    scores["base_clean"] = clean["trackers"]["base_clean"]
    pool = [c for c in candidates if c.mlkd] or [c for c in candidates if c.student]
    best = max(pool, key=lambda c: (scores[c.name]["success_auc"], scores[c.name]["precision_20"]))
    table = table_markdown(candidates, scores, best.name, summary["dataset"])
    (out / "table.md").write_text(table)
    result = {
        "mlkd_track": best.name,
        "model_dir": str(best.model_dir),
        "validation": str(val),
        "darken_seed": darken_seed,
        "scores": {
            c.name: {k: scores[c.name][k] for k in ("success_auc", "norm_precision_20", "precision_20", "fps")}
            for c in candidates
        },
        "labels": {c.name: c.label for c in candidates},
    }
    if export is not None:
        weights = best.model_dir / "tracker.pth"
        export_model(
            build_tracker(base_cfg["family"], weights),
            export,
            source_checkpoint=weights,
            notes=f"MLKD-Track: {best.label}, selected on {summary['dataset']} (success "
            f"{scores[best.name]['success_auc']:.3f})",
        )
        result["exported"] = str(export)
    (out / "selection.json").write_text(json.dumps(result, indent=1))
    log.info("MLKD-Track = %s (%s); table in %s", best.name, best.label, out / "table.md")
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="finished training run directories")
    parser.add_argument("--val", type=Path, required=True, help="validation dataset folder (never a test set)")
    parser.add_argument("--darken-seed", type=int, default=1, help="night simulation seed for the validation frames")
    parser.add_argument("--out", type=Path, required=True, help="output: models/, eval/, table.md, selection.json")
    parser.add_argument("--export", type=Path, default=None, help="export MLKD-Track to this model directory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlkd_training.select", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = select(args.runs, args.val, args.out, args.darken_seed, args.export)
    sys.stdout.write((args.out / "table.md").read_text())
    return 0 if result else 1


if __name__ == "__main__":
    sys.exit(main())
