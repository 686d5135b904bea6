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
