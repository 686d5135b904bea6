"""Each user mistake gets one line saying what is wrong and exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from mlkd_model.default_model import MODEL_DIR
from mlkd_model.manifest import MANIFEST, sha256
from mlkd_ros.bag import GT_TOPIC, IMAGE_TOPIC, BagWriter, bag_from_frames, box_msg, image_msg
from mlkd_ros.boxes import load_ground_truth

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


def model_dir(root: Path, name: str, search: bytes | None = None, manifest_updated: bool = True) -> Path:
    """A copy of the embedded model whose search.onnx is `search`, with its sha256 in the manifest updated
    (a file swapped by hand, or a sha256 edited to match) or not (a file damaged after export)."""
    out = root / name
    shutil.copytree(MODEL_DIR, out, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    if search is not None:
        (out / "search.onnx").write_bytes(search)
    if manifest_updated:
        data = json.loads((out / MANIFEST).read_text())
        data["files"]["search"]["sha256"] = sha256(out / "search.onnx")
        (out / MANIFEST).write_text(json.dumps(data))
    return out


def small_bag(path: Path, storage: str, frames: int = 4) -> Path:
    """The first frames of the Crossing fixture, with their ground truth (a bag of ~1 MB)."""
    gt = load_ground_truth(CROSSING / "groundtruth_rect.txt")
    with BagWriter(path, storage) as w:
        for i, image in enumerate(sorted((CROSSING / "img").glob("*.jpg"))[:frames]):
            t = 1_700_000_000_000_000_000 + i * 33_333_333
            w.write_msg(IMAGE_TOPIC, image_msg(cv2.imread(str(image)), t), t)
            w.write_msg(GT_TOPIC, box_msg(gt[i], t), t)
    return path


def flip_bit(bag: Path, find: bytes = b"", after: bytes = b"", offset: int = 0) -> None:
    """Flip one bit in the bag's data file, as a failing disk or copy does: at the middle of the file, or
    `offset` bytes into the first copy of `find` that follows `after`."""
    data = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    raw = bytearray(data.read_bytes())
    at = raw.index(find, raw.index(after)) + offset if find else len(raw) // 2
    raw[at] ^= 0x40
    data.write_bytes(bytes(raw))


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory) -> dict[str, Path]:
    """Damaged model directories and bags the mistakes below are made with."""
    root = tmp_path_factory.mktemp("mistakes")
    search = (MODEL_DIR / "search.onnx").read_bytes()
    out = {
        "truncated": model_dir(root, "truncated", search[: len(search) // 2]),
        "empty": model_dir(root, "empty", b""),
        "garbage": model_dir(root, "garbage", os.urandom(4096)),
        "altered": model_dir(root, "altered", search[:-16] + bytes(16), manifest_updated=False),
        "mcap": small_bag(root / "good", "mcap"),
        "mcap_flipped": small_bag(root / "mcap_flipped", "mcap"),
        "sqlite_flipped": small_bag(root / "sqlite_flipped", "sqlite3"),
    }
    flip_bit(out["mcap_flipped"])  # in the middle of the (one) chunk: pixels, which only its CRC can tell
    # In the CDR length of the encoding ("bgr8") of the image stamped 1700000000 s + 33333333 ns (message 1):
    # sqlite3 keeps no checksum of its own.
    stamp = struct.pack("<iI", 1_700_000_000, 33_333_333)
    flip_bit(out["sqlite_flipped"], b"\x05\x00\x00\x00bgr8\x00", after=stamp, offset=2)
    return out


def test_our_mcap_chunks_carry_the_crc_that_rosbags_checks(mistakes):
    """The CRC bag.py adds is the one the mcap spec defines: rosbags' own reader (which checks a non-zero CRC)
    reads the bag whole and refuses the copy with the flipped bit."""
    from rosbags.rosbag2 import Reader

    with Reader(mistakes["mcap"]) as reader:
        assert sum(1 for _ in reader.messages()) == 8  # 4 images, 4 boxes
    with pytest.raises(Exception, match="checksum mismatch"), Reader(mistakes["mcap_flipped"]) as reader:
        list(reader.messages())


GT_FILE = str(CROSSING / "groundtruth_rect.txt")


@pytest.mark.parametrize(
    "argv, text",
    [
        # a model directory whose ONNX file ONNX Runtime cannot load (its sha256 updated with it)
        ("mlkd track {crossing} --model {truncated} --out {out}", "ONNX Runtime cannot load search.onnx: Protobuf"),
        ("mlkd track {crossing} --model {empty} --out {out}", "cannot load search.onnx: No graph was found"),
        ("mlkd replay {mcap} --offline --model-dir {garbage}", "ONNX Runtime cannot load search.onnx: Protobuf"),
        ("mlkd eval {crossing} --tracker default={empty} --out {out}", "ONNX Runtime cannot load search.onnx"),
        # a model file that fails its sha256: `mlkd eval` says it as `mlkd track` does
        ("mlkd eval {crossing} --tracker default={altered} --out {out}", "search.onnx does not match its sha256"),
        ("mlkd replay {mcap} --offline --init abc", "cannot read box 'abc': expected four numbers x,y,w,h"),
        ("mlkd track {gt_file} --init 10,10,20,20 --out {out}", "groundtruth_rect.txt is a text file, not a video"),
        # flipped bits: in an mcap chunk (its CRC), in an sqlite3 message (it no longer decodes)
        ("mlkd replay {mcap_flipped} --offline", "mcap_flipped.mcap: chunk at data+"),
        ("mlkd replay {sqlite_flipped} --offline", "/camera/image message 1 (recorded at 1700000000.033 s) is corrupt"),
        ("bag_player --ros-args -p bag:={sqlite_flipped}", "/camera/image message 1 (recorded at"),
        ("bag_player --ros-args -p bag:={mcap} -p init:=abc", "cannot read box 'abc'"),
        # launch arguments against the types and ranges the nodes declare
        ("mlkd-launch replay.launch.xml rate:=abc --print", "parameter rate of node bag_player must be a number"),
        ("mlkd-launch ground_station.launch.xml image_width:=-5 --print", "must be an integer in 0 .. 8192, got -5"),
        ("mlkd-launch ground_station.launch.xml image_width:=abc --print", "image_width of node olympe_bridge"),
        ("mlkd-launch ground_station.launch.xml image_width:=1e3 --print", "must be an integer in 0 .. 8192"),
        ("mlkd-launch ground_station.launch.xml image_width:=480.5 --print", "must be an integer in 0 .. 8192"),
        ("mlkd-launch ground_station.launch.xml enhance:=maybe --print", "enhance of node tracker must be true or"),
        ("mlkd-launch {gt_file}", "groundtruth_rect.txt is not a launch XML file (syntax error"),
    ],
)
def test_mistake_is_one_line(mistakes, tmp_path, argv, text):
    words = [w.format(**mistakes, crossing=CROSSING, gt_file=GT_FILE, out=tmp_path / "out") for w in argv.split()]
    one_line_error(run(*words), text)


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
