"""The launch XML runner: arguments, substitutions, parameter order and types, remaps, subsets; no torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlkd_ros import launch_xml
from mlkd_ros.launch_xml import LaunchError, parse_launch, select

LAUNCH = Path(__file__).resolve().parents[2] / "launch"


def inline_params(spec) -> dict:
    out: dict = {}
    for group in spec.params:
        out.update(group if isinstance(group, dict) else {})
    return out


def test_ground_station_declares_bridge_tracker_and_controller():
    desc = parse_launch(LAUNCH / "ground_station.launch.xml", {"drone_ip": "10.202.0.1", "model_dir": "/m"})
    assert [n.exec for n in desc.nodes] == ["olympe_bridge", "tracker_node", "follow_controller", "operator_console"]
    bridge, tracker, follow, console = desc.nodes
    assert inline_params(console) == {"port": 8080, "bind_address": "127.0.0.1"}
    assert inline_params(bridge)["drone_ip"] == "10.202.0.1"
    # File first, then the launch arguments on top of it (same order as ros2 launch).
    assert tracker.params[0] == LAUNCH / "tracker.yaml" and tracker.params[0].exists()
    assert inline_params(tracker) == {
        "model_dir": "/m",
        "providers": ["cpu"],
        "enhance": False,
        "image_transport": "raw",
    }
    assert inline_params(bridge)["publish_compressed"] is False
    assert inline_params(follow) == {"image_width": 640, "image_height": 480}
    assert Path(desc.env["FASTDDS_DEFAULT_PROFILES_FILE"]) == LAUNCH / "fastdds_localhost.xml"
    assert [n.name for n in select(desc, ["tracker", "follow_controller"])] == ["tracker", "follow_controller"]
    no_console = parse_launch(LAUNCH / "ground_station.launch.xml", {"console": "false"})
    assert "operator_console" not in [n.exec for n in no_console.nodes]


def test_replay_declares_player_tracker_and_cle_logger():
    desc = parse_launch(LAUNCH / "replay.launch.xml", {"bag": "/b", "ground_truth": "/gt.txt"})
    assert [n.exec for n in desc.nodes] == ["bag_player", "tracker_node", "cle_logger", "operator_console"]
    assert inline_params(parse_launch(LAUNCH / "replay.launch.xml", {"console_port": "0"}).nodes[3])["port"] == 0
    assert inline_params(desc.nodes[1])["ground_truth_file"] == "/gt.txt"
    assert inline_params(desc.nodes[1])["ground_truth_topic"] == ""


def test_param_files_only_set_declared_parameters(env, domain_id):
    """A misspelt key in the YAML would be silently ignored by rclpy: compare with what the nodes declare."""
    import rclpy
    from rclpy.context import Context

    from mlkd_ros.follow_controller import FollowController
    from mlkd_ros.tracker_node import TrackerNode

    for cls, name in ((TrackerNode, "tracker.yaml"), (FollowController, "follow_controller.yaml")):
        ctx = Context()
        rclpy.init(context=ctx, args=["--ros-args", "--params-file", str(LAUNCH / name)], domain_id=domain_id)
        try:
            node = cls(context=ctx)
            keys = set(yaml.safe_load((LAUNCH / name).read_text())["/**"]["ros__parameters"])
            declared = set(node._parameters) - {"use_sim_time", "start_type_description_service"}
            assert keys == declared, (name, keys ^ declared)
            for key in keys:
                assert node.describe_parameter(key).description, f"{key} has no description"
            if hasattr(node, "stop"):
                node.stop()
            node.destroy_node()
        finally:
            rclpy.shutdown(context=ctx)


def test_substitutions_groups_remaps_and_errors(tmp_path):
    f = tmp_path / "t.launch.xml"
    f.write_text(
        """<launch>
          <arg name="ns" default="uav1"/>
          <arg name="use_follow" default="false"/>
          <let name="cfg" value="$(dirname)/cfg.yaml"/>
          <node pkg="mlkd_ros" exec="tracker_node" name="trk" namespace="$(var ns)">
            <param name="lost_score" value="0.3"/>
            <param from="$(var cfg)"/>
            <param name="providers" value="[cuda, cpu]"/>
            <remap from="camera/image" to="/anafi/image"/>
            <env name="X_TEST" value="$(env HOME)"/>
          </node>
          <group if="$(var use_follow)">
            <node pkg="mlkd_ros" exec="follow_controller"/>
          </group>
          <node pkg="mlkd_ros" exec="cle_logger" unless="$(var use_follow)"/>
        </launch>"""
    )
    (tmp_path / "cfg.yaml").write_text("/**:\n  ros__parameters:\n    lost_frames: 3\n")
    desc = parse_launch(f)
    assert [n.name for n in desc.nodes] == ["trk", "cle_logger"]
    trk = desc.nodes[0]
    assert trk.params == [{"lost_score": 0.3}, tmp_path / "cfg.yaml", {"providers": ["cuda", "cpu"]}]
    assert trk.remaps == [("camera/image", "/anafi/image")] and trk.env["X_TEST"]
    cmd = trk.command(tmp_path)
    ros = cmd[cmd.index("--ros-args") :]
    assert ros[:6] == ["--ros-args", "-r", "__node:=trk", "-r", "__ns:=/uav1", "--params-file"]
    files = [ros[i + 1] for i, w in enumerate(ros) if w == "--params-file"]
    assert files[1] == str(tmp_path / "cfg.yaml") and yaml.safe_load(Path(files[2]).read_text()) == {
        "/**": {"ros__parameters": {"providers": ["cuda", "cpu"]}}
    }
    assert ros[-2:] == ["-r", "camera/image:=/anafi/image"]
    assert [n.exec for n in parse_launch(f, {"use_follow": "true"}).nodes] == ["tracker_node", "follow_controller"]
    with pytest.raises(LaunchError, match="declares no argument"):
        parse_launch(f, {"typo": "1"})
    with pytest.raises(LaunchError, match="no node"):
        select(desc, ["nope"])
    f.write_text('<launch><arg name="need"/></launch>')
    with pytest.raises(LaunchError, match="required"):
        parse_launch(f)


def test_cli_prints_commands(capsys):
    assert launch_xml.main(["mlkd_ros", "ground_station.launch.xml", "--print", "--only", "tracker"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "mlkd_ros.tracker_node" in out[0] and "__node:=tracker" in out[0]


# "The ground-station modules never import torch" is a static check on the import graph now
# (tests/test_import_graph.py); the launched nodes still run with torch blocked (conftest.TORCH_GUARD, a sitecustomize).


def test_scoping_namespaces_and_nested_params_as_ros2_launch(tmp_path):
    f = tmp_path / "two.launch.xml"
    f.write_text(
        """<launch>
          <set_env name="MLKD_A" value="top"/>
          <group>
            <push-ros-namespace namespace="drone1"/>
            <let name="who" value="one"/>
            <set_env name="MLKD_A" value="in_group"/>
            <node pkg="mlkd_ros" exec="tracker_node" name="tracker">
              <param name="who" value="$(var who)"/>
              <param name="gains"><param name="yaw" value="1.5"/><param name="z" value="2"/></param>
            </node>
          </group>
          <group>
            <push-ros-namespace namespace="drone2"/>
            <node pkg="mlkd_ros" exec="tracker_node" name="tracker" namespace="cam"/>
          </group>
          <node pkg="mlkd_ros" exec="cle_logger" namespace="/abs"/>
          <let name="who" value="after"/>
        </launch>"""
    )
    desc = parse_launch(f)
    one, two, logger = desc.nodes
    assert (one.namespace, two.namespace, logger.namespace) == ("drone1", "drone2/cam", "/abs")
    assert one.params == [{"who": "one", "gains.yaw": 1.5, "gains.z": 2}]
    assert one.launch_env["MLKD_A"] == "in_group" and two.launch_env["MLKD_A"] == "top"
    assert desc.env == {"MLKD_A": "top"} and desc.args["who"] == "after"
    assert "__ns:=/drone2/cam" in one.command(tmp_path) + two.command(tmp_path)


@pytest.mark.parametrize(
    "xml, match",
    [
        ('<include file="x.launch.xml"/>', "<include> is not supported"),
        ('<node pkg="mlkd_ros" exec="cle_logger" args="--x"/>', r"attribute\(s\) \['args'\]"),
        ('<node pkg="mlkd_ros" exec="cle_logger" ros_args="-p a:=1"/>', "ros_args"),
        ('<node pkg="mlkd_ros" exec="cle_logger" launch-prefix="gdb"/>', "launch-prefix"),
        ('<node pkg="mlkd_ros" exec="cle_logger"><param name="a" value="1" type="str"/></node>', "type"),
        ('<node pkg="mlkd_ros" exec="cle_logger"><param name="a" value="$(optenv HOME)"/></node>', "optenv"),
        ('<node pkg="mlkd_ros" exec="cle_logger"><composable_node/></node>', "<composable_node> inside <node>"),
        ('<group ns="x"/>', "ns"),
        ('<executable cmd="ls"/>', "<executable> is not supported"),
    ],
)
def test_unsupported_launch_features_are_refused(tmp_path, xml, match):
    f = tmp_path / "bad.launch.xml"
    f.write_text(f"<launch>{xml}</launch>")
    with pytest.raises(LaunchError, match=match):
        parse_launch(f)
