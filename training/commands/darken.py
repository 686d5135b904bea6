"""`mlkd darken SRC DST --seed N`: write a night-simulated copy of a sequence folder or a dataset.

Darken every frame of SRC (one sequence, or any dataset layout `mlkd eval` reads) into DST in OTB layout
(DST/<seq>/img/*.jpg + groundtruth_rect.txt), copying the ground truth. The frames equal what
`mlkd eval --darken SEED` feeds the trackers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mlkd_model.datasets import (
    GT_NAMES,
    DatasetError,
    Sequence,
    load_dataset,
    read_boxes,
)
from mlkd_training.night import darken, frame_rng, sequence_params

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", type=Path, help="sequence folder or dataset folder")
    p.add_argument("dst", type=Path, help="output folder (the sequence itself when SRC is one sequence)")
    p.add_argument("--seed", type=int, required=True, help="night simulation seed")


def _source_gt(seq: Sequence) -> Path | None:
    """The sequence's own ground-truth file when it is OTB style and reads back to the same boxes."""
    for folder in (seq.frames[0].parent, seq.frames[0].parent.parent):
        for name in GT_NAMES:
            path = folder / name
            if path.is_file() and np.array_equal(read_boxes(path), seq.boxes, equal_nan=True):
                return path
    return None


def write_dark_sequence(seq: Sequence, dst: Path, seed: int) -> None:
    """Darken one sequence into dst/img/ (JPEG at the sequence's drawn quality, encoded once)."""
    params = sequence_params(seed, seq.name)
    (dst / "img").mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(len(seq)), desc=seq.name, unit="frame", leave=False):
        out = darken(seq.image(i), params, frame_rng(seed, seq.name, i), compress=False)
        path = dst / "img" / f"{i + 1:06d}.jpg"
        if not cv2.imwrite(str(path), out, [cv2.IMWRITE_JPEG_QUALITY, int(params.jpeg_quality)]):
            raise OSError(f"cannot write {path}")
    source = _source_gt(seq)
    if source is not None:
        shutil.copyfile(source, dst / "groundtruth_rect.txt")  # verbatim: keeps polygons and number formatting
    else:
        lines = (",".join(format(v, ".10g") for v in row) for row in seq.boxes)
        (dst / "groundtruth_rect.txt").write_text("".join(f"{line}\n" for line in lines))
    (dst / "night_params.json").write_text(
        json.dumps({"seed": seed, "sequence": seq.name, **dataclasses.asdict(params)}, indent=1)
    )


def run(args: argparse.Namespace) -> int:
    try:
        sequences = load_dataset(args.src)
    except DatasetError as exc:
        log.error("%s", exc)
        return 1
    if args.dst.resolve() == args.src.resolve():
        log.error("DST must differ from SRC")
        return 2
    single = any((args.src / n).is_file() for n in GT_NAMES)
    for seq in sequences:
        target = args.dst if single else args.dst / seq.name
        write_dark_sequence(seq, target, args.seed)
        print(f"{seq.name}: {len(seq)} frames -> {target}")
    return 0
