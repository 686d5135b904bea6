"""`mlkd replay BAG`: replay a recorded flight (rosbag2) to the tracker, or offline; CLE plot and numbers.

Online (default): publishes the bag's camera/image (and camera_info, ground_truth/box) with their recorded
timing scaled by --rate, and tracker/init (first ground-truth box, or the live tracker's first recorded box), to the
tracker started by launch/replay.launch.xml. With --cle-csv (the cle_logger's output) it then writes the
CLE report. The player is mlkd_ros/bag_player.py, also the `bag_player` node of that launch file.
Offline (--offline): runs the tracker(s) over the bag's frames directly (no ROS) and writes the report.
Report (mlkd_ros/cle.py): <bag>_cle.csv, <bag>_cle.png (Fig. 5 style), <bag>_cle.json next to the bag.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("mlkd.replay")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bag", type=Path, help="rosbag2 folder (mcap or sqlite3) with camera/image")
    p.add_argument(
        "--gt",
        type=Path,
        help="ground truth x,y,w,h per line, line i = i-th frame (default: the bag's ground_truth/box topic)",
    )
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor (online)")
    p.add_argument(
        "--init",
        help="X,Y,W,H init box on the first frame (default: first ground-truth box, "
        "else the first box the live tracker recorded)",
    )
    p.add_argument("--offline", action="store_true", help="run the tracker(s) here instead of publishing")
    p.add_argument(
        "--model-dir",
        action="append",
        default=[],
        metavar="[NAME=]DIR",
        help="offline: tracker model directory, repeatable (default: the embedded model)",
    )
    p.add_argument(
        "--cle-csv",
        type=Path,
        action="append",
        default=[],
        metavar="[NAME=]CSV",
        help="add a cle_logger CSV (online run) to the report, repeatable",
    )
    p.add_argument("--domain-id", type=int, help="online: ROS_DOMAIN_ID to publish on (default: environment)")
    p.add_argument(
        "--wait-for",
        action="append",
        default=[],
        metavar="TOPIC",
        help="online: also wait for a subscriber on TOPIC before playing, repeatable (e.g. tracker/cle for the "
        "cle_logger; camera/image and tracker/init are always waited for)",
    )


def _named(spec: str, default: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    return (name, value) if sep else (default, spec)


def run_offline(bag: Path, gt: np.ndarray, init: tuple, models: list[str]) -> dict[str, np.ndarray]:
    from mlkd_model.load import load_tracker
    from mlkd_model.track_frames import track_frames
    from mlkd_ros.bag import read_frames

    results = {}
    for spec in models or ["MLKD-Track=embedded"]:
        name, model_dir = _named(spec, Path(spec).name)
        tracker = load_tracker(None if model_dir in ("", "embedded") else model_dir)
        t0 = time.monotonic()
        start, box0 = init
        frames = (frame for _, frame in read_frames(bag))
        boxes = [step.box for step in track_frames(tracker, frames, box0, start)]
        log.info("%s: %d frames in %.1f s", name, len(boxes), time.monotonic() - t0)
        results[name] = np.asarray(boxes, dtype=np.float64)
    return results


def run(args: argparse.Namespace) -> int:
    from mlkd_model.frames import BoxError, FrameError
    from mlkd_model.manifest import ModelDirError
    from mlkd_ros.bag import BagError, read_boxes
    from mlkd_ros.bag_player import default_init, frame_stamps, ground_truth, play
    from mlkd_ros.cle import boxes_from_cle_log, write_report
    from mlkd_ros.topics import BOX_TOPIC

    try:
        stamps = frame_stamps(args.bag)
        gt = ground_truth(args.bag, stamps, args.gt)
    except (BagError, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    init = default_init(args.bag, stamps, gt, args.init or "")
    if init is None:
        log.error("no init box: give --init X,Y,W,H (no ground truth and no recorded tracker/box)")
        return 2
    if not args.offline:
        play(args.bag, rate=args.rate, init=init, gt=gt, domain_id=args.domain_id, wait_for=args.wait_for)
    if gt is None:
        log.warning("no ground truth (--gt or a ground_truth/box topic): no CLE report")
        return 0
    try:
        results = run_offline(args.bag, gt, init, args.model_dir) if args.offline else {}
    except (ModelDirError, BagError, FrameError, BoxError) as exc:
        log.error("%s", exc)
        return 2
    recorded = read_boxes(args.bag, BOX_TOPIC)  # the live tracker's boxes, when the flight was recorded with them
    if recorded:
        results["recorded (live)"] = np.array([recorded.get(int(s), np.full(4, np.nan)) for s in stamps])
    for spec in args.cle_csv:
        name, path = _named(str(spec), Path(spec).stem)
        results[name] = boxes_from_cle_log(path, stamps)
    if results:
        write_report(args.bag, gt, stamps, results)
    return 0
