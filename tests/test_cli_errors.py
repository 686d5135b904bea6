"""Each user mistake gets one line saying what is wrong and exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlkd_ros.bag import bag_from_frames

BIN = Path(sys.executable).parent
CROSSING = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sequences" / "fixtures" / "otb_Crossing"


def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROS_")}
    env["ROS_DOMAIN_ID"] = str(100 + os.getpid() % 100)
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=timeout, env=env)


def one_line_error(proc: subprocess.CompletedProcess, text: str) -> None:
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.returncode, lines)
    assert len(lines) == 1 and text in lines[0], lines
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bag") / "flight"
    bag_from_frames(CROSSING, out)
    return out


def test_bag_from_frames_fps_zero(tmp_path):
    one_line_error(run("mlkd", "bag-from-frames", str(CROSSING), str(tmp_path / "b"), "--fps", "0"), "--fps must be")
    assert not (tmp_path / "b").exists()


def test_replay_offline_missing_model_dir(bag, tmp_path):
    one_line_error(
        run("mlkd", "replay", str(bag), "--offline", "--model-dir", str(tmp_path / "missing")), "does not exist"
    )


def test_launch_missing_file():
    one_line_error(run("mlkd-launch", "missing.launch.xml"), "launch file missing.launch.xml not found")


def test_launch_bad_argument_choice():
    one_line_error(run("mlkd-launch", "ground_station.launch.xml", "network:=wan", "--print"), "is not one of")


def test_record_unknown_topic(tmp_path):
    one_line_error(run("mlkd", "record", str(tmp_path / "r"), "--topics", "/camera/imag"), "cannot record /camera/imag")


def test_bag_player_without_bag():
    one_line_error(run("bag_player"), "no bag given")


def test_launch_fails_when_a_node_fails():
    """The player refuses to play nothing (exit 2); mlkd-launch then stops and fails too, as ros2 launch does."""
    proc = run("mlkd-launch", "replay.launch.xml", "--only", "bag_player")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "no bag given" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "exe, param",
    [
        ("tracker_node", "image_transport"),
        ("follow_controller", "max_yaw_rate"),
        ("cle_logger", "output"),
        ("olympe_bridge", "publish_compressed"),
        ("bag_player", "rate"),
        ("operator_console", "bind_address"),
    ],
)
def test_node_help_lists_parameters(exe, param):
    proc = run(exe, "--help", timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: {exe}") and f"\n  {param} (default" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "argv",
    [["export", "x.pth", "--family", "nanotrack", "--out", "m"], ["train", "--config", "c.yaml", "--run-dir", "r"]],
)
def test_missing_optional_dependency_names_the_profile(tmp_path, argv):
    """A command run without torch says which install profile brings it, in one line, exit 2."""
    script = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from mlkd_model.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    one_line_error(proc, "this needs the train profile (torch is not installed): run scripts/setup.sh train")
