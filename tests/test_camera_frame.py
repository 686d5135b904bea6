"""Images name the REP-103 optical frame (mlkd_ros/camera_frame.py); bags with any other frame_id still read."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from shared_paths import REPO

from mlkd_ros import node_help
from mlkd_ros.bag import (
    GT_TOPIC,
    IMAGE_TOPIC,
    BagWriter,
    bag_from_frames,
    box_msg,
    image_msg,
    read_boxes,
    read_frames,
    read_messages,
)
from mlkd_ros.camera_frame import CAMERA_FRAME


def test_the_camera_frame_is_an_optical_frame():
    assert CAMERA_FRAME.endswith("_optical_frame")


def test_bag_from_frames_writes_the_optical_frame(tmp_path):
    (tmp_path / "seq" / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(tmp_path / "seq" / "img" / f"{i:04d}.png"), rng.integers(0, 255, (48, 64, 3), np.uint8))
    (tmp_path / "seq" / "groundtruth_rect.txt").write_text("10,10,20,20\n11,10,20,20\n12,10,20,20\n")
    assert bag_from_frames(tmp_path / "seq", tmp_path / "bag") == 3
    frames = {m.topic: m.decode().header.frame_id for m in read_messages(tmp_path / "bag")}
    assert frames == {IMAGE_TOPIC: CAMERA_FRAME, GT_TOPIC: CAMERA_FRAME}


@pytest.mark.parametrize("frame_id", ["camera", "", "drone1/front_camera_optical_frame"])
def test_bags_with_another_frame_id_read_the_same(tmp_path, frame_id):
    """Older bags (frame_id "camera"), or a bag from another camera driver: frame_id is never a filter."""
    bgr = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    t = 1_700_000_000_000_000_000
    image, box = image_msg(bgr, t), box_msg((1.0, 2.0, 3.0, 4.0), t)
    image.header.frame_id = box.header.frame_id = frame_id
    with BagWriter(tmp_path / "bag") as w:
        w.write_msg(IMAGE_TOPIC, image, t)
        w.write_msg(GT_TOPIC, box, t)
    ((stamp, got),) = read_frames(tmp_path / "bag")
    assert stamp == t and np.array_equal(got, bgr)
    assert np.array_equal(read_boxes(tmp_path / "bag", GT_TOPIC)[t], [1, 2, 3, 4])


def test_node_help_shows_the_frame_value():
    """`olympe_bridge --help` reads its parameters statically; a default named by a constant shows its value."""
    params = {name: default for name, default, *_ in node_help.parameters(REPO / "mlkd_ros" / "olympe_bridge.py")}
    assert params["frame_id"] == repr(CAMERA_FRAME)
    names = [name for name, *_ in node_help.parameters(REPO / "mlkd_ros" / "tracker_node.py")]
    assert len(names) == len(set(names)), "a tuple of parameter names is not a parameter"
    player = {name: default for name, default, *_ in node_help.parameters(REPO / "mlkd_ros" / "bag_player.py")}
    assert player["wait_for"] == "['camera/image']"  # constants inside a list default too
