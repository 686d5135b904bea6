"""Bad input sent for real: each gets a clear error (logged once, diagnostics ERROR); tracking goes on."""

from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Point32, PolygonStamped
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import Image
from test_tracker_launch import start_tracker

from mlkd_ros.boxes import box_to_polygon
from mlkd_ros.dds import CONTROL_QOS


def errors_with(diags, text: str) -> list:
    return [s for _, m in diags for s in m.status if s.level == DiagnosticStatus.ERROR and text in s.message]


def image(camera, **fields) -> Image:
    msg = Image(height=camera.height, width=camera.width, encoding="bgr8", step=camera.width * 3)
    msg.data = camera.data[0]
    for k, v in fields.items():
        setattr(msg, k, v)
    return msg


def _poly(points) -> PolygonStamped:
    msg = PolygonStamped()
    msg.polygon.points = [Point32(x=float(x), y=float(y)) for x, y in points]
    return msg


def test_bad_inputs_are_reported_and_tracking_continues(launcher, probe, camera, sequence):
    _, gt = sequence
    boxes, diags, init_pub = start_tracker(launcher, probe, camera)
    camera.stream(
        3,
        on_frame=lambda i, m: (
            i == 0 and init_pub.publish(PolygonStamped(header=m.header, polygon=box_to_polygon(gt[0])))
        ),
    )
    probe.spin(0.3)
    assert any(m.polygon.points for _, m in boxes), launcher.log("tracker")

    w, h = camera.width, camera.height
    bad_images = {
        "image data is": image(camera, data=camera.data[0][: w * h * 3 - 7]),  # truncated
        "needs step x height": image(camera, step=w * 3 + 4),  # step claims padding the data lacks
        "is smaller than width": image(camera, step=w * 3 - 3),  # step smaller than a row
        "unsupported image encoding": image(camera, encoding="bayer_rggb8"),
    }
    nan = float("nan")
    bad_inits = {
        "outside": [(w + 10, h + 10), (w + 50, h + 60)],
        "positive width and height": [(50, 50), (50, 90)],
        "NaN": [(nan, 10), (40, 60)],
        "2 corner points or 4": [(10, 10), (20, 20), (30, 10)],
    }
    for text, msg in bad_images.items():
        camera.publish(msg)
        camera.publish(image(camera, **{k: getattr(msg, k) for k in ("data", "step", "encoding")}))  # twice
        assert probe.spin_until(lambda t=text: errors_with(diags, t), 5), (text, launcher.log("tracker")[-2000:])
        _still_tracking(probe, camera, boxes, diags)
    for text, pts in bad_inits.items():
        msg = _poly(pts)
        msg.header = camera.publish().header
        init_pub.publish(msg)
        assert probe.spin_until(lambda t=text: errors_with(diags, t), 5), (text, launcher.log("tracker")[-2000:])
        _still_tracking(probe, camera, boxes, diags)

    log = launcher.log("tracker")
    assert log.count("unsupported image encoding 'bayer_rggb8'") == 1, "each error is logged once"
    assert log.count("lies outside") == 1
    assert launcher.alive("tracker")


def _still_tracking(probe, camera, boxes, diags) -> None:
    n = len(boxes)
    camera.stream(6)
    probe.spin(0.3)
    new = [m for _, m in boxes[n:] if m.polygon.points]
    assert new, "the node must keep tracking after a bad message"
    assert all(math.isfinite(p.x) for m in new for p in m.polygon.points)
    probe.spin_until(lambda: diags[-1][1].status[0].level != DiagnosticStatus.ERROR, 2.0)
    assert diags[-1][1].status[0].level != DiagnosticStatus.ERROR, "diagnostics recover on good frames"


def test_missing_model_dir_is_reported_and_fixable(launcher, probe, camera, sequence, tmp_path):
    _, gt = sequence
    missing = tmp_path / "no_such_model"
    launcher.start("ground_station.launch.xml", ["tracker"], model_dir=str(missing))
    diags = probe.record(DiagnosticArray, "/diagnostics", CONTROL_QOS)
    boxes = probe.record(PolygonStamped, "tracker/box", CONTROL_QOS)
    assert probe.spin_until(lambda: errors_with(diags, str(missing)), 20), launcher.log("tracker")
    assert launcher.alive("tracker")
    init_pub = probe.node.create_publisher(PolygonStamped, "tracker/init", CONTROL_QOS)
    assert probe.wait_matched(init_pub, 10)
    # Frames and an init without a model: an error saying why, no crash.
    camera.stream(
        3,
        on_frame=lambda i, m: (
            i == 1 and init_pub.publish(PolygonStamped(header=m.header, polygon=box_to_polygon(gt[0])))
        ),
    )
    assert probe.spin_until(lambda: errors_with(diags, "init ignored: no model loaded"), 5)
    assert launcher.alive("tracker")

    # Point it at the embedded model at run time: it loads and tracks.
    value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="embedded")
    req = SetParameters.Request(parameters=[Parameter(name="model_dir", value=value)])
    assert probe.call(SetParameters, "tracker/set_parameters", req).results[0].successful
    assert probe.spin_until(lambda: "model loaded" in launcher.log("tracker"), 10), launcher.log("tracker")
    camera.index = 0
    camera.stream(
        30,  # 1 s: a loaded machine tracks only some of them (newest-frame policy)
        on_frame=lambda i, m: (
            i == 0 and init_pub.publish(PolygonStamped(header=m.header, polygon=box_to_polygon(gt[0])))
        ),
    )
    assert probe.spin_until(lambda: len([m for _, m in boxes if m.polygon.points]) >= 5, 10), launcher.log("tracker")
    assert launcher.log("tracker").count("]: cannot load model") == 1, "logged once"
