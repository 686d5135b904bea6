"""Olympe bridge without a drone or video (no Olympe needed): published size and run-time parameters."""

from __future__ import annotations

import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

from mlkd_ros.olympe_bridge import OlympeBridge


def test_resize_keeps_the_aspect_ratio_and_parameters_apply(domain_id):
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    overrides = [
        Parameter("drone_ip", value=""),
        Parameter("image_width", value=640),
        Parameter("image_height", value=480),
    ]
    node = OlympeBridge(context=ctx, parameter_overrides=overrides)
    try:
        assert node._output_size(1280, 720) == (640, 360), "16:9 fits inside 640x480 unsquashed"
        assert node._output_size(480, 640) == (360, 480)
        assert node._output_size(640, 480) == (640, 480)
        assert node.set_parameters([Parameter("keep_aspect", value=False)])[0].successful
        assert node._output_size(1280, 720) == (640, 480)
        assert node.set_parameters([Parameter("image_width", value=0)])[0].successful
        assert node._output_size(1280, 720) == (1280, 720), "0 = as decoded"
        assert node.set_parameters([Parameter("max_yaw", value=10), Parameter("cmd_vel_timeout", value=0.2)])[
            0
        ].successful
        assert node.gate.limits.max_yaw == 10 and node.gate.timeout == 0.2
        result = node.set_parameters([Parameter("video_url", value="rtsp://elsewhere/live")])[0]
        assert not result.successful and "read-only" in result.reason
    finally:
        node.stop()
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def test_olympe_interpreter_is_the_environments_not_the_checkouts(tmp_path, monkeypatch):
    """Installed anywhere, the bridge finds Olympe's interpreter in its own environment (<venv>/olympe)."""
    from mlkd_ros import olympe_bridge

    monkeypatch.delenv("MLKD_OLYMPE_PYTHON", raising=False)
    monkeypatch.setattr(olympe_bridge.sys, "prefix", str(tmp_path))
    assert olympe_bridge._olympe_python() is None  # no <venv>/olympe: OpenCV video, no piloting
    python = tmp_path / "olympe" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    assert olympe_bridge._olympe_python() == str(python)
    monkeypatch.setenv("MLKD_OLYMPE_PYTHON", "/opt/olympe/bin/python")
    assert olympe_bridge._olympe_python() == "/opt/olympe/bin/python"
