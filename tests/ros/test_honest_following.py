"""The drone holds when the tracker is not sure: tracker and follow controller as processes over DDS.

The two-car scene (tests/two_cars.py): the followed car drives, leaves the frame while a similar car stays
parked, then comes back. tracker/status must say tracking, then leave it once the car is gone; cmd_vel must
be zero on every frame whose status is not `tracking`, and tracker/box empty on those frames.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import Camera
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PolygonStamped, Twist
from std_srvs.srv import SetBool
from test_safe_following import init_msg, moving
from two_cars import CAR_A, CAR_B, car, leave_and_return, scene

from mlkd_ros.dds import CONTROL_QOS
from mlkd_ros.topics import STATUS_TOPIC


@pytest.fixture
def two_cars(shared):
    images, truth = scene(len(leave_and_return()), leave_and_return(), (250, 150), car(CAR_A), car(CAR_B))
    return images, truth


def test_follow_controller_holds_while_the_tracker_is_uncertain_or_lost(launcher, probe, two_cars):
    images, truth = two_cars
    h, w = images[0].shape[:2]
    camera = Camera(probe, images)
    launcher.start("ground_station.launch.xml", ["tracker", "follow_controller"], image_width=w, image_height=h)
    cmds = probe.record(Twist, "cmd_vel", CONTROL_QOS)
    boxes = probe.record(PolygonStamped, "tracker/box", CONTROL_QOS)
    statuses = probe.record(DiagnosticArray, STATUS_TOPIC, CONTROL_QOS)
    init_pub = probe.node.create_publisher(PolygonStamped, "tracker/init", CONTROL_QOS)
    camera.wait_connected()
    assert probe.wait_matched(init_pub, 20)
    assert probe.call(SetBool, "follow/enable", SetBool.Request(data=True)).success

    def on_frame(i, m):
        if i == 0:
            init_pub.publish(init_msg(m.header, truth[0]))

    camera.stream(len(images), rate=20, on_frame=on_frame)
    probe.spin(0.5)
    state_of = {}  # frame index -> (state, confidence)
    for _, msg in statuses:
        index = camera.sent.get((msg.header.stamp.sec, msg.header.stamp.nanosec))
        values = {kv.key: kv.value for kv in msg.status[0].values}
        state_of[index] = (values["state"], float(values["confidence"]))
        assert msg.status[0].message == values["state"] and {"x", "y", "w", "h", "score"} <= set(values)
    states = [state_of.get(i, ("missing", np.nan))[0] for i in range(len(images))]
    assert states[1:38].count("tracking") >= 34, states[:40]
    assert "uncertain" in states[43:100] and "tracking" not in states[83:90], states[43:100]
    # every frame that was not `tracking`: an empty box with that frame's stamp
    not_sure = {i for i, s in enumerate(states) if s in ("uncertain", "lost")}
    for _, m in boxes:
        i = camera.sent.get((m.header.stamp.sec, m.header.stamp.nanosec))
        if i in not_sure:
            assert not m.polygon.points, f"frame {i} is {states[i]} but carried a box"
    # and no motion from the first frame that was not sure until the last one
    first = min(not_sure)
    t_first = next(t for t, m in statuses if camera.sent.get((m.header.stamp.sec, m.header.stamp.nanosec)) == first)
    back = [i for i in range(first, len(images)) if states[i] == "tracking"]
    t_back = (
        next(t for t, m in statuses if camera.sent.get((m.header.stamp.sec, m.header.stamp.nanosec)) == back[0])
        if back
        else time.monotonic()
    )
    late = [t for t, c in cmds if t_first + 0.2 < t < t_back and moving(c)]
    assert not late, f"{len(late)} moving commands while the tracker was not sure"
    assert launcher.alive("tracker") and launcher.alive("follow_controller")
