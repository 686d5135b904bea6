"""`mlkd eval` / `mlkd darken` / `mlkd report` end to end on the small fixture sequence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlkd_model.cli import main
from mlkd_model.datasets import load_sequence, read_boxes
from mlkd_training import evaluate as E

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CROSSING = SHARED / "data" / "sequences" / "fixtures" / "otb_Crossing"
pytestmark = pytest.mark.skipif(not CROSSING.is_dir(), reason="shared data not found next to the repo")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two trackers on a two-sequence dataset (otb_Crossing and a 40-frame cut of it), darkened with seed 1."""
    data = tmp_path_factory.mktemp("data") / "tiny"
    shutil.copytree(CROSSING, data / "otb_Crossing")
    short = data / "crossing_short"
    (short / "img").mkdir(parents=True)
    for f in sorted((CROSSING / "img").iterdir())[:40]:
        shutil.copy(f, short / "img" / f.name)
    lines = (CROSSING / "groundtruth_rect.txt").read_text().splitlines(True)
    (short / "groundtruth_rect.txt").write_text("".join(lines[:40]))
    out = tmp_path_factory.mktemp("eval")
    assert main(["eval", str(data), "--darken", "1", "-t", "default", "-t", "opencv_nano", "--out", str(out)]) == 0
    return out


def test_files_and_summary(evaluated: Path) -> None:
    res = evaluated / "results" / "tiny_dark1"
    for tracker in ("default", "opencv_nano"):
        for seq, n in (("otb_Crossing", 120), ("crossing_short", 40)):
            boxes = read_boxes(res / tracker / f"{seq}.txt")
            assert boxes.shape == (n, 4) and np.isfinite(boxes).all()
            assert (res / tracker / "times" / f"{seq}_time.txt").is_file()
    gt = load_sequence(CROSSING).boxes
    np.testing.assert_allclose(read_boxes(res / "default" / "otb_Crossing.txt")[0], gt[0])  # frame 1 = init box
    summary = json.loads((evaluated / "summary.json").read_text())
    assert summary["dataset"] == "tiny_dark1" and summary["darken_seed"] == 1 and summary["sequences"] == 2
    for tracker in ("default", "opencv_nano"):
        t = summary["trackers"][tracker]
        assert 0.3 < t["success_auc"] < 1 and 0.3 < t["precision_20"] <= 1 and 0.3 < t["norm_precision_20"] <= 1
        assert t["fps"] > 1 and t["frames"] == 160 and t["excluded_frames"] == 0
        assert set(t["sequences"]) == {"otb_Crossing", "crossing_short"}
        assert len(t["curves"]["success"]) == 21 and len(t["curves"]["precision"]) == 51
    config = json.loads((evaluated / "config.json").read_text())
    assert config["trackers"] == ["default", "opencv_nano"] and "git_revision" in config
    assert config["args"]["darken"] == [1]


def test_rerun_skips_finished_sequences(evaluated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = Path(json.loads((evaluated / "config.json").read_text())["data"])
    built = []
    real = E.make_tracker
    monkeypatch.setattr(E, "make_tracker", lambda spec: built.append(spec.name) or real(spec))
    before = json.loads((evaluated / "summary.json").read_text())
    assert main(["eval", str(data), "--darken", "1", "-t", "default", "--out", str(evaluated)]) == 0
    assert built == []  # nothing left to run
    (evaluated / "results" / "tiny_dark1" / "default" / "crossing_short.txt").unlink()
    assert main(["eval", str(data), "--darken", "1", "-t", "default", "--out", str(evaluated)]) == 0
    assert built == ["default"]
    after = json.loads((evaluated / "summary.json").read_text())
    assert set(after["trackers"]) == {"default", "opencv_nano"}  # earlier trackers kept in the summary
    # same seed, same frames: the re-run sequence gives the same boxes
    assert after["trackers"]["default"]["success_auc"] == pytest.approx(before["trackers"]["default"]["success_auc"])


def test_report(evaluated: Path) -> None:
    assert main(["report", str(evaluated)]) == 0
    for name in ("success_plot.png", "precision_plot.png", "norm_precision_plot.png"):
        assert (evaluated / name).read_bytes()[:4] == b"\x89PNG"
    table = (evaluated / "comparison.md").read_text()
    assert "| default |" in table and "| opencv_nano |" in table
    assert "Scale variation (SV)" in (evaluated / "attributes.md").read_text()


def test_report_on_foreign_results(tmp_path: Path) -> None:
    """Results from another toolkit (tab separated, no summary.json) are scored with --data."""
    gt = load_sequence(CROSSING).boxes
    folder = tmp_path / "results" / "fixtures" / "OtherTracker"
    folder.mkdir(parents=True)
    shifted = gt + np.array([3.0, 4.0, 0.0, 0.0])  # 5 px off everywhere
    (folder / "otb_Crossing.txt").write_text("".join("\t".join(f"{v:g}" for v in row) + "\n" for row in shifted))
    assert main(["report", str(tmp_path)]) == 1  # no dataset known
    assert main(["report", str(tmp_path), "--data", str(CROSSING)]) == 0
    assert "| OtherTracker | 0." in (tmp_path / "comparison.md").read_text()
    assert "| 1.000 | -" in (tmp_path / "comparison.md").read_text()  # all within 20 px, no speed recorded


def test_darkened_copy_equals_on_the_fly(evaluated: Path, tmp_path: Path) -> None:
    data = Path(json.loads((evaluated / "config.json").read_text())["data"])
    assert main(["darken", str(data / "crossing_short"), str(tmp_path / "dark"), "--seed", "1"]) == 0
    copied = (tmp_path / "dark" / "groundtruth_rect.txt").read_text()
    assert copied == (data / "crossing_short" / "groundtruth_rect.txt").read_text()
    assert main(["eval", str(tmp_path / "dark"), "-t", "default", "--out", str(tmp_path / "ev")]) == 0
    a = read_boxes(tmp_path / "ev" / "results" / "dark" / "default" / "dark.txt")
    b = read_boxes(evaluated / "results" / "tiny_dark1" / "default" / "crossing_short.txt")
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_bad_tracker_arguments(tmp_path: Path) -> None:
    assert main(["eval", str(CROSSING), "-t", "mystery", "--out", str(tmp_path)]) == 2
    assert main(["eval", str(CROSSING), "-t", "default", "-t", "default", "--out", str(tmp_path)]) == 2
    missing = tmp_path / "none.onnx"
    assert main(["eval", str(CROSSING), "-t", f"opencv_nano={missing},{missing}", "--out", str(tmp_path)]) == 1
    with pytest.raises(FileNotFoundError, match=r"none.onnx"):
        E.make_tracker(E.TrackerSpec.parse(f"opencv_nano={missing},{missing}"))


def test_darken_a_dataset_converts_layout(tmp_path: Path) -> None:
    """A UAV123-layout dataset becomes darkened OTB-style folders with the same boxes."""
    import cv2

    root = tmp_path / "UAV123"
    frames = root / "data_seq" / "UAV123" / "bike1"
    frames.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(3):
        cv2.imwrite(str(frames / f"{k + 1:06d}.jpg"), rng.integers(80, 200, (48, 64, 3), dtype=np.uint8))
    (root / "anno" / "UAV123").mkdir(parents=True)
    (root / "anno" / "UAV123" / "bike1.txt").write_text("1.5,2,10,12\nNaN,NaN,NaN,NaN\n3,4,10,12\n")
    assert main(["darken", str(root), str(tmp_path / "dark"), "--seed", "4"]) == 0
    seq = load_sequence(tmp_path / "dark" / "bike1")
    original = load_sequence(frames)
    np.testing.assert_array_equal(seq.boxes, original.boxes)
    assert seq.image(0).mean() < original.image(0).mean() / 3
    params = json.loads((tmp_path / "dark" / "bike1" / "night_params.json").read_text())
    assert params["seed"] == 4 and params["sequence"] == "bike1"
