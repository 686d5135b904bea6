"""The ground station's DDS is closed to other hosts; the probe that shows it finds the hole in the old setup.

The two-host tests run tests/ros/dds_probe.py in a private user + network namespace ("host A", the ground
station) that makes a second one ("host B", the attacker, with its own /dev/shm as another machine has)
joined by a veth pair. Only loopback and these namespaces are addressed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlkd_ros import dds_guard, launch_xml

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch"
FRAMES = ROOT.parent / "shared" / "data" / "sequences" / "fixtures" / "otb_Crossing" / "img"


def run_probe(tmp_path: Path, *args: str) -> dict:
    if shutil.which("unshare") is None or shutil.which("nsenter") is None or shutil.which("ip") is None:
        pytest.skip("unshare/nsenter/ip missing: run scripts/setup_system.sh")
    if not FRAMES.is_dir():
        pytest.skip(f"fixture frames missing: {FRAMES}")
    inner = [sys.executable, str(ROOT / "tests" / "ros" / "dds_probe.py"), "station", "--work", str(tmp_path)]
    inner += ["--frames", str(FRAMES), "--domain-id", str(100 + os.getpid() % 100), *args]
    proc = subprocess.run(
        ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *inner],
        capture_output=True,
        text=True,
        timeout=240,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted(tmp_path.glob("*.log")))
    raise AssertionError(f"probe failed rc={proc.returncode}\n{proc.stderr[-3000:]}\n{logs}")


def test_confined_ground_station_is_unreachable_from_another_host(tmp_path: Path) -> None:
    """The launch file's own DDS settings: nothing found, nothing received, nothing accepted from host B;
    on host A the same video, init, follow/enable, cmd_vel and parameters work."""
    r = run_probe(tmp_path, "--attack", "multicast", "static_peers")
    assert all(r["running"].values()), r["running"]
    assert r["param_before"] == pytest.approx(0.2)
    assert "/olympe_bridge/arm" in r["bridge_services"] and r["cmd_vel_subscribers"] == 1, r
    for variant, a in r["attacks"].items():
        assert a["nodes"] == [], (variant, a)  # discovery finds nothing
        assert a["frames"] == 0, (variant, a)  # no video
        assert not a["enable_answered"] and not a["set_parameters_answered"], (variant, a)  # no services
        assert a["cmd_vel_reached"] == 0, (variant, a)  # its cmd_vel never reached host A
        assert a["boxes_after"] == 0, (variant, a)  # its tracker/init was not applied
        assert a["param_after"] == pytest.approx(0.2), (variant, a)  # parameters unchanged
    local = r["local"]
    assert local["boxes"] >= 5 and local["enable_ok"] and local["nonzero_cmd_vel"] >= 1 and local["param_set"], local


def test_probe_finds_the_hole_with_the_old_settings(tmp_path: Path) -> None:
    """The previous setup (UDPv4 profile, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST as docs/ros.md advised):
    an attacker with ROS_STATIC_PEERS sees the nodes, the video, and its init, cmd_vel and parameters land.
    The piloting nodes themselves now refuse that setup: no follow controller, a video-only bridge."""
    r = run_probe(tmp_path, "--profile", "subnet", "--discovery-range", "LOCALHOST", "--attack", "static_peers")
    a = r["attacks"]["static_peers"]
    assert {"tracker", "olympe_bridge"} <= set(a["nodes"]), a
    assert a["frames"] > 0 and a["boxes_after"] > 0 and a["cmd_vel_reached"] > 0, a
    assert a["set_parameters_answered"] and a["param_after"] == pytest.approx(0.9), a
    assert not r["running"]["follow_controller"]
    assert "not starting: DDS is reachable from other hosts" in (tmp_path / "follow_controller.log").read_text()
    assert "/olympe_bridge/arm" not in r["bridge_services"] and r["cmd_vel_subscribers"] == 0, r


def test_launch_network_modes() -> None:
    gs = launch_xml.parse_launch(LAUNCH / "ground_station.launch.xml")
    assert Path(gs.env["FASTDDS_DEFAULT_PROFILES_FILE"]) == LAUNCH / "fastdds_localhost.xml"
    assert gs.env["ROS_DOMAIN_ID"] == "42" and gs.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SYSTEM_DEFAULT"
    assert dds_guard.exposure({**gs.env, "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}, cwd=ROOT) is None
    assert "follow_controller" in {n.name for n in gs.nodes}
    sub = launch_xml.parse_launch(LAUNCH / "ground_station.launch.xml", {"network": "subnet", "domain_id": "7"})
    assert Path(sub.env["FASTDDS_DEFAULT_PROFILES_FILE"]) == LAUNCH / "fastdds_subnet.xml"
    assert sub.env["ROS_DOMAIN_ID"] == "7" and sub.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"
    assert "follow_controller" not in {n.name for n in sub.nodes}
    assert "UDPv4" in dds_guard.exposure(sub.env, cwd=ROOT)
    replay = launch_xml.parse_launch(LAUNCH / "replay.launch.xml")
    assert Path(replay.env["FASTDDS_DEFAULT_PROFILES_FILE"]) == LAUNCH / "fastdds_localhost.xml"
    with pytest.raises(launch_xml.LaunchError, match="not one of"):
        launch_xml.parse_launch(LAUNCH / "ground_station.launch.xml", {"network": "wan"})


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"FASTDDS_DEFAULT_PROFILES_FILE": ""}, "no Fast DDS profile"),
        ({"FASTDDS_DEFAULT_PROFILES_FILE": str(LAUNCH / "fastdds_subnet.xml")}, "UDPv4"),
        ({"FASTDDS_DEFAULT_PROFILES_FILE": "/nonexistent.xml"}, "unreadable"),
        ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, "LOCALHOST"),
        ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, "rmw_cyclonedds_cpp"),
        ({"FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}, "FASTDDS_BUILTIN_TRANSPORTS"),
        ({"ROS_DISCOVERY_SERVER": "10.0.0.1:11811"}, "ROS_DISCOVERY_SERVER"),
    ],
)
def test_guard_names_what_opens_the_network(change: dict, reason: str) -> None:
    env = {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(LAUNCH / "fastdds_localhost.xml")
    assert dds_guard.exposure(env, cwd=ROOT) is None
    assert reason in dds_guard.exposure({**env, **change}, cwd=ROOT)


def test_guard_reads_the_working_directory_profile(tmp_path: Path) -> None:
    env = {"FASTDDS_DEFAULT_PROFILES_FILE": str(LAUNCH / "fastdds_localhost.xml")}
    (tmp_path / "DEFAULT_FASTDDS_PROFILES.xml").write_text("<dds/>")
    assert "working directory" in dds_guard.exposure(env, cwd=tmp_path)


def test_wheel_fastdds_has_no_dds_security(tmp_path: Path) -> None:
    """Why multi-host mode never pilots: the wheels' Fast DDS is built without the security plugins, so rmw
    refuses any node asked to enforce DDS Security (authentication, access control), and the guard knows."""
    pytest.importorskip("rclpy")
    assert dds_guard.security_plugins() is False
    enclave = tmp_path / "keystore" / "enclaves" / "secure"
    enclave.mkdir(parents=True)
    for name in ("identity_ca.cert.pem", "cert.pem", "key.pem", "permissions_ca.cert.pem", "governance.p7s"):
        (enclave / name).write_text("placeholder: rmw stops before reading it\n")
    (enclave / "permissions.p7s").write_text("placeholder\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "FASTDDS_", "FASTRTPS_"))}
    env.update(
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        ROS_DOMAIN_ID=str(100 + os.getpid() % 100),
        FASTDDS_DEFAULT_PROFILES_FILE=str(LAUNCH / "fastdds_localhost.xml"),
        ROS_SECURITY_ENABLE="true",
        ROS_SECURITY_STRATEGY="Enforce",
        ROS_SECURITY_KEYSTORE=str(tmp_path / "keystore"),
    )
    code = "import rclpy; rclpy.init(args=['--ros-args', '--enclave', '/secure']); rclpy.create_node('secured')"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "doesn't have the security libraries" in out.stderr, out.stderr[-2000:]
