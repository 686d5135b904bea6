"""`mlkd track SOURCE`: track one object through a video, a folder of frames or an OTB sequence.

Track the object in the --init box through SOURCE. Writes OUT/<source>.txt with one x,y,w,h line per frame
(the first line is the init box), OUT/<source>.csv with a header line and one row per frame:
frame,x,y,w,h,score,confidence,state (frame 1 is the init, state tracking; state is tracking, uncertain: it
may be on another object, or lost; the box of a lost frame is where the tracker still looks), OUT/<source>.json
with the run's settings, and with --video an annotated MP4 that shows the state. Prints frames per second.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from tqdm import tqdm

from mlkd_model.draw import AnnotatedVideo
from mlkd_model.frames import BoxError, FrameError, parse_box
from mlkd_model.load import BACKENDS, load_tracker
from mlkd_model.manifest import ModelDirError
from mlkd_model.provenance import git_revision
from mlkd_model.sources import SourceError, open_source
from mlkd_model.track_frames import Step, track_frames

log = logging.getLogger("mlkd.track")


CSV_HEADER = "frame,x,y,w,h,score,confidence,state\n"


def csv_row(step: Step) -> str:
    """One CSV line; frame numbers count from 1, the init frame reports score and confidence 1, tracking."""
    init = step.score is None
    score = 1.0 if init else step.score
    confidence = 1.0 if init else step.confidence
    state = "tracking" if init else step.state or ""
    values = [*(f"{v:.2f}" for v in step.box), f"{score:.4f}", "" if confidence is None else f"{confidence:.4f}"]
    return f"{step.index + 1},{','.join(values)},{state}\n"


def box_arg(text: str) -> tuple[float, float, float, float]:
    """argparse type for X,Y,W,H that shows the parser's own message on bad input."""
    try:
        return parse_box(text)
    except BoxError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source", type=Path, help="video file, folder of images, or OTB sequence folder (img/ + groundtruth_rect.txt)"
    )
    p.add_argument(
        "--init",
        type=box_arg,
        metavar="X,Y,W,H",
        help="target box in the first frame (top-left x, y, width, height in pixels); "
        "defaults to the first ground-truth box of an OTB sequence",
    )
    p.add_argument(
        "--model", type=Path, default=None, help="model directory from `mlkd export` (default: the embedded model)"
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="onnx",
        help="inference backend (default: onnx; torch needs the train install)",
    )
    p.add_argument(
        "--providers", default="cpu", help="ONNX Runtime providers in order of preference, e.g. tensorrt,cuda,cpu"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="ONNX Runtime intra-op threads (default 1, for a 2-core ground station; 0 = one per core)",
    )
    p.add_argument("--spin", action="store_true", help="let idle ONNX Runtime threads busy-wait (faster, hogs cores)")
    p.add_argument(
        "--enhance",
        action="store_true",
        help="run the teacher path: DarkLighter enhances every crop before the tracker",
    )
    p.add_argument("--out", type=Path, default=Path("runs/track"), help="output folder (default: runs/track)")
    p.add_argument("--video", action="store_true", help="also write an annotated video OUT/<source>.mp4")


def run(args: argparse.Namespace) -> int:
    try:
        source = open_source(args.source)
        init = args.init or source.first_box
        if init is None:
            log.error(
                "%s has no ground truth for its first frame: give the target box with --init X,Y,W,H", args.source
            )
            return 2
        providers = tuple(args.providers.split(","))
        tracker = load_tracker(args.model, args.backend, args.enhance, providers, args.threads, args.spin)
    except (SourceError, ModelDirError, BoxError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    boxes_path = args.out / f"{source.name}.txt"
    video = AnnotatedVideo(args.out / f"{source.name}.mp4", source.fps) if args.video else None
    boxes: list[tuple[float, ...]] = []
    rows: list[str] = []
    elapsed = 0.0
    try:
        frames = tqdm(source.frames(), total=len(source), desc=source.name, unit="frame")
        for step in track_frames(tracker, frames, init):
            elapsed += step.seconds if step.index > 0 else 0.0  # frames/s of tracking, the init left out
            boxes.append(step.box)
            rows.append(csv_row(step))
            if video:
                video.write(step.frame, step.box, step.score, step.state, step.confidence)
    except (SourceError, FrameError, BoxError) as exc:
        log.error("%s", exc)
        return 2
    finally:
        if video:
            video.close()
    boxes_path.write_text("".join(",".join(f"{v:.2f}" for v in b) + "\n" for b in boxes))
    (args.out / f"{source.name}.csv").write_text(CSV_HEADER + "".join(rows))
    fps = (len(boxes) - 1) / elapsed if elapsed > 0 else float("nan")
    record = {
        "source": str(args.source),
        "init": list(init),
        "model": str(args.model or "embedded default"),
        "backend": args.backend,
        "providers": tracker.backend.providers if hasattr(tracker.backend, "providers") else None,
        "enhance": args.enhance,
        "threads": args.threads,
        "spin": args.spin,
        "frames": len(boxes),
        "fps": fps,
        "git_revision": git_revision(),
    }
    (args.out / f"{source.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"{source.name}: {len(boxes)} frames, {fps:.1f} frames/s ({args.backend}{', enhanced' if args.enhance else ''})"
    )
    print(f"boxes: {boxes_path}" + (f"\nvideo: {video.path}" if video else ""))
    return 0
