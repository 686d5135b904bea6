"""Dataset readers: every layout on tiny trees written here, the real OTB-style sequences, and the error cases."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from shared_paths import SEQUENCES

from mlkd_model.datasets import (
    DatasetError,
    Sequence,
    load_dataset,
    load_sequence,
    read_boxes,
)

needs_shared = pytest.mark.skipif(not SEQUENCES.is_dir(), reason="shared data not found next to the repo")


def _frames(folder: Path, n: int, pattern: str = "{:06d}.jpg", start: int = 1) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        path = folder / pattern.format(k + start)
        cv2.imwrite(str(path), np.full((12, 16, 3), 10 * k, np.uint8))
        paths.append(path)
    return paths


def _boxes(n: int, sep: str = ",") -> str:
    return "".join(sep.join(str(v) for v in (k + 1, 2, 5, 6)) + "\n" for k in range(n))


def test_otb_sequence_and_separators(tmp_path: Path) -> None:
    for sep in (",", "\t", " "):
        seq = tmp_path / f"seq_{ord(sep)}"
        _frames(seq / "img", 3, "{:04d}.jpg")
        (seq / "groundtruth_rect.txt").write_text(_boxes(3, sep))
        s = load_sequence(seq)
        assert isinstance(s, Sequence) and len(s) == 3 and s.boxes.dtype == np.float64
        np.testing.assert_array_equal(s.boxes[2], [3, 2, 5, 6])
        assert s.image(1).shape == (12, 16, 3) and s.image(1).dtype == np.uint8
    seqs = load_dataset(tmp_path)
    assert [s.name for s in seqs] == sorted(s.name for s in seqs) and len(seqs) == 3


def test_polygons_and_nan(tmp_path: Path) -> None:
    gt = tmp_path / "g.txt"
    gt.write_text("10,0,20,10,10,20,0,10\nnan,nan,nan,nan\nNaN\n")
    np.testing.assert_array_equal(read_boxes(gt)[0], [0, 0, 20, 20])
    assert np.isnan(read_boxes(gt)[1:]).all()


def test_uav123_layout_with_attributes(tmp_path: Path) -> None:
    root = tmp_path / "UAV123"
    _frames(root / "data_seq" / "UAV123" / "bike1", 4)
    _frames(root / "data_seq" / "UAV123" / "car2", 2)
    (root / "anno" / "UAV123" / "att").mkdir(parents=True)
    (root / "anno" / "UAV123" / "bike1.txt").write_text(_boxes(4))
    (root / "anno" / "UAV123" / "car2.txt").write_text("NaN,NaN,NaN,NaN\n" + _boxes(1))
    (root / "anno" / "UAV123" / "att" / "bike1.txt").write_text("1,0,0,1,0,0,0,0,1,0,0,0\n")
    seqs = load_dataset(root)
    assert [s.name for s in seqs] == ["bike1", "car2"]
    bike = seqs[0]
    assert bike.attributes["SV"].tolist() == [True] * 4 and not bike.attributes["LR"].any()
    assert bike.attributes["IV"].all() and len(bike.attributes) == 12
    assert not seqs[1].attributes["SV"].any()  # attributes filled in for sequences without an att file
    assert np.isnan(seqs[1].boxes[0]).all()
    assert load_sequence(root / "data_seq" / "UAV123" / "bike1").attributes["FM"].all()


def test_dark_benchmark_layouts(tmp_path: Path) -> None:
    """UAVDark135 / UAVDark70 / NAT2021 / DarkTrack2021: data_seq/<seq>/ + anno/<seq>.txt."""
    for bench in ("UAVDark135", "NAT2021-test", "DarkTrack2021"):
        root = tmp_path / bench
        _frames(root / "data_seq" / "night_car1", 3, "{:05d}.jpg")
        (root / "anno").mkdir()
        (root / "anno" / "night_car1.txt").write_text(_boxes(3, "\t"))
        (seq,) = load_dataset(root)
        assert seq.name == "night_car1" and seq.boxes.shape == (3, 4)


def test_uavdt_layout(tmp_path: Path) -> None:
    root = tmp_path / "UAVDT"
    _frames(root / "UAV-benchmark-S" / "S0101", 3, "img{:06d}.jpg")
    anno = root / "UAV-benchmark-SOT_v1.0" / "anno"
    (anno / "att").mkdir(parents=True)
    (anno / "S0101_gt.txt").write_text(_boxes(3))
    (anno / "att" / "S0101_att.txt").write_text("0 1 0 0 1 0 0 0\n")
    (seq,) = load_dataset(root)
    assert seq.name == "S0101" and seq.attributes["CR"].all() and seq.attributes["IV"].all()
    assert not seq.attributes["BC"].any()


def test_dtb70_is_otb_style(tmp_path: Path) -> None:
    _frames(tmp_path / "DTB70" / "Animal1" / "img", 2, "{:05d}.jpg")
    (tmp_path / "DTB70" / "Animal1" / "groundtruth_rect.txt").write_text(_boxes(2))
    assert load_dataset(tmp_path / "DTB70")[0].name == "Animal1"


def test_pysot_json(tmp_path: Path) -> None:
    root = tmp_path / "UAV123"
    frames = _frames(root / "data_seq" / "UAV123" / "car1", 5)
    meta = {
        "car1_1": {
            "video_dir": "data_seq/UAV123/car1",
            "init_rect": [1, 2, 5, 6],
            "img_names": [str(p.relative_to(root)) for p in frames[1:4]],
            "gt_rect": [[1, 2, 5, 6], [], [3, 2, 5, 6]],
            "attr": ["Scale Variation", "Camera Motion"],
        }
    }
    (root / "UAV123.json").write_text(json.dumps(meta))
    for target in (root, root / "UAV123.json"):
        (seq,) = load_dataset(target)
        assert seq.name == "car1_1" and len(seq) == 3 and np.isnan(seq.boxes[1]).all()
        assert seq.attributes["Camera Motion"].all() and seq.frames[0] == frames[1]


def test_errors_name_the_file(tmp_path: Path) -> None:
    seq = tmp_path / "seq"
    frames = _frames(seq / "img", 4, "{:04d}.jpg")
    (seq / "groundtruth_rect.txt").write_text(_boxes(3))
    with pytest.raises(DatasetError, match=r"groundtruth_rect.txt has 3 boxes but .* has 4 frames"):
        load_sequence(seq)
    (seq / "groundtruth_rect.txt").write_text(_boxes(4))
    frames[2].unlink()
    with pytest.raises(DatasetError, match=r"missing frame in .*img: numbering jumps from 2 to 4"):
        load_sequence(seq)
    frames[2].write_bytes(b"not a jpeg")
    s = load_sequence(seq)
    with pytest.raises(DatasetError, match=r"cannot read image .*0003.jpg"):
        s.image(2)
    (seq / "groundtruth_rect.txt").write_text("1,2,3\n" * 4)
    with pytest.raises(DatasetError, match=r"groundtruth_rect.txt: line 1 has 3 values"):
        load_sequence(seq)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no sequences found"):
        load_dataset(tmp_path / "empty")


def test_json_missing_frame(tmp_path: Path) -> None:
    (tmp_path / "X.json").write_text(json.dumps({"a": {"img_names": ["a/1.jpg"], "gt_rect": [[1, 2, 3, 4]]}}))
    with pytest.raises(DatasetError, match=r"X.json: sequence a frame .*1.jpg does not exist"):
        load_dataset(tmp_path)


def test_uav123_subsequence_hint(tmp_path: Path) -> None:
    _frames(tmp_path / "data_seq" / "UAV123" / "car1", 3)
    (tmp_path / "anno" / "UAV123").mkdir(parents=True)
    (tmp_path / "anno" / "UAV123" / "car1_1.txt").write_text(_boxes(2))
    with pytest.raises(DatasetError, match="sub-sequence of car1"):
        load_dataset(tmp_path)


@needs_shared
def test_real_otb_sequences() -> None:
    val = load_dataset(SEQUENCES / "val")
    assert [s.name for s in val] == ["spbacf_Biker", "uav123_car14", "uav123_wakeboard4"]
    car = val[1]
    assert len(car) == 443 and int(np.isnan(car.boxes[:, 0]).sum()) == 25
    assert car.image(0).shape == (360, 640, 3)
    bag = load_sequence(SEQUENCES / "fixtures" / "vot_bag")
    assert bag.boxes.shape == (196, 4) and np.all(bag.boxes[:, 2:] > 0)  # polygons -> axis-aligned boxes


# --------------------------------------------------------------------------- sequences stored as video

# Flat grey levels far apart, so a lossy codec cannot blur one frame into its neighbour's value.
VIDEO_LEVELS = [20, 70, 120, 170, 220, 45, 95]


def _video_sequence(folder: Path, levels: list[int], rows: int | None = None, polygon: bool = False) -> Path:
    """A sequence folder: video.mp4 with one flat frame per level, and `rows` ground-truth rows."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(folder / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 48))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for level in levels:
        writer.write(np.full((48, 64, 3), level, np.uint8))
    writer.release()
    n = len(levels) if rows is None else rows
    line = "10,4,30,4,30,20,10,20\n" if polygon else "10,4,20,16\n"
    (folder / "groundtruth_rect.txt").write_text(line * n)
    return folder


def _decoded(cache: Path) -> list[Path]:
    return sorted((cache / "video").glob("*/COMPLETE"))


def test_video_sequence_is_decoded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlkd_model.datasets as datasets

    monkeypatch.setenv("MLKD_CACHE", str(tmp_path / "cache"))
    seq_dir = _video_sequence(tmp_path / "seqs" / "clip", VIDEO_LEVELS, polygon=True)
    seq = load_sequence(seq_dir)
    assert seq.name == "clip" and len(seq) == len(VIDEO_LEVELS)
    np.testing.assert_array_equal(seq.boxes[0], [10, 4, 20, 16])  # the polygon's axis-aligned box
    means = [float(seq.image(i).mean()) for i in range(len(seq))]
    np.testing.assert_allclose(means, VIDEO_LEVELS, atol=4)  # each frame in order, none skipped or repeated
    assert seq.image(0).shape == (48, 64, 3)
    assert all(tmp_path / "cache" in f.parents for f in seq.frames)  # decoded into the cache, not beside the video
    assert len(_decoded(tmp_path / "cache")) == 1

    def no_decoding(*_args: object) -> int:
        raise AssertionError("the video was decoded again")

    monkeypatch.setattr(datasets, "_decode", no_decoding)
    again = load_dataset(tmp_path / "seqs")  # a folder of sequences, as training reads it
    assert [f for f in again[0].frames] == seq.frames
    copy = tmp_path / "copy" / "clip"
    copy.mkdir(parents=True)
    for name in ("video.mp4", "groundtruth_rect.txt"):
        (copy / name).write_bytes((seq_dir / name).read_bytes())
    assert load_sequence(copy).frames == seq.frames  # keyed by content: a copy is not decoded again
    monkeypatch.undo()
    monkeypatch.setenv("MLKD_CACHE", str(tmp_path / "cache"))
    _video_sequence(seq_dir, VIDEO_LEVELS[::-1], polygon=True)  # new content: a new cache entry
    changed = load_sequence(seq_dir)
    assert changed.frames != seq.frames and len(_decoded(tmp_path / "cache")) == 2
    assert abs(float(changed.image(0).mean()) - VIDEO_LEVELS[-1]) < 4


def test_short_or_corrupt_video_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLKD_CACHE", str(tmp_path / "cache"))
    short = _video_sequence(tmp_path / "short", VIDEO_LEVELS[:5], rows=7)
    with pytest.raises(DatasetError, match=r"short/video\.mp4 has 5 readable frames but its ground truth has 7"):
        load_sequence(short)
    long = _video_sequence(tmp_path / "long", VIDEO_LEVELS, rows=5)
    with pytest.raises(DatasetError, match=r"long/video\.mp4 has more frames than its ground truth has rows \(5\)"):
        load_sequence(long)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "video.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    (corrupt / "groundtruth_rect.txt").write_text("1,2,3,4\n" * 3)
    with pytest.raises(DatasetError, match=r"corrupt/video\.mp4"):
        load_sequence(corrupt)
    truncated = _video_sequence(tmp_path / "truncated", VIDEO_LEVELS)
    data = (truncated / "video.mp4").read_bytes()
    (truncated / "video.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetError, match=r"truncated/video\.mp4"):
        load_sequence(truncated)
    assert _decoded(tmp_path / "cache") == []  # nothing half-decoded is left to be mistaken for a sequence
    assert not list((tmp_path / "cache" / "video").glob("*.part-*"))


def test_track_source_reads_a_video_sequence(tmp_path: Path) -> None:
    from mlkd_model.sources import open_source

    folder = _video_sequence(tmp_path / "clip", VIDEO_LEVELS, polygon=True)
    source = open_source(folder)
    assert source.name == "clip" and source.first_box == (10.0, 4.0, 20.0, 16.0)
    means = [float(f.mean()) for f in source.frames()]
    np.testing.assert_allclose(means, VIDEO_LEVELS, atol=4)


@needs_shared
def test_real_video_sequence() -> None:
    seq = load_sequence(SEQUENCES / "train_video" / "otb_ironman")
    assert len(seq) == 166 and seq.image(165).shape == (270, 640, 3)
