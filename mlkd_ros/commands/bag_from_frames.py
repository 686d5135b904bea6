"""`mlkd bag-from-frames FOLDER OUT`: make a rosbag2 flight out of an OTB sequence folder.

Write FOLDER/img/* as camera/image (bgr8) at --fps, and groundtruth_rect.txt (if present) as ground_truth/box
(PolygonStamped, same stamps), into a new rosbag2 folder OUT (mcap or sqlite3), to replay.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("mlkd.bag_from_frames")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="OTB layout: img/000001.jpg ... [+ groundtruth_rect.txt]")
    p.add_argument("out", type=Path, help="bag folder to create (must not exist)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the stamps (default 30)")
    p.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")


def run(args: argparse.Namespace) -> int:
    from mlkd_ros.bag import BagError, bag_from_frames

    if not 0 < args.fps <= 10_000:
        log.error("--fps must be a frame rate in (0, 10000], got %s", args.fps)
        return 2
    try:
        n = bag_from_frames(args.folder, args.out, fps=args.fps, storage=args.storage)
    except (BagError, FileExistsError) as exc:
        log.error("%s", exc)
        return 2
    log.info("wrote %d frames to %s (%s)", n, args.out, args.storage)
    return 0
