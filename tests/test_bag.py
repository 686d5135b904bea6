"""Bag tools and CLE report: bag-from-frames (mcap, sqlite3), truncated/corrupt bags, offline replay + Fig. 5 plot."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mlkd_model.cli import main as mlkd
from mlkd_ros.bag import (
    BOX_TOPIC,
    GT_TOPIC,
    IMAGE_TOPIC,
    BagError,
    BagWriter,
    bag_from_frames,
    box_msg,
    image_msg,
    read_boxes,
    read_frames,
)
from mlkd_ros.bag_player import default_init
from mlkd_ros.boxes import load_ground_truth
from mlkd_ros.cle import evaluate

CROSSING = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sequences" / "fixtures" / "otb_Crossing"


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bags")
    out = {}
    for storage in ("mcap", "sqlite3"):
        out[storage] = root / f"crossing_{storage}"
        bag_from_frames(CROSSING, out[storage], storage=storage)
    return out


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_from_frames_round_trip(bags, storage):
    bag = bags[storage]
    frames = list(read_frames(bag))
    images = sorted((CROSSING / "img").glob("*.jpg"))
    assert len(frames) == len(images) == 120
    stamps = [s for s, _ in frames]
    assert np.allclose(np.diff(stamps), 1e9 / 30, atol=1)  # 30 fps timing
    for (_, img), path in zip(frames[::37], images[::37], strict=True):
        assert np.array_equal(img, cv2.imread(str(path)))  # lossless: the decoded JPEG itself
    gt = read_boxes(bag, GT_TOPIC)
    want = load_ground_truth(CROSSING / "groundtruth_rect.txt")
    assert np.allclose([gt[s] for s in stamps], want)


def _damage(bags, tmp_path: Path, storage: str, damage: str) -> Path:
    bag = tmp_path / "bag"
    shutil.copytree(bags[storage], bag)
    data = next(p for p in bag.iterdir() if p.name != "metadata.yaml")
    if damage == "truncated":  # what a recorder killed mid-flight (or a partial copy) leaves
        os.truncate(data, data.stat().st_size // 2)
    elif damage == "garbage":
        with data.open("r+b") as f:
            f.write(os.urandom(4096))
    else:
        (bag / "metadata.yaml").unlink()
    return bag


@pytest.mark.parametrize(
    "storage, damage",
    [("sqlite3", "truncated"), ("sqlite3", "garbage"), ("sqlite3", "no_metadata"), ("mcap", "garbage")],
)
def test_damaged_bag_is_a_clear_error(bags, tmp_path, storage, damage, caplog):
    bag = _damage(bags, tmp_path, storage, damage)
    with pytest.raises(BagError, match=r"bag .* (truncated|corrupt)"):
        list(read_frames(bag))
    assert mlkd(["replay", str(bag), "--offline"]) == 2
    assert "corrupt" in caplog.text


def test_cut_mcap_replays_its_complete_messages(bags, tmp_path, caplog):
    """A flight cut short (crash, power loss): every complete message is used, with a warning."""
    bag = _damage(bags, tmp_path, "mcap", "truncated")
    frames = list(read_frames(bag))
    assert 50 <= len(frames) < 120  # half the file: about half the frames, each one whole
    whole = dict(read_frames(bags["mcap"]))
    assert all(np.array_equal(img, whole[s]) for s, img in frames)
    assert "is cut short" in caplog.text
    assert mlkd(["replay", str(bag), "--offline"]) == 0
    assert json.loads((tmp_path / "bag_cle.json").read_text())["MLKD-Track"]["frames_scored"] == len(frames)


def test_mcap_without_metadata_is_read_from_its_data(bags, tmp_path):
    """`ros2 bag record` killed before it wrote metadata.yaml: the mcap alone is enough."""
    bag = _damage(bags, tmp_path, "mcap", "no_metadata")
    assert len(list(read_frames(bag))) == 120


def test_missing_bag(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        list(read_frames(tmp_path / "nope"))


def test_cle_metrics_known_offsets():
    gt = np.array([[10, 10, 20, 20]] * 4 + [[np.nan] * 4], dtype=float)
    near = gt + np.array([3, 4, 0, 0])  # CLE 5 px
    far = gt + np.array([30, 40, 0, 0])  # CLE 50 px
    lost = near.copy()
    lost[1] = np.nan
    res = {t.name: t for t in evaluate(gt, {"near": near, "far": far, "lost": lost})}
    assert np.allclose(res["near"].cle[:4], 5.0) and np.isnan(res["near"].cle[4])
    assert res["near"].precision == 1.0 and res["far"].precision == 0.0
    assert res["lost"].precision == 0.75  # a frame without a box fails
    assert res["near"].n_frames == 4 and res["near"].n_excluded == 1


def test_offline_replay_report(bags, tmp_path):
    bag = tmp_path / "flight"
    shutil.copytree(bags["mcap"], bag)
    # Two "trackers" on one plot: the embedded model, and a cle_logger CSV of boxes shifted by 25 px.
    shifted = tmp_path / "shifted.csv"
    stamps = [s for s, _ in read_frames(bag)]
    gt = load_ground_truth(CROSSING / "groundtruth_rect.txt")
    lines = ["stamp,x,y,w,h,cle_x,cle_y,cle"]
    lines += [
        f"{s // 10**9}.{s % 10**9:09d},{b[0] + 25:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f},,,"
        for s, b in zip(stamps, gt, strict=True)
    ]
    shifted.write_text("\n".join(lines) + "\n")
    assert mlkd(["replay", str(bag), "--offline", "--cle-csv", f"shifted={shifted}"]) == 0
    summary = json.loads((tmp_path / "flight_cle.json").read_text())
    assert summary["MLKD-Track"]["precision_20px"] > 0.9  # Crossing is an easy daytime sequence
    assert summary["MLKD-Track"]["frames_scored"] == 120
    assert summary["shifted"]["precision_20px"] == 0.0
    assert summary["shifted"]["mean_cle_px"] == pytest.approx(25.0, abs=0.01)
    png = cv2.imread(str(tmp_path / "flight_cle.png"))
    assert png is not None and png.shape[1] > 600
    rows = (tmp_path / "flight_cle.csv").read_text().splitlines()
    assert len(rows) == 121 and rows[0].startswith("frame,stamp,gt_x") and "shifted_cle" in rows[0]


def test_replay_init_order(tmp_path):
    """The replay starts on --init, else the first ground-truth box, else the live tracker's first recorded box."""
    bag = tmp_path / "flight"
    frame = np.zeros((60, 80, 3), np.uint8)
    stamps = np.array([1_000 + i * 33_000_000 for i in range(5)])
    with BagWriter(bag) as w:
        for i, t in enumerate(stamps):
            w.write_msg(IMAGE_TOPIC, image_msg(frame, t), t)
            live = None if i < 2 else (10 + i, 20, 8, 9)  # lost for two frames, then tracking
            w.write_msg(BOX_TOPIC, box_msg(live, t), t + 5_000_000)  # the image's header, logged later
    gt = np.array([(1, 2, 3, 4)] * 5, dtype=float)
    assert default_init(bag, stamps, None, "5,6,7,8") == (0, (5.0, 6.0, 7.0, 8.0))
    assert default_init(bag, stamps, gt) == (0, (1.0, 2.0, 3.0, 4.0))
    assert default_init(bag, stamps, None) == (2, (12.0, 20.0, 8.0, 9.0))
    gt[0] = np.nan  # no ground truth on the first frame: fall back to the recording
    assert default_init(bag, stamps, gt) == (2, (12.0, 20.0, 8.0, 9.0))
