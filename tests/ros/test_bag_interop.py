"""Bags written the way `ros2 bag record` writes them (rosbags library; absolute names; raw or JPEG; mcap
with zstd + CRC chunks, or sqlite3) replay offline and through the bag_player node; damaged ones as
specified: a cut mcap gives its complete messages with a warning, a flipped bit in a chunk is an error, a
bag without the camera topic fails clearly."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from geometry_msgs.msg import PolygonStamped
from ros2_bags import chunk_payload_offsets, write_ros2_bag

from mlkd_model.cli import main as mlkd
from mlkd_model.metrics import iou
from mlkd_ros.bag import BagError, read_frames, read_messages
from mlkd_ros.boxes import polygon_to_box
from mlkd_ros.dds import CONTROL_QOS

N = 40  # frames of otb_Crossing used: enough to judge tracking, short enough for a 2-core CI


@pytest.fixture(scope="module")
def clip(sequence):
    frames, gt = sequence
    return frames[:N], gt[:N]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("image", ["raw", "compressed"])
def test_ros2_style_bag_replays_offline(clip, tmp_path, storage, image):
    frames, gt = clip
    bag = write_ros2_bag(tmp_path / "flight", frames, gt, storage, image)
    topics = {m.topic for m in read_messages(bag)}
    assert topics == {f"camera/image{'/compressed' if image == 'compressed' else ''}", "ground_truth/box"}
    got = list(read_frames(bag))
    assert len(got) == N
    err = np.abs(got[7][1].astype(int) - frames[7]).mean()
    assert err == 0 if image == "raw" else err < 3  # JPEG q90: close, not equal
    assert mlkd(["replay", str(bag), "--offline"]) == 0
    summary = json.loads((tmp_path / "flight_cle.json").read_text())
    assert summary["MLKD-Track"]["frames_scored"] == N and summary["MLKD-Track"]["precision_20px"] > 0.9


def test_mcap_chunk_crc_catches_flipped_bits(clip, tmp_path):
    frames, gt = clip
    bag = write_ros2_bag(tmp_path / "flight", frames, gt, "mcap", zstd=False)
    assert len(list(read_frames(bag))) == N  # the CRCs are right
    mcap = next(bag.glob("*.mcap"))
    offset, length = chunk_payload_offsets(mcap)[0]
    data = bytearray(mcap.read_bytes())
    data[offset + length // 2] ^= 0x04  # one bit in the middle of a frame
    mcap.write_bytes(bytes(data))
    with pytest.raises(BagError, match="fails its CRC check"):
        list(read_frames(bag))
    assert mlkd(["replay", str(bag), "--offline"]) == 2


def test_mcap_zstd_flip_is_an_error(clip, tmp_path):
    frames, gt = clip
    bag = write_ros2_bag(tmp_path / "flight", frames, gt, "mcap")
    mcap = next(bag.glob("*.mcap"))
    offset, length = chunk_payload_offsets(mcap)[0]
    data = bytearray(mcap.read_bytes())
    data[offset + length // 2] ^= 0x04
    mcap.write_bytes(bytes(data))
    with pytest.raises(BagError, match="corrupt"):
        list(read_frames(bag))


def test_cut_ros2_mcap_keeps_complete_frames(clip, tmp_path, caplog):
    frames, gt = clip
    bag = write_ros2_bag(tmp_path / "flight", frames, gt, "mcap", image="compressed")
    mcap = next(bag.glob("*.mcap"))
    os.truncate(mcap, int(mcap.stat().st_size * 0.6))
    (bag / "metadata.yaml").unlink()  # killed before closing: no metadata either
    got = list(read_frames(bag))
    assert 0 < len(got) < N
    assert "cut short" in caplog.text
    assert all(np.abs(img.astype(int) - frames[i]).mean() < 3 for i, (_, img) in enumerate(got))


def test_bag_without_camera_fails_clearly(clip, tmp_path, caplog):
    frames, gt = clip
    bag = write_ros2_bag(tmp_path / "flight", frames, gt, "mcap", image="none")
    assert mlkd(["replay", str(bag), "--offline"]) == 2
    assert "has no /camera/image or /camera/image/compressed messages" in caplog.text


def test_bag_player_fails_on_a_bag_without_camera(clip, launcher, tmp_path):
    frames, gt = clip
    bag = write_ros2_bag(tmp_path / "flight", frames, gt, "sqlite3", image="none")
    procs = launcher.start("replay.launch.xml", ["bag_player"], bag=str(bag))
    assert procs["bag_player"].wait(60) == 2
    assert "has no /camera/image or /camera/image/compressed" in launcher.log("bag_player")


def test_bag_player_without_bag_fails_clearly(launcher):
    procs = launcher.start("replay.launch.xml", ["bag_player"])
    assert procs["bag_player"].wait(60) == 2
    assert "no bag given" in launcher.log("bag_player")


@pytest.mark.parametrize("storage, image", [("mcap", "compressed"), ("sqlite3", "raw")])
def test_ros2_style_bag_through_the_player(clip, launcher, probe, tmp_path, storage, image):
    """bag_player -> tracker (replay.launch.xml), bag with absolute names; the player inits on the bag's
    ground truth; the tracker's boxes follow it. `rate:=1` is a typed launch value for a float parameter."""
    frames, gt = clip
    bag = write_ros2_bag(tmp_path / "flight", frames, gt, storage, image)
    boxes = probe.record(PolygonStamped, "tracker/box", CONTROL_QOS)
    launcher.start("replay.launch.xml", ["tracker"], bag=str(bag), image_transport=image)
    assert probe.spin_until(lambda: "model loaded" in launcher.log("tracker"), 30), launcher.log("tracker")
    procs = launcher.start("replay.launch.xml", ["bag_player"], bag=str(bag), wait_for="[camera/image]", rate="1")
    assert probe.spin_until(lambda: procs["bag_player"].poll() is not None, 60), launcher.log("bag_player")
    probe.spin(1.0)
    assert procs["bag_player"].returncode == 0, launcher.log("bag_player")
    tracked = [m for _, m in boxes if m.polygon.points]
    assert len(tracked) >= 0.8 * N, (len(tracked), launcher.log("tracker")[-2000:])
    stamps = {1_750_000_000_000_000_000 + i * 33_333_333: i for i in range(N)}
    index = [stamps[m.header.stamp.sec * 10**9 + m.header.stamp.nanosec] for m in tracked]
    pred = np.array([polygon_to_box(m.polygon) for m in tracked])
    assert float(iou(pred, gt[index]).mean()) > 0.6


def test_compressed_helper_matches_cv2(clip):
    from ros2_bags import compressed_msg

    msg = compressed_msg(clip[0][0], 5)
    assert cv2.imdecode(np.asarray(msg.data), cv2.IMREAD_COLOR).shape == clip[0][0].shape
