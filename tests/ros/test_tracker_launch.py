"""The tracker node, started from the launch XML, tracks otb_Crossing streamed at 30 Hz."""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Point32, PointStamped, PolygonStamped
from sensor_msgs.msg import Image

from mlkd_model.metrics import iou
from mlkd_ros.boxes import polygon_to_box
from mlkd_ros.camera_frame import CAMERA_FRAME
from mlkd_ros.dds import CONTROL_QOS
from mlkd_ros.image_conversion import numpy_to_image

# Offline, the embedded NanoTrack v2 ONNX tracker reaches mean IoU 0.76 (min 0.52) on these 119
# frames. The node sees the same frames but may skip some under CPU load (the host is shared), which
# can only cost a little on this slow sequence: require the offline mean minus 0.15, and never < 0.55.
IOU_MARGIN = 0.15
IOU_FLOOR = 0.55


def start_tracker(launcher, probe, camera) -> tuple[list, list, object]:
    """The tracker node from the ground-station launch file, with the camera connected: returns the
    recorded tracker/box and /diagnostics messages and a publisher on tracker/init matched to it."""
    launcher.start("ground_station.launch.xml", ["tracker"])
    boxes = probe.record(PolygonStamped, "tracker/box", CONTROL_QOS)
    diags = probe.record(DiagnosticArray, "/diagnostics", CONTROL_QOS)
    init_pub = probe.node.create_publisher(PolygonStamped, "tracker/init", CONTROL_QOS)
    camera.wait_connected()
    assert probe.wait_matched(init_pub, 20)
    return boxes, diags, init_pub


def init_msg(header, box, corners: int = 2) -> PolygonStamped:
    x, y, w, h = (float(v) for v in box)
    pts = [(x, y), (x + w, y + h)] if corners == 2 else [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    msg = PolygonStamped(header=header)
    msg.polygon.points = [Point32(x=px, y=py) for px, py in pts]
    return msg


def offline_mean_iou(frames, gt) -> float:
    from mlkd_model.load import load_tracker

    tracker = load_tracker()
    tracker.init(frames[0], gt[0])
    boxes = [tracker.track(f)[0] for f in frames[1:]]
    return float(iou(np.asarray(boxes), gt[1:]).mean())


def status_of(diags: list) -> DiagnosticStatus:
    return diags[-1][1].status[0]


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_tracker_from_launch_matches_ground_truth(launcher, probe, camera, sequence):
    frames, gt = sequence
    launcher.start("ground_station.launch.xml", ["tracker"])
    boxes = probe.record(PolygonStamped, "tracker/box", CONTROL_QOS)
    offsets = probe.record(PointStamped, "tracker/offset", CONTROL_QOS)
    cles = probe.record(PointStamped, "tracker/cle", CONTROL_QOS)
    diags = probe.record(DiagnosticArray, "/diagnostics", CONTROL_QOS)
    init_pub = probe.node.create_publisher(PolygonStamped, "tracker/init", CONTROL_QOS)
    cam = camera
    cam.wait_connected()
    assert probe.spin_until(lambda: init_pub.get_subscription_count() > 0 and diags, 20), launcher.log("tracker")

    # Init names frame 0 by its stamp; it is sent after a few more frames, as an operator's click would be.
    first = {}

    def on_frame(i, msg):
        if i == 0:
            first["header"] = msg.header
        if i == 3:
            init_pub.publish(init_msg(first["header"], gt[0], corners=4))

    cam.stream(len(frames), on_frame=on_frame)
    streamed = [d for d in diags]  # what diagnostics said while frames were coming
    probe.spin(1.0)

    tracked = [(t, m) for t, m in boxes if m.polygon.points]
    assert len(tracked) >= 0.6 * len(frames), f"only {len(tracked)} boxes\n{launcher.log('tracker')[-3000:]}"
    index = []
    for _, m in tracked:
        key = (m.header.stamp.sec, m.header.stamp.nanosec)
        assert key in cam.sent, "a box header must be the header of an image we sent"
        assert m.header.frame_id == CAMERA_FRAME
        index.append(cam.sent[key])
    assert index[0] == 0, "the init must land on the frame its stamp names"
    pred = np.asarray([polygon_to_box(m.polygon) for _, m in tracked])
    node_iou = float(iou(pred[1:], gt[index[1:]]).mean())
    reference = offline_mean_iou(frames, gt)
    assert node_iou >= max(IOU_FLOOR, reference - IOU_MARGIN), (node_iou, reference)

    # Live (no ground truth): box centre minus image centre on tracker/offset, same header as the box;
    # tracker/cle carries only errors against a ground truth, so it stays silent.
    assert not cles and offsets
    _, cle = offsets[-1]
    key = (cle.header.stamp.sec, cle.header.stamp.nanosec)
    box = polygon_to_box(next(m for _, m in tracked if (m.header.stamp.sec, m.header.stamp.nanosec) == key).polygon)
    w = frames[0].shape[1]
    assert abs(cle.point.x - (box[0] + (box[2] - 1) / 2 - (w - 1) / 2)) < 1e-3
    assert abs(cle.point.z - np.hypot(cle.point.x, cle.point.y)) < 1e-3

    st = status_of(streamed)
    v = values(st)
    assert st.level == DiagnosticStatus.OK and v["state"] == "tracking", (st.message, v)
    # The stream has ended since: the track went stale (and is dropped after max_frame_gap).
    assert values(status_of(diags))["state"] in ("stale", "lost"), values(status_of(diags))
    processed, dropped = int(v["frames_processed"]), int(v["frames_dropped"])
    received = int(v["frames_received"])
    assert processed <= received and received + dropped <= len(frames)
    assert float(v["latency_ms"]) < 1000


def test_replay_launch_logs_cle_against_ground_truth(launcher, probe, camera, sequence, tmp_path):
    _, gt = sequence
    csv = tmp_path / "cle.csv"
    launcher.start(
        "replay.launch.xml", ["tracker", "cle_logger"], ground_truth_topic="tracker/ground_truth", cle_csv=str(csv)
    )
    gt_pub = probe.node.create_publisher(PolygonStamped, "tracker/ground_truth", CONTROL_QOS)
    init_pub = probe.node.create_publisher(PolygonStamped, "tracker/init", CONTROL_QOS)
    cles = probe.record(PointStamped, "tracker/cle", CONTROL_QOS)
    cam = camera
    cam.wait_connected()
    assert probe.spin_until(
        lambda: gt_pub.get_subscription_count() and probe.node.count_subscribers("tracker/cle") >= 2, 20
    )

    def on_frame(i, msg):
        gt_pub.publish(init_msg(msg.header, gt[i], corners=4))
        if i == 0:
            init_pub.publish(init_msg(msg.header, gt[0]))

    cam.stream(60, on_frame=on_frame)
    probe.spin(1.0)
    errors = np.asarray([m.point.z for _, m in cles])
    assert len(errors) >= 30
    # Against ground truth the CLE is the tracking error: a few pixels on this sequence (live it would be
    # the distance to the image centre, ~30-60 px here).
    assert np.median(errors) < 10, errors
    lines = csv.read_text().splitlines()
    assert lines[0] == "stamp,x,y,w,h,cle_x,cle_y,cle"
    assert len(lines) - 1 >= len(errors) - 5


def set_param(probe, name: str, value) -> bool:
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    if isinstance(value, str):
        pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    else:
        pv = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    req = SetParameters.Request(parameters=[Parameter(name=name, value=pv)])
    return probe.call(SetParameters, "tracker/set_parameters", req).results[0].successful


def test_redetect_policies(launcher, probe, camera, sequence):
    """Noise frames make the score collapse: `recover` reports lost then resumes, `stop` stays lost."""
    _, gt = sequence
    boxes, diags, init_pub = start_tracker(launcher, probe, camera)
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, camera.height * camera.width * 3, dtype=np.uint8) for _ in range(4)]

    def noise_frames(n: int) -> None:
        for i in range(n):
            msg = Image(height=camera.height, width=camera.width, encoding="bgr8", step=camera.width * 3)
            msg.data = numpy_to_image(noise[i % 4].reshape(camera.height, camera.width, 3)).data
            camera.publish(msg)
            probe.spin(1 / 30)

    def start_tracking() -> None:
        camera.index = 0
        camera.stream(5, on_frame=lambda i, m: i == 0 and init_pub.publish(init_msg(m.header, gt[0])))
        probe.spin(0.2)

    for policy in ("recover", "stop"):
        assert set_param(probe, "redetect_policy", policy)
        assert set_param(probe, "lost_frames", 5)
        start_tracking()
        assert boxes and boxes[-1][1].polygon.points, policy
        noise_frames(12)
        probe.spin(0.3)
        assert not boxes[-1][1].polygon.points, f"{policy}: noise must end in 'lost' (empty polygon)"
        probe.spin_until(lambda: diags and values(status_of(diags))["state"] == "lost", 3)
        assert status_of(diags).level == DiagnosticStatus.WARN
        n = len(boxes)
        camera.index = 20
        camera.stream(20)
        probe.spin(0.3)
        resumed = [m for _, m in boxes[n:] if m.polygon.points]
        assert bool(resumed) == (policy == "recover"), policy
    assert not set_param(probe, "redetect_policy", "bogus")


def test_cle_reference_from_ground_truth_file_and_topic(env, domain_id, tmp_path):
    """Replay references: from a file, line i is the reference of the i-th image (an unlabelled line falls
    back to the image centre, as live, and goes out on tracker/offset). From a topic, a frame tracked before
    its ground truth arrived is measured when it arrives (the two race over DDS), never against the image
    centre.
    """
    import rclpy
    from geometry_msgs.msg import Point32, Polygon, PolygonStamped
    from rclpy.context import Context
    from rclpy.parameter import Parameter
    from std_msgs.msg import Header

    from mlkd_ros.tracker_node import TrackerNode

    class Recorder:
        def __init__(self):
            self.points = []

        def publish(self, msg):
            self.points.append((msg.header.stamp.sec, msg.point.x, msg.point.y))

    gt = tmp_path / "groundtruth_rect.txt"
    gt.write_text("10,20,31,41\nnan,nan,nan,nan\n")
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    from_file = TrackerNode(context=ctx, parameter_overrides=[Parameter("ground_truth_file", value=str(gt))])
    from_topic = TrackerNode(context=ctx, parameter_overrides=[Parameter("ground_truth_topic", value="gt")])
    try:
        box = (20.0, 30.0, 11.0, 21.0)  # centre (25, 40)
        from_file.cle_pub, from_file.offset_pub = Recorder(), Recorder()
        for i in range(3):
            from_file._publish(Header(), box, 1.0, (100, 200, 3), i)
        # frame 0 against its line (a CLE); frame 1 unlabelled and frame 2 beyond the file: offsets from the
        # image centre (99.5, 49.5), on their own topic
        assert from_file.cle_pub.points == [(0, 0.0, 0.0)]
        assert from_file.offset_pub.points == [(0, -74.5, -9.5), (0, -74.5, -9.5)]

        from_topic.cle_pub, from_topic.offset_pub = Recorder(), Recorder()
        early, late = Header(), Header()
        early.stamp.sec, late.stamp.sec = 1, 2
        from_topic._publish(early, box, 1.0, (100, 200, 3))  # tracked before its ground truth came
        assert from_topic.cle_pub.points == []
        corners = Polygon(points=[Point32(x=15.0, y=40.0), Point32(x=25.0, y=50.0)])  # centre (19.5, 44.5)
        from_topic._on_gt(PolygonStamped(header=early, polygon=corners))
        from_topic._on_gt(PolygonStamped(header=late, polygon=corners))
        from_topic._publish(late, box, 1.0, (100, 200, 3))
        assert from_topic.cle_pub.points == [(1, 5.5, -4.5), (2, 5.5, -4.5)] and not from_topic.offset_pub.points
    finally:
        for node in (from_file, from_topic):
            node.destroy_node()
        rclpy.shutdown(context=ctx)


def test_slow_model_keeps_only_the_newest_frame(launcher, probe, camera, sequence):
    """With the enhancer (~60 ms a frame on CPU) at 30 Hz the node cannot track every frame: it tracks
    the newest, never a queue, and every frame it skipped is counted as dropped."""
    _, gt = sequence
    launcher.start("ground_station.launch.xml", ["tracker"], enhance="true")
    boxes = probe.record(PolygonStamped, "tracker/box", CONTROL_QOS)
    diags = probe.record(DiagnosticArray, "/diagnostics", CONTROL_QOS)
    init_pub = probe.node.create_publisher(PolygonStamped, "tracker/init", CONTROL_QOS)
    camera.wait_connected()
    assert probe.wait_matched(init_pub, 20)
    sent = 60
    camera.stream(sent, on_frame=lambda i, m: i == 0 and init_pub.publish(init_msg(m.header, gt[0])))
    n_diags = len(diags)
    assert probe.spin_until(lambda: len(diags) > n_diags + 1, 10)
    v = values(status_of(diags))
    received, processed, dropped = int(v["frames_received"]), int(v["frames_processed"]), int(v["frames_dropped"])
    assert dropped > 0 and processed < sent - 1, v
    # Over shared memory nothing is lost on the way: each frame was either tracked (or the init's) or replaced.
    assert received + dropped == sent, v
    assert processed + 1 == received, v  # the init frame is not tracked again
    # Newest only: the last box is for the last frame sent, not for one waiting in a queue.
    last = [m for _, m in boxes if m.polygon.points][-1].header.stamp
    assert camera.sent[(last.sec, last.nanosec)] == sent - 1
