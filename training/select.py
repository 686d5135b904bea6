"""Model selection: score every trained student (and the teacher) on a darkened VALIDATION split, pick
MLKD-Track, export it, and write the Table-II-style comparison as Markdown.

Never point this at a test set: choosing the best student on the data you report is the leak the
paper's protocol must avoid. Candidates are exported to ONNX model directories first, so the numbers
(fps included) are those of the deployed ONNX Runtime path.

    python -m mlkd_training.select --runs runs/night_v2 --out runs/select --export runs/mlkd_track

It runs the validation protocol (training/protocol.py: the val part of training/splits/night_v2.yaml,
darkening seeds 1, 2, 3 and the clean frames, bootstrap CIs over sequences).

Runs of one config with different training seeds make each of its students a *recipe* scored by the mean
over the seeds (training/seeds.py): then MLKD-Track is the best recipe by that mean, the shipping rule is
applied to that mean, and the model exported is the recipe's median seed.
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
from mlkd_training.adapter import load_student
from mlkd_training.evaluate import TrackerSpec, evaluate_protocol
from mlkd_training.protocol import comparison_markdown
from mlkd_training.seeds import recipe_markdown, recipe_name, recipe_rows, spread
from mlkd_training.soup import write_soup

log = logging.getLogger(__name__)

CRL_TITLE = {
    "none": "without L_CRL",
    "l2": "L2",
    "spatial": "spatial consistency",
    "threshold": "response threshold",
    "feature": "target-aware features",
}
# What MLKD-Track must show against the stock tracker to replace the embedded default (issue #11).
SHIP_NIGHT_GAIN = 0.03  # mean night success gain, with the 95% CI above 0
SHIP_DAY_LOSS = 0.01  # largest mean loss on the clean frames


@dataclass
class Candidate:
    name: str  # results folder name
    label: str  # row title in the table
    model_dir: Path
    spec: str = ""  # evaluate's tracker kind: "" = ONNX student, "teacher" = DarkLighter + tracker
    mlkd: bool = False  # a mutual-learning student (MLKD-Track is chosen among these when there are any)
    student: bool = False
    recipe: str = ""  # the student's title without its run: runs of one recipe with other seeds share it


def _run_config(run: Path) -> dict:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    if not (run / "students").is_dir():
        raise FileNotFoundError(f"{run} has no students/ folder: did the run finish?")
    return cfg


def student_label(fw: dict, k: int) -> tuple[str, bool]:
    """Table row title of student k of a run's framework config, and whether it was in the room."""
    kind = fw["students"][k]
    room = fw.get("room")
    in_room = fw["mode"] == "ml" and (room is None or k in room)
    if k in (fw.get("adapters") or []):
        label = f"Night-adapter student ({CRL_TITLE[kind]}" + (", in the room)" if in_room else ")")
    elif kind == "feature":
        label = "Target-aware feature student" + (" (in the room)" if in_room else "")
    elif in_room:
        label = f"MLKD student ({CRL_TITLE[kind]})"
    elif kind == "none":
        label = "Student without L_CRL (KD only)"
    else:
        label = f"Student {CRL_TITLE[kind]} without mutual learning"
    return f"{label} [{fw['teacher']} teacher]", in_room


def teacher_labels(teachers: set[str]) -> dict[str, str]:
    """Row titles of the reference rows, saying which of them taught the runs in the table."""
    dl = "DarkLighter + tracker" + (
        " = teacher" if "darklighter" in teachers else " (the paper's teacher, not used here)"
    )
    oracle = "Clean-frame oracle: stock tracker on undarkened frames" + (" = teacher" if "clean" in teachers else "")
    return {"teacher": dl, "base": "Stock tracker (before distillation, no enhancer)", "base_clean": oracle}


def _export(family: str, weights: Path, out: Path, notes: str) -> Path:
    """The ONNX model directory of `weights` at `out` (kept when already exported)."""
    if not (out / "manifest.json").is_file():
        export_model(load_student(family, weights), out, source_checkpoint=weights, notes=notes)
    return out


def room_students(run: Path, cfg: dict) -> list[Path]:
    """The weight files of a run's mutual-learning students."""
    fw = cfg["framework"]
    return [run / "students" / f"student{k}.pth" for k in range(len(fw["students"])) if student_label(fw, k)[1]]


def soup_candidates(name: str, what: str, students: list[Path], cfg: dict, models: Path) -> list[Candidate]:
    """The weight average of `students` (`what` says whose, for the table) and that average halfway back
    to the stock weights; none for fewer than two students."""
    if len(students) < 2:
        return []
    teacher = cfg["framework"]["teacher"]
    soup = write_soup(students, [1.0] * len(students), models / "soups" / f"{name}_soup.pth")
    stock = build_tracker(cfg["family"], cfg["tracker_checkpoint"]).state_dict()  # the keys the network uses
    half = write_soup([soup, stock], [0.5, 0.5], models / "soups" / f"{name}_soup_half.pth")
    rows = (
        (soup, f"{name}_soup", f"Weight average of {what} [{teacher} teacher]"),
        (half, f"{name}_soup_half", f"Average of {what} halfway back to the stock weights [{teacher} teacher]"),
    )
    return [
        Candidate(
            n, label, _export(cfg["family"], w, models / n, f"MLKD candidate {n}: {label}"), mlkd=True, student=True
        )
        for w, n, label in rows
    ]


def collect_candidates(
    runs: list[Path], models: Path, with_teacher: bool = True, soups: bool = False
) -> tuple[list[Candidate], dict, set[str]]:
    """Export the base tracker (with its enhancer: the DarkLighter teacher), every student of every run and,
    with `soups`, the weight averages (`soup_candidates`) of each run's room and of all runs' rooms together."""
    candidates: list[Candidate] = []
    base_cfg: dict | None = None
    teachers: set[str] = set()
    everyone: list[Path] = []  # the room students of all runs, for their common average
    for run in runs:
        cfg = _run_config(run)
        fw = cfg["framework"]
        teachers.add(fw["teacher"])
        tag = f" ({run.name})" if len(runs) > 1 else ""  # one recipe in two runs would give two equal titles
        if base_cfg is None:
            base_cfg = cfg
        elif (cfg["family"], cfg["tracker_checkpoint"]) != (base_cfg["family"], base_cfg["tracker_checkpoint"]):
            raise ValueError(f"{run}: runs compared in one table must share family and teacher tracker")
        for k, crl in enumerate(fw["students"]):
            weights = run / "students" / f"student{k}.pth"
            name = f"{run.name}_s{k}_{crl}"
            recipe, in_room = student_label(fw, k)
            out = _export(cfg["family"], weights, models / name, f"MLKD candidate {name} from {run}")
            candidates.append(Candidate(name, recipe + tag, out, mlkd=in_room, student=True, recipe=recipe))
        if soups:
            room = room_students(run, cfg)
            everyone += room
            whose = f"the room's {len(room)} students{tag}"
            candidates += soup_candidates(run.name, whose, room, cfg, models)
    assert base_cfg is not None
    if soups and len(runs) > 1:
        candidates += soup_candidates(
            "all", f"the {len(everyone)} room students of all runs", everyone, base_cfg, models
        )
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
    labels = teacher_labels(teachers)
    candidates = [
        Candidate("base", labels["base"], base_dir),
        *([Candidate("teacher", labels["teacher"], base_dir, spec="teacher")] if with_teacher else []),
        *candidates,
    ]
    return candidates, base_cfg, teachers


def table_markdown(candidates: list[Candidate], comparison: dict, best: str, oracle_label: str, ships: bool) -> str:
    """Table II: every candidate on the validation protocol, MLKD-Track in bold, the oracle as a reference."""
    labels = {c.name: f"**MLKD-Track** = {c.label}" if c.name == best else c.label for c in candidates}
    table = comparison_markdown(comparison["trackers"], labels, "base", comparison["seeds"])
    base = comparison["trackers"]["base"]
    if "clean" in base:
        mean, low, high = base["clean"]
        table += f"| {oracle_label} | {mean:.3f} [{low:.3f}, {high:.3f}] | - | (same) | - | - |\n"
    verdict = "meets" if ships else "does not meet"
    table += (
        f"\nMLKD-Track {verdict} the rule for the embedded default: night gain >= +{SHIP_NIGHT_GAIN} "
        f"with the CI above 0, and day loss <= {SHIP_DAY_LOSS}.\n"
    )
    return table


def recipe_groups(candidates: list[Candidate]) -> dict[str, list[str]]:
    """Recipe title -> its students' candidate names, for recipes trained in more than one run."""
    groups: dict[str, list[str]] = {}
    for c in candidates:
        if c.recipe:
            groups.setdefault(c.recipe, []).append(c.name)
    return {r: names for r, names in groups.items() if len(names) > 1}


def median_member(candidates: list[Candidate], members: list[str], rows: dict) -> Candidate:
    """The recipe's seed with the median night success (not its luckiest: the rule judged the mean)."""
    ordered = sorted(members, key=lambda n: rows[n]["night"][0])
    name = ordered[(len(ordered) - 1) // 2]
    return next(c for c in candidates if c.name == name)


def meets_default_rule(row: dict) -> bool:
    mean, low, _ = row["night_delta"]
    day = row.get("clean_delta", (float("-inf"),))[0]
    return mean >= SHIP_NIGHT_GAIN and low > 0 and day >= -SHIP_DAY_LOSS


def select(
    runs: list[Path],
    val: Path,
    out: Path,
    seeds: list[int] | None = None,
    export: Path | None = None,
    with_teacher: bool = True,
    soups: bool = False,
) -> dict:
    seeds = seeds or [1, 2, 3]
    out.mkdir(parents=True, exist_ok=True)
    candidates, base_cfg, teachers = collect_candidates(runs, out / "models", with_teacher, soups)
    specs = [TrackerSpec(c.spec or c.name, str(c.model_dir)) for c in candidates]
    comparison = evaluate_protocol(val, specs, out / "eval", seeds, night_only=("teacher",))
    rows = comparison["trackers"]
    pool = [c for c in candidates if c.mlkd] or [c for c in candidates if c.student]
    best = max(pool, key=lambda c: rows[c.spec or c.name]["night"][0])
    ships = meets_default_rule(rows[best.name])
    recipes = recipe_groups(candidates)
    seed_means: dict[str, dict] = {}
    if recipes:  # several training seeds: recipes are judged by their mean, and so is the shipping rule
        seed_means = recipe_rows(out / "eval", seeds, recipes, "base")
        mlkd_recipes = [r for r in recipes if any(c.mlkd for c in candidates if c.recipe == r)] or list(recipes)
        top = max(mlkd_recipes, key=lambda r: seed_means[recipe_name(r)]["night"][0])
        ships = meets_default_rule(seed_means[recipe_name(top)])
        best = median_member(candidates, recipes[top], rows)
    table = table_markdown(candidates, comparison, best.name, teacher_labels(teachers)["base_clean"], ships)
    if recipes:
        per_seed = {
            recipe_name(r): {"night": spread(rows, m, "night_delta"), "day": spread(rows, m, "clean_delta")}
            for r, m in recipes.items()
        }
        labels = {recipe_name(r): (f"**{r}**" if r == top else r) + f" ({len(m)} seeds)" for r, m in recipes.items()}
        table = (
            f"Seed means (MLKD-Track = the best recipe by mean night success; the model shipped would be its "
            f"median seed, {best.name}). Paired against the stock tracker, 95% bootstrap CI over sequences of "
            f"the recipe's per-sequence mean over seeds.\n\n"
            + recipe_markdown(seed_means, per_seed, labels)
            + "\nEvery student of every run:\n\n"
            + table
        )
    (out / "table.md").write_text(table)
    result = {
        "mlkd_track": best.name,
        "label": best.label,
        "model_dir": str(best.model_dir),
        "validation": str(val),
        "seeds": seeds,
        "meets_default_rule": ships,
        "scores": rows,
        "labels": {c.name: c.label for c in candidates},
        "recipes": {r: {"members": m, **seed_means[recipe_name(r)]} for r, m in recipes.items()},
    }
    if export is not None:
        weights = best.model_dir / "tracker.pth"
        night = rows[best.name]["night"]
        export_model(
            load_student(base_cfg["family"], weights),
            export,
            source_checkpoint=weights,
            enhancer_checkpoint=base_cfg["enhancer_checkpoint"],
            notes=f"MLKD-Track: {best.label}, selected on {val} seeds {seeds} (night success {night[0]:.3f})",
        )
        result["exported"] = str(export)
    (out / "selection.json").write_text(json.dumps(result, indent=1))
    log.info("MLKD-Track = %s (%s); table in %s", best.name, best.label, out / "table.md")
    return result


def main(argv: list[str] | None = None) -> int:
    """`python -m mlkd_training.select`, the same as `mlkd select` (training/commands/select.py)."""
    from mlkd_training.commands.select import add_arguments, run

    parser = argparse.ArgumentParser(prog="python -m mlkd_training.select", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
