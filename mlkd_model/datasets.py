"""Readers for single-object tracking benchmarks, all returning the same `Sequence`.

Layouts understood (auto-detected by `load_dataset`):
- OTB style, one folder per sequence: `img/*.jpg` (or frames directly in the folder, or one `video.mp4`
  holding one frame per box row) and `groundtruth_rect.txt` / `groundtruth.txt` — OTB, DTB70, VOT-like
  folders, `shared/data/sequences/*`;
- split layouts, image folders and annotation files in separate trees, matched by sequence name:
  UAV123 / UAV123_10fps / UAV20L (`data_seq/UAV123/<seq>/` + `anno/UAV123/<seq>.txt`, attributes in
  `anno/UAV123/att/<seq>.txt`), UAVDark135, UAVDark70, NAT2021 (test and long-term), DarkTrack2021
  (`data_seq/<seq>/` + `anno/<seq>.txt`), UAVDT (`UAV-benchmark-S/<seq>/` + `anno/<seq>_gt.txt`,
  `<seq>_att.txt`);
- pysot-toolkit JSON annotation files (`<Dataset>.json`: {seq: {img_names, gt_rect, init_rect, attr}}),
  which is also how UAV123's sub-sequences (`car1_1` = a frame range of `car1`) are read.

Boxes are x,y,w,h (top-left, pixels) separated by commas, tabs or spaces; 8-value polygons become the
axis-aligned box of their corners (min/max, as pysot does for VOT). NaN rows mean "no ground truth".

A video sequence is decoded once into lossless PNG frames under `$MLKD_CACHE` (else ~/.cache/mlkd)
`/video/<sha256 of the video>/`, so every reader afterwards sees plain frame files and no run decodes again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mlkd_model.boxes import bounding_box, labelled_mask
from mlkd_model.errors import UserError

log = logging.getLogger(__name__)

# `${MLKD_SHARED}` (configs, split files): the environment variable, else the `shared/` folder beside the checkout.
DEFAULT_SHARED = str(Path(__file__).resolve().parents[1].parent / "shared")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
GT_NAMES = ("groundtruth_rect.txt", "groundtruth.txt", "groundtruth_rect.1.txt")
VIDEO_NAME = "video.mp4"  # a sequence stored as one video (shared/data/sequences/train_video)

# Attribute names in the order the benchmarks' attribute files list them (one 0/1 value each).
ATTRIBUTE_NAMES: dict[str, tuple[str, ...]] = {
    # UAV123 / UAV123_10fps / UAV20L readme: SV ARC LR FM FOC POC OV BC IV VC CM SOB
    "uav123": ("SV", "ARC", "LR", "FM", "FOC", "POC", "OV", "BC", "IV", "VC", "CM", "SOB"),
    # UAVDT single-object benchmark: BC CR OR SO IV OB SV LO
    "uavdt": ("BC", "CR", "OR", "SO", "IV", "OB", "SV", "LO"),
}


def shared_dir() -> str:
    """What `${MLKD_SHARED}` means: the environment variable, else `shared/` beside the checkout."""
    return os.environ.get("MLKD_SHARED", DEFAULT_SHARED)


class DatasetError(UserError, ValueError):
    """A dataset or sequence that cannot be read; the message names the offending file."""


@dataclass
class Sequence:
    """One annotated sequence: frame paths, N x 4 float64 x,y,w,h boxes (NaN rows = missing), attributes.

    `attributes` maps a name to a per-frame bool array of length N (per-sequence flags are broadcast).
    """

    name: str
    frames: list[Path]
    boxes: np.ndarray
    attributes: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    def image(self, i: int) -> np.ndarray:
        """Frame i as BGR uint8 (HxWx3); DatasetError naming the file if it cannot be read."""
        path = self.frames[i]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"cannot read image {path} (frame {i} of sequence {self.name})")
        return image


# --------------------------------------------------------------------------- boxes and attributes


def parse_boxes(lines: list[list[float]] | np.ndarray, source: str) -> np.ndarray:
    """Rows of 4 (x,y,w,h) or 8 (polygon) numbers -> N x 4 float64 boxes."""
    rows = []
    for k, row in enumerate(lines):
        values = np.asarray(row, dtype=np.float64).ravel()
        if values.size == 4:
            rows.append(values)
        elif values.size == 8:
            # min/max of the corners, as pysot-toolkit does for VOT polygons; NaN polygons stay NaN
            rows.append(bounding_box(values[0::2], values[1::2]))
        elif values.size == 1 and np.isnan(values[0]):
            rows.append(np.full(4, np.nan))
        else:
            raise DatasetError(f"{source}: line {k + 1} has {values.size} values; expected 4 (x,y,w,h) or 8 (polygon)")
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def read_boxes(path: Path) -> np.ndarray:
    """Read a ground-truth text file (comma, tab or space separated; 'nan' allowed)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise DatasetError(f"cannot read ground truth {path}: {exc}") from exc
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for k, line in enumerate(lines):
        parts = re.split(r"[,\s]+", line.strip())
        try:
            rows.append([float(p) for p in parts if p])
        except ValueError as exc:
            raise DatasetError(f"{path}: line {k + 1} is not numbers: {line!r}") from exc
    return parse_boxes(rows, str(path))


def _attribute_names(count: int, hint: str) -> tuple[str, ...]:
    hint = hint.lower()
    for key, names in ATTRIBUTE_NAMES.items():
        if key in hint and len(names) == count:
            return names
    if count == 12:  # UAV123-derived sets (UAV123_10fps, UAV20L) share its 12 attributes
        return ATTRIBUTE_NAMES["uav123"]
    return tuple(f"att{k}" for k in range(count))


def read_attributes(path: Path, n_frames: int, hint: str = "") -> dict[str, np.ndarray]:
    """One line of 0/1 flags (per sequence) or one line per frame -> {name: per-frame bool array}."""
    rows = [r for r in (re.split(r"[,\s]+", line.strip()) for line in Path(path).read_text().splitlines()) if r != [""]]
    try:
        flags = np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise DatasetError(f"{path}: attribute file is not 0/1 numbers") from exc
    if flags.ndim != 2 or len(flags) not in (1, n_frames):
        raise DatasetError(f"{path}: expected one line of flags or {n_frames} lines (one per frame), got {len(flags)}")
    names = _attribute_names(flags.shape[1], hint)
    return {name: np.broadcast_to(flags[:, k] > 0, (n_frames,)).copy() for k, name in enumerate(names)}


# --------------------------------------------------------------------------- frames


def list_frames(folder: Path) -> list[Path]:
    """Image files of a folder in name order; DatasetError on a gap in numbered names."""
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    numbers = [re.search(r"(\d+)$", p.stem) for p in frames]
    if frames and all(numbers):
        values = [int(m.group(1)) for m in numbers]  # type: ignore[union-attr]
        frames = [p for _, p in sorted(zip(values, frames, strict=True))]
        values.sort()
        for a, b in itertools.pairwise(values):
            if b != a + 1:
                raise DatasetError(f"missing frame in {folder}: numbering jumps from {a} to {b}")
    return frames


def cache_root() -> Path:
    """Where decoded videos and darkened frames are cached: `$MLKD_CACHE`, else ~/.cache/mlkd."""
    return Path(os.environ.get("MLKD_CACHE", Path.home() / ".cache" / "mlkd"))


def video_frames(video: Path, expected: int, root: Path | None = None) -> list[Path]:
    """The frames of `video` as PNG files in the cache, decoding it on first use.

    The cache folder is named by the video's content (SHA-256), so an edited video is decoded again and a
    copied one is not. The video must hold exactly `expected` frames (one per ground-truth row): a
    corrupt or short video is a DatasetError naming the file. Decoding writes to a private folder that is
    renamed into place when complete, so concurrent readers never see half a sequence.
    """
    try:
        digest = hashlib.sha256(video.read_bytes()).hexdigest()[:20]
    except OSError as exc:
        raise DatasetError(f"cannot read video {video}: {exc}") from exc
    folder = (root or cache_root()) / "video" / digest
    names = [folder / f"{i:06d}.png" for i in range(expected)]
    if (folder / "COMPLETE").is_file():
        cached = int((folder / "COMPLETE").read_text().split()[0])
        if cached != expected:
            raise DatasetError(f"video {video} has {cached} frames but its ground truth has {expected} rows")
        return names
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f"{digest}.part-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    try:
        count = _decode(video, tmp, expected)
        if count < expected:
            raise DatasetError(
                f"video {video} has {count} readable frames but its ground truth has {expected} rows"
                " (the video is corrupt or cut short)"
            )
        if count > expected:
            raise DatasetError(f"video {video} has more frames than its ground truth has rows ({expected})")
        (tmp / "COMPLETE").write_text(f"{count}\n")
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished the same video first: use its frames
            if not (folder / "COMPLETE").is_file():
                raise
    finally:
        if tmp.exists():
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
    log.info("decoded %s (%d frames) into %s", video, expected, folder)
    return names


def _decode(video: Path, out: Path, expected: int) -> int:
    """Decode every frame of `video` into out/NNNNNN.png; the number of frames read (at most expected + 1)."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise DatasetError(f"cannot open video {video} (corrupt, or not a video OpenCV can decode)")
    count = 0
    try:
        while count <= expected:  # one frame past the boxes is enough to call the video too long
            ok, image = cap.read()
            if not ok:
                break
            if count < expected:
                cv2.imwrite(str(out / f"{count:06d}.png"), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            count += 1
    finally:
        cap.release()
    return count


def _check_counts(frames: list[Path], boxes: np.ndarray, gt: Path, images: Path) -> None:
    if not frames:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {images}")
    if len(frames) != len(boxes):
        raise DatasetError(f"{gt} has {len(boxes)} boxes but {images} has {len(frames)} frames")


# --------------------------------------------------------------------------- OTB style


def _otb_gt(folder: Path) -> Path | None:
    return next((folder / n for n in GT_NAMES if (folder / n).is_file()), None)


def _load_otb(folder: Path) -> Sequence:
    gt = _otb_gt(folder)
    assert gt is not None
    boxes = read_boxes(gt)
    if not (folder / "img").is_dir() and (folder / VIDEO_NAME).is_file():
        frames = video_frames(folder / VIDEO_NAME, len(boxes))
    else:
        images = folder / "img" if (folder / "img").is_dir() else folder
        frames = list_frames(images)
        _check_counts(frames, boxes, gt, images)
    attributes: dict[str, np.ndarray] = {}
    for name in ("attributes.txt", "att.txt"):
        if (folder / name).is_file():
            attributes = read_attributes(folder / name, len(frames), folder.name)
    return Sequence(folder.name, frames, boxes, attributes)


# --------------------------------------------------------------------------- split layouts


def _walk_dirs(root: Path, depth: int) -> list[Path]:
    """Folders below root, breadth first, `depth` levels deep (scandir: no stat per frame file)."""
    out, level = [], [root]
    for _ in range(depth):
        nxt = []
        for parent in level:
            with os.scandir(parent) as entries:
                nxt += [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")]
        level = sorted(nxt)
        out.extend(level)
    return out


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def _annotation_files(root: Path) -> dict[str, Path]:
    """Sequence name -> annotation file, from `anno`/`annotations` folders below root."""
    found: dict[str, Path] = {}
    for d in [root, *_walk_dirs(root, 3)]:
        if d.name.lower() not in ("anno", "annos", "annotations") and d.parent.name.lower() not in ("anno", "annos"):
            continue
        for f in sorted(d.glob("*.txt")):
            if f.stem.endswith("_att") or f.parent.name.lower() in ("att", "attributes"):
                continue
            name = f.stem.removesuffix("_gt")
            found.setdefault(name, f)
    return found


def _split_sequence(name: str, gt: Path, image_dirs: dict[str, Path], root: Path) -> Sequence:
    images = image_dirs.get(name)
    if images is None:
        base = re.sub(r"_\d+$", "", name)
        hint = (
            f"; {name} looks like a UAV123 sub-sequence of {base}: load it with pysot-toolkit's JSON file"
            if base != name and base in image_dirs
            else ""
        )
        raise DatasetError(f"{gt}: no image folder named {name} under {root}{hint}")
    frames = list_frames(images)
    boxes = read_boxes(gt)
    _check_counts(frames, boxes, gt, images)
    attributes: dict[str, np.ndarray] = {}
    folders = (gt.parent / "att", gt.parent, gt.parent.parent / "att")
    candidates = [f / n for f in folders for n in (f"{name}_att.txt", f"{name}.txt") if f != gt.parent or "_att" in n]
    att = next((c for c in candidates if c.is_file()), None)
    if att is not None:
        attributes = read_attributes(att, len(frames), str(root))
    return Sequence(name, frames, boxes, attributes)


def _load_split(root: Path) -> list[Sequence]:
    annotations = _annotation_files(root)
    image_dirs = {d.name: d for d in _walk_dirs(root, 4) if d.name.lower() not in ("img", "anno") and _has_images(d)}
    return [_split_sequence(name, gt, image_dirs, root) for name, gt in sorted(annotations.items())]


# --------------------------------------------------------------------------- pysot JSON


def _json_frame(root: Path, name: str) -> Path:
    # pysot joins img_names to the dataset root; some files start them with the dataset folder's own name
    if not (root / name).exists() and (root.parent / name).exists():
        return root.parent / name
    return root / name


def _load_json(path: Path, root: Path) -> list[Sequence]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read pysot annotation file {path}: {exc}") from exc
    sequences = []
    for name, entry in sorted(meta.items()):
        try:
            img_names, gt_rect = entry["img_names"], entry["gt_rect"]
        except (KeyError, TypeError) as exc:
            raise DatasetError(f"{path}: sequence {name} lacks img_names/gt_rect") from exc
        frames = [_json_frame(root, p) for p in img_names]
        missing = next((f for f in frames if not f.is_file()), None)
        if missing is not None:
            raise DatasetError(f"{path}: sequence {name} frame {missing} does not exist")
        boxes = parse_boxes([r if r else [np.nan] for r in gt_rect], f"{path} [{name}]")
        if len(boxes) != len(frames):
            raise DatasetError(f"{path}: sequence {name} has {len(boxes)} boxes but {len(frames)} img_names")
        n = len(frames)
        attributes = {a: np.ones(n, dtype=bool) for a in entry.get("attr", []) or []}
        for key, value in entry.items():  # VOT-style per-frame tags (camera_motion, occlusion, ...)
            skip = key in ("img_names", "gt_rect", "init_rect", "attr", "video_dir")
            if not skip and isinstance(value, list) and len(value) == n:
                attributes[key] = np.asarray(value, dtype=np.float64) > 0
        sequences.append(Sequence(name, frames, boxes, attributes))
    return _fill_absent_attributes(sequences)


def _fill_absent_attributes(sequences: list[Sequence]) -> list[Sequence]:
    """Per-sequence attribute lists name only what is present: give every sequence every key (False)."""
    keys = sorted({k for s in sequences for k in s.attributes})
    for s in sequences:
        for k in keys:
            s.attributes.setdefault(k, np.zeros(len(s), dtype=bool))
    return sequences


# --------------------------------------------------------------------------- public entry points


def load_sequence(path: str | Path) -> Sequence:
    """Load one sequence: an OTB-style folder, or an image folder whose annotation lives in an `anno` tree above."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"sequence folder {path} does not exist")
    if _otb_gt(path) is not None:
        return _load_otb(path)
    for root in list(path.parents)[:4]:
        gt = _annotation_files(root).get(path.name)
        if gt is not None:
            return _split_sequence(path.name, gt, {path.name: path}, root)
    raise DatasetError(f"{path}: no ground truth found ({' / '.join(GT_NAMES)}, or anno/{path.name}.txt above it)")


def split_file(text: str | Path) -> tuple[Path, str] | None:
    """`SPLIT.yaml#part` -> (file, part), or None when text names no split file."""
    path, _, part = str(text).partition("#")
    if not path.endswith((".yaml", ".yml")):
        return None
    if not part:
        raise DatasetError(f"{text}: name the part of the split file to load, e.g. {path}#val")
    file = Path(path)
    repo_relative = Path(__file__).resolve().parents[1] / file  # training/splits/... from any directory
    if not file.is_absolute() and not file.is_file() and repo_relative.is_file():
        file = repo_relative
    return file, part


def load_split_part(path: Path, part: str, sequences_root: Path) -> list[Sequence]:
    """The sequences that a split file (training/splits/*.yaml) lists under `part`, relative to sequences_root."""
    import yaml

    if not path.is_file():
        raise DatasetError(f"split file {path} does not exist")
    split = yaml.safe_load(path.read_text()) or {}
    names = split.get(part)
    if not isinstance(names, list) or not names:
        known = [k for k, v in split.items() if isinstance(v, list) and v and isinstance(v[0], str)]
        raise DatasetError(f"{path} has no sequence list {part!r}; it has {known}")
    return _fill_absent_attributes([load_sequence(sequences_root / n) for n in names])


def load_dataset(root: str | Path, sequences_root: str | Path | None = None) -> list[Sequence]:
    """Load every sequence under root, detecting the layout; root may also be one sequence, a pysot JSON
    file, or `SPLIT.yaml#part` (a part of a split file; its paths are relative to sequences_root)."""
    split = split_file(root)
    if split is not None:
        if sequences_root is None:
            sequences_root = Path(shared_dir()) / "data" / "sequences"
        return load_split_part(split[0], split[1], Path(sequences_root))
    root = Path(root)
    if root.is_file() and root.suffix == ".json":
        return _load_json(root, root.parent)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist")
    if _otb_gt(root) is not None:
        return [_load_otb(root)]
    jsons = sorted(p for p in root.glob("*.json") if p.stem.lower() == root.name.lower()) or sorted(root.glob("*.json"))
    jsons = [p for p in jsons if p.name not in ("summary.json", "config.json")]
    if len(jsons) == 1:
        return _load_json(jsons[0], root)
    otb = [d for d in sorted(root.iterdir()) if d.is_dir() and _otb_gt(d) is not None]
    if otb:
        return _fill_absent_attributes([_load_otb(d) for d in otb])
    split = _load_split(root)
    if split:
        return _fill_absent_attributes(split)
    raise DatasetError(
        f"{root}: no sequences found (expected OTB-style folders with groundtruth_rect.txt, "
        "anno/ + data_seq/ folders, or one pysot <Dataset>.json)"
    )


def dataset_name(root: str | Path) -> str:
    """Name used for results/<dataset>/: the folder (or JSON file) name; `night_v2_val` for a split part."""
    split = split_file(root)
    if split is not None:
        return f"{split[0].stem}_{split[1]}"
    root = Path(root).resolve()
    return root.stem if root.is_file() else root.name


def ground_truth_attributes(boxes: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame attributes computable from the boxes alone, with UAV123's definitions (for sets that ship none).

    SV: box area / first area outside [0.5, 2]; ARC: aspect ratio / first aspect ratio outside [0.5, 2];
    LR: area below 400 px; FM: center moved more than 20 px since the previous frame; FOC: no ground truth
    (NaN rows: the target is fully occluded or out of view). Thresholds apply at the stored resolution.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    valid = labelled_mask(boxes)
    out = {k: np.zeros(len(boxes), dtype=bool) for k in ("SV", "ARC", "LR", "FM", "FOC")}
    out["FOC"] = ~valid
    if not valid.any():
        return out
    first = boxes[np.flatnonzero(valid)[0]]
    with np.errstate(invalid="ignore", divide="ignore"):
        area = boxes[:, 2] * boxes[:, 3]
        scale = area / (first[2] * first[3])
        aspect = (boxes[:, 2] / boxes[:, 3]) / (first[2] / first[3])
        center = boxes[:, :2] + boxes[:, 2:] / 2
        motion = np.r_[0.0, np.hypot(*np.diff(center, axis=0).T)]
        out["SV"] = valid & ((scale < 0.5) | (scale > 2))
        out["ARC"] = valid & ((aspect < 0.5) | (aspect > 2))
        out["LR"] = valid & (area < 400)
        out["FM"] = valid & (motion > 20)  # NaN motion next to a gap compares False
    return out
