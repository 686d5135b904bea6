"""Recipes judged by the mean over training seeds: a recipe is one student of one config, trained with
several seeds (one run per seed). Its score on a sequence is the mean of its seeds' scores there, so the
bootstrap over sequences and the paired difference to the stock tracker work on the recipe as on one
tracker; the spread is each seed's own mean difference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mlkd_training.protocol import compare

RECIPE_PREFIX = "recipe:"


def recipe_name(recipe: str) -> str:
    return RECIPE_PREFIX + recipe


def add_recipe_means(summaries: list[dict], groups: dict[str, list[str]]) -> None:
    """Add to each evaluate() summary a tracker `recipe:<recipe>` whose per-sequence success is the mean over
    the recipe's members (the students of one recipe in several runs); recipes missing a member are left out."""
    for summary in summaries:
        trackers = summary["trackers"]
        for recipe, members in groups.items():
            if not all(m in trackers for m in members):
                continue
            names = trackers[members[0]]["sequences"].keys()
            sequences = {
                n: {"success_auc": float(np.mean([trackers[m]["sequences"][n]["success_auc"] for m in members]))}
                for n in names
            }
            trackers[recipe_name(recipe)] = {
                "sequences": sequences,
                "success_auc": float(np.mean([trackers[m]["success_auc"] for m in members])),
                "fps": float(np.mean([trackers[m].get("fps") or 0.0 for m in members])),
            }


def recipe_rows(eval_dir: Path, seeds: list[int], groups: dict[str, list[str]], baseline: str) -> dict[str, dict]:
    """compare() rows of every recipe (mean over its members), from the summaries evaluate_protocol wrote."""
    night = [json.loads((eval_dir / f"dark{s}" / "summary.json").read_text()) for s in seeds]
    clean_file = eval_dir / "clean" / "summary.json"
    clean = json.loads(clean_file.read_text()) if clean_file.is_file() else None
    add_recipe_means([*night, *([clean] if clean else [])], groups)
    names = [recipe_name(r) for r in groups if recipe_name(r) in night[0]["trackers"]]
    rows = compare(night, clean, [baseline, *names], baseline)
    del rows[baseline]
    return rows


def spread(rows: dict[str, dict], members: list[str], key: str) -> list[float]:
    """Each member's mean difference to the baseline (`key`: night_delta or clean_delta)."""
    return [rows[m][key][0] for m in members if key in rows[m]]


def recipe_markdown(recipes: dict[str, dict], per_seed: dict[str, dict[str, list[float]]], labels: dict) -> str:
    """Table II's seed-mean rows: the recipe's mean with its CI over sequences and each seed's own gain."""

    def ci(t: tuple[float, float, float], signed: bool = False) -> str:
        f = "+.3f" if signed else ".3f"
        return f"{t[0]:{f}} [{t[1]:{f}}, {t[2]:{f}}]"

    def seeds(values: list[float]) -> str:
        if not values:
            return "-"
        sd = f" (sd {np.std(values, ddof=1):.3f})" if len(values) > 1 else ""
        return " / ".join(f"{v:+.3f}" for v in values) + sd

    lines = [
        "| Recipe (mean over seeds) | Night success | vs stock | per seed | Day success | vs stock | per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for recipe, r in recipes.items():
        day = ci(r["clean"]) if "clean" in r else "-"
        day_d = ci(r["clean_delta"], True) if "clean_delta" in r else "-"
        spreads = per_seed[recipe]
        lines.append(
            f"| {labels.get(recipe, recipe)} | {ci(r['night'])} | {ci(r['night_delta'], True)} | "
            f"{seeds(spreads['night'])} | {day} | {day_d} | {seeds(spreads['day'])} |"
        )
    return "\n".join(lines) + "\n"


def _only(summary: dict, names: set[str]) -> dict:
    """A summary restricted to some sequences (a split's validation part inside a larger one)."""
    trackers = {
        t: {**r, "sequences": {n: v for n, v in r["sequences"].items() if n in names}}
        for t, r in summary["trackers"].items()
    }
    return {**summary, "trackers": trackers}


def main(argv: list[str] | None = None) -> int:
    """`python -m mlkd_training.seeds SELECT_DIR [--subset SPLIT.yaml#val]`: the seed-mean rows of a finished
    `mlkd select`, optionally on the sequences of another split's part (e.g. night_v2's six inside night_v3's
    ten, to compare confidence-interval widths on the same runs)."""
    import argparse
    import sys

    import yaml

    parser = argparse.ArgumentParser(prog="python -m mlkd_training.seeds", description=main.__doc__)
    parser.add_argument("select_dir", type=Path)
    parser.add_argument("--subset", default=None, help="SPLIT.yaml#part: score only its sequences")
    args = parser.parse_args(argv)
    selection = json.loads((args.select_dir / "selection.json").read_text())
    groups = {r: v["members"] for r, v in selection.get("recipes", {}).items()}
    seeds = selection["seeds"]
    eval_dir = args.select_dir / "eval"
    night = [json.loads((eval_dir / f"dark{s}" / "summary.json").read_text()) for s in seeds]
    clean = json.loads((eval_dir / "clean" / "summary.json").read_text())
    if args.subset:
        path, _, part = args.subset.partition("#")
        names = {Path(p).name for p in yaml.safe_load(Path(path).read_text())[part]}
        night, clean = [_only(s, names) for s in night], _only(clean, names)
    add_recipe_means([*night, clean], groups)
    names = ["base", *(recipe_name(r) for r in groups), *(m for ms in groups.values() for m in ms)]
    rows = compare(night, clean, names, "base")
    for name in names:
        r = rows[name]
        n, d = r["night_delta"], r.get("clean_delta", (float("nan"),) * 3)
        sys.stdout.write(
            f"{name}: night {r['night'][0]:.3f} [{r['night'][1]:.3f}, {r['night'][2]:.3f}] "
            f"delta {n[0]:+.3f} [{n[1]:+.3f}, {n[2]:+.3f}] (width {n[2] - n[1]:.3f}); day delta {d[0]:+.3f}\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
