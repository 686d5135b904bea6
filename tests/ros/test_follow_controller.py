"""Follow controller: signs (REP-103), limits, watchdog and enable gate — law alone and as a process."""

from __future__ import annotations

import signal
import time

import pytest
import yaml
from geometry_msgs.msg import PolygonStamped, Twist
from std_srvs.srv import SetBool, Trigger
from test_safe_following import set_params

from mlkd_ros.boxes import box_to_polygon
from mlkd_ros.dds import CONTROL_QOS
from mlkd_ros.follow_controller import MAX_BOX_AGE_S, FollowLaw

W, H = 640, 480
PARAMS = yaml.safe_load(open(__file__.rsplit("/tests/", 1)[0] + "/launch/follow_controller.yaml"))["/**"][
    "ros__parameters"
]
LIMITS = {"x": PARAMS["max_forward_speed"], "z": PARAMS["max_vertical_speed"], "yaw": PARAMS["max_yaw_rate"]}
SIZE = 80.0


def box_at(cx: float, cy: float, size: float = SIZE) -> tuple[float, float, float, float]:
    return cx - size / 2, cy - size / 2, size, size


# (name, box, axis, expected sign). Image y points down; +z is up; +yaw is left (counter-clockwise).
CASES = [
    ("left", box_at(100, H / 2), "yaw", +1),
    ("right", box_at(540, H / 2), "yaw", -1),
    ("above", box_at(W / 2, 60), "z", +1),
    ("below", box_at(W / 2, 420), "z", -1),
    ("too small", box_at(W / 2, H / 2, SIZE / 2), "x", +1),
    ("too large", box_at(W / 2, H / 2, SIZE * 2), "x", -1),
]


def law() -> FollowLaw:
    p = {k: float(v) for k, v in PARAMS.items() if not isinstance(v, str)}
    p.update(image_width=W, image_height=H)
    return FollowLaw(p)


@pytest.mark.parametrize("name,box,axis,sign", CASES, ids=[c[0] for c in CASES])
def test_law_signs_and_limits(name, box, axis, sign):
    lw = law()
    lw.step(box_at(W / 2, H / 2), 0.05)  # lock-on size
    for _ in range(100):
        out = lw.step(box, 0.05)
    assert out[axis] * sign > 0, (name, out)
    assert abs(out[axis]) <= LIMITS[axis] + 1e-9
    for other in set(out) - {axis}:
        assert out[other] == 0.0, (name, out)


def test_law_deadband_and_acceleration():
    lw = law()
    assert lw.step(box_at(W / 2 + 5, H / 2 - 5), 0.05) == {"yaw": 0.0, "z": 0.0, "x": 0.0}
    prev = 0.0
    for _ in range(40):  # far left: yaw rate ramps at most max_yaw_accel * dt per step
        yaw = lw.step(box_at(0, H / 2), 0.05)["yaw"]
        assert yaw - prev <= PARAMS["max_yaw_accel"] * 0.05 + 1e-9
        prev = yaw
    assert prev == pytest.approx(PARAMS["max_yaw_rate"])


def boxes_msg(probe, box) -> PolygonStamped:
    msg = PolygonStamped(polygon=box_to_polygon(box))
    msg.header.stamp = probe.node.get_clock().now().to_msg()
    return msg


def feed(probe, pub, box, seconds: float, rate: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pub.publish(boxes_msg(probe, box))
        probe.spin(1.0 / rate)


def is_zero(t: Twist) -> bool:
    return t.linear.x == t.linear.y == t.linear.z == t.angular.x == t.angular.y == t.angular.z == 0.0


def test_controller_process(launcher, probe):
    launcher.start("ground_station.launch.xml", ["follow_controller"], image_width=W, image_height=H)
    cmds = probe.record(Twist, "cmd_vel", CONTROL_QOS)
    pub = probe.node.create_publisher(PolygonStamped, "tracker/box", CONTROL_QOS)
    assert probe.wait_matched(pub, 20), launcher.log("follow_controller")

    feed(probe, pub, box_at(100, 60), 0.5)
    assert not cmds, "must not command anything before follow/enable"

    assert probe.call(SetBool, "follow/enable", SetBool.Request(data=True)).success
    feed(probe, pub, box_at(W / 2, H / 2), 0.3)  # lock-on at SIZE
    for name, box, axis, sign in CASES:
        cmds.clear()
        feed(probe, pub, box, 0.5)
        last = cmds[-1][1]
        value = {"x": last.linear.x, "z": last.linear.z, "yaw": last.angular.z}
        assert value[axis] * sign > 0, (name, value)
        for _, c in cmds:
            assert abs(c.linear.x) <= LIMITS["x"] + 1e-9 and abs(c.linear.z) <= LIMITS["z"] + 1e-9
            assert abs(c.angular.z) <= LIMITS["yaw"] + 1e-9 and c.linear.y == 0.0
        feed(probe, pub, box_at(W / 2, H / 2), 0.2)

    # Boxes stop arriving -> zero within the timeout (plus one control period and delivery slack).
    feed(probe, pub, box_at(100, 60), 0.4)
    assert not is_zero(cmds[-1][1])
    stopped = time.monotonic()
    assert probe.spin_until(lambda: cmds and cmds[-1][0] > stopped and is_zero(cmds[-1][1]), 3.0)
    assert cmds[-1][0] - stopped <= PARAMS["timeout"] + 1.0 / PARAMS["control_rate"] + 0.3
    # Lost target (empty polygon) -> zero at once.
    feed(probe, pub, box_at(100, 60), 0.4)
    feed(probe, pub, None, 0.2)
    assert is_zero(cmds[-1][1])
    # A NaN box is refused (logged once) and treated as no target: hover, node stays up.
    feed(probe, pub, box_at(100, 60), 0.4)
    feed(probe, pub, (float("nan"), 60.0, 80.0, 80.0), 0.3)
    assert is_zero(cmds[-1][1]) and launcher.alive("follow_controller")
    assert launcher.log("follow_controller").count("ignoring bad tracker/box") == 1
    # Disable: one zero, then silence even while boxes keep coming.
    assert probe.call(SetBool, "follow/enable", SetBool.Request(data=False)).success
    probe.spin(0.2)
    n = len(cmds)
    feed(probe, pub, box_at(100, 60), 0.4)
    assert len(cmds) == n and is_zero(cmds[-1][1])
    # Ctrl-C (what ros2 launch sends) while following: a last zero goes out before the node exits.
    assert probe.call(SetBool, "follow/enable", SetBool.Request(data=True)).success
    feed(probe, pub, box_at(100, 60), 0.4)
    assert not is_zero(cmds[-1][1])
    # Boxes keep coming until the process is gone (so no box timeout can be what zeroes it), however long the
    # machine's load makes the way out take.
    proc = launcher.procs["follow_controller"]
    proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 5.0
    while proc.poll() is None and time.monotonic() < deadline:
        feed(probe, pub, box_at(100, 60), 0.1)
    probe.spin(0.3)
    assert proc.poll() == 0 and is_zero(cmds[-1][1]), (proc.poll(), cmds[-3:])


def test_tracker_stopped_or_killed_means_hover(launcher, probe, camera, sequence):
    frames, gt = sequence
    h, w = frames[0].shape[:2]
    launcher.start("ground_station.launch.xml", ["tracker", "follow_controller"], image_width=w, image_height=h)
    cmds = probe.record(Twist, "cmd_vel", CONTROL_QOS)
    init_pub = probe.node.create_publisher(PolygonStamped, "tracker/init", CONTROL_QOS)
    camera.wait_connected()
    assert probe.wait_matched(init_pub, 20)
    assert probe.call(SetBool, "follow/enable", SetBool.Request(data=True)).success

    def init_on_first(i, msg):
        if i == 0:
            init_pub.publish(PolygonStamped(header=msg.header, polygon=box_to_polygon(gt[0])))

    camera.stream(30, on_frame=init_on_first)
    # The Crossing pedestrian is right of centre: the drone yaws right (negative).
    assert any(c.angular.z < 0 for _, c in cmds), [c.angular.z for _, c in cmds]

    # Stopped: tracker/reset publishes a lost box; the controller hovers within its timeout.
    assert probe.call(Trigger, "tracker/reset", Trigger.Request()).success
    stopped = time.monotonic()
    camera.stream(int(30 * (PARAMS["timeout"] + 0.3)))
    after = [c for t, c in cmds if t > stopped + PARAMS["timeout"] + 0.1]
    assert after and all(is_zero(c) for c in after)

    # Killed: SIGKILL mid-track; no more boxes -> zero within the timeout. The reset may have outlasted
    # max_frame_gap, which disables following: the operator re-enables after the new init.
    camera.index = 30
    camera.stream(
        5,
        on_frame=lambda i, m: (
            i == 0 and init_pub.publish(PolygonStamped(header=m.header, polygon=box_to_polygon(gt[30])))
        ),
    )
    assert probe.call(SetBool, "follow/enable", SetBool.Request(data=True)).success
    camera.stream(10)
    assert not is_zero(cmds[-1][1])
    launcher.procs["tracker"].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    probe.spin(PARAMS["timeout"] + 0.4)
    after = [c for t, c in cmds if t > killed + PARAMS["timeout"] + 1.0 / PARAMS["control_rate"] + 0.1]
    assert after and all(is_zero(c) for c in after)
    assert launcher.alive("follow_controller")


def test_gimbal_mode_centres_vertically_with_the_camera():
    p = {k: float(v) for k, v in PARAMS.items() if not isinstance(v, str)}
    p.update(image_width=W, image_height=H)
    lw = FollowLaw(p, gimbal=True)
    lw.step(box_at(W / 2, H / 2), 0.05)
    pitches = []
    for _ in range(40):  # target below centre: the camera tilts down, the drone does not descend
        out = lw.step(box_at(W / 2, 420), 0.05)
        pitches.append(lw.pitch)
        assert out["z"] == 0.0
    assert pitches == sorted(pitches, reverse=True) and pitches[-1] < -20
    for _ in range(400):
        lw.step(box_at(W / 2, 470), 0.05)
    assert lw.pitch == PARAMS["gimbal_min_deg"], "clamped at the lowest pitch"
    for _ in range(400):  # above centre: back up, never past level
        lw.step(box_at(W / 2, 10), 0.05)
    assert lw.pitch == PARAMS["gimbal_max_deg"]


def test_no_motion_on_a_box_older_than_the_hard_cap(launcher, probe):
    # timeout 10 s with max_frame_gap 60 s followed a box 9.9 s old; a command also lasts one control
    # period, so 0.9 s at 5 Hz would act on a 1.1 s old box. Neither starts: exit 2 and the reason.
    stale = {"timeout": 10.0, "max_frame_gap": 60.0}
    for values, reason in ((stale, "out of range"), ({"timeout": 0.9, "control_rate": 5.0}, "1 s cap")):
        launcher.start("ground_station.launch.xml", ["follow_controller"], params={"follow_controller": values})
        proc = launcher.procs["follow_controller"]
        assert probe.spin_until(lambda p=proc: p.poll() is not None, 30), (values, "must not start")
        log = launcher.log("follow_controller")
        assert proc.returncode == 2 and "Traceback" not in log, (values, proc.returncode, log[-2000:])
        assert "not starting" in log and "timeout" in log and reason in log, log[-2000:]

    launcher.start("ground_station.launch.xml", ["follow_controller"], image_width=W, image_height=H)
    cmds = probe.record(Twist, "cmd_vel", CONTROL_QOS)
    pub = probe.node.create_publisher(PolygonStamped, "tracker/box", CONTROL_QOS)
    assert probe.wait_matched(pub, 20), launcher.log("follow_controller")
    # At run time (one value at a time: rclpy applies a request's values one by one), each is refused.
    for change in ({"timeout": 10.0}, {"timeout": 0.98}, {"control_rate": 1.5}, {"max_frame_gap": 0.4}):
        result = set_params(probe, "follow_controller", **change)
        assert not result.successful and "timeout" in result.reason, (change, result.reason)
    assert probe.call(SetBool, "follow/enable", SetBool.Request(data=True)).success
    feed(probe, pub, box_at(W / 2, H / 2), 0.3)  # lock-on
    feed(probe, pub, box_at(100, 60), 0.5)
    assert not is_zero(cmds[-1][1])
    stopped = time.monotonic()
    probe.spin(MAX_BOX_AGE_S + 1.0)
    late = [t - stopped for t, c in cmds if t > stopped and not is_zero(c)]
    assert not late or max(late) < MAX_BOX_AGE_S, late  # the default timeout (0.5 s) still applies
