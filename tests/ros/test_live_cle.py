"""Which reference the tracker node's CLE uses (mlkd_ros/live_cle.py): pure, no node."""

from __future__ import annotations

import numpy as np

from mlkd_ros.live_cle import CleMatcher

BOX = (20.0, 30.0, 11.0, 21.0)  # centre (25, 40)
SHAPE = (100, 200, 3)  # image centre (99.5, 49.5)


def test_live_reference_is_the_image_centre():
    cle = CleMatcher().box("h", 1, BOX, SHAPE, 0)
    assert cle.key == "h" and cle.xy == (-74.5, -9.5) and not cle.ground_truth  # an offset, not a CLE


def test_file_reference_by_receive_index_with_fallback():
    m = CleMatcher(np.array([[10, 20, 31, 41], [np.nan] * 4]))
    assert m.box("a", 1, BOX, SHAPE, 0).xy == (0.0, 0.0) and m.box("a", 1, BOX, SHAPE, 0).ground_truth
    assert not m.box("b", 2, BOX, SHAPE, 1).ground_truth  # unlabelled line: the image centre
    assert m.box("b", 2, BOX, SHAPE, 1).xy == (-74.5, -9.5)
    assert m.box("c", 3, BOX, SHAPE, 2).xy == (-74.5, -9.5)  # beyond the file


def test_topic_reference_waits_for_its_ground_truth():
    m = CleMatcher(gt_topic=True)
    assert m.box("early", 1, BOX, SHAPE, None) is None  # tracked before its ground truth came
    late = m.ground_truth(1, (15.0, 40.0, 10.0, 10.0))  # centre (19.5, 44.5)
    assert late.key == "early" and late.xy == (5.5, -4.5) and late.ground_truth
    assert m.ground_truth(2, (15.0, 40.0, 10.0, 10.0)) is None  # nobody waiting
    assert m.box("known", 2, BOX, SHAPE, None).xy == (5.5, -4.5)
    m.ground_truth(3, None)  # "no ground truth on this frame"
    assert m.box("unlabelled", 3, BOX, SHAPE, None) is None, "never against the image centre"


def test_memory_is_bounded():
    m = CleMatcher(gt_topic=True, keep=10)
    for stamp in range(100):
        m.box(stamp, stamp, BOX, SHAPE, None)
        m.ground_truth(1000 + stamp, BOX)
    assert len(m._waiting) == 10 and len(m._by_stamp) == 10
