"""Dockerfiles, checked without a Docker engine (none runs on these machines): lint, files, entrypoints, pins."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml
from shared_paths import REPO

DOCKER = REPO / "docker"
DOCKERFILES = [DOCKER / "ground_station.Dockerfile", DOCKER / "train.Dockerfile"]


def pinned(requirements: str, package: str) -> str:
    text = (REPO / "requirements" / requirements).read_text()
    match = re.search(rf"^{re.escape(package)}==([\w.]+)", text, re.M)
    assert match, f"{package} is not pinned in requirements/{requirements}"
    return match.group(1)


def instructions(dockerfile):
    """(INSTRUCTION, arguments) pairs with line continuations joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(REPO / ".venv" / "bin" / "hadolint")
    result = subprocess.run(
        [hadolint, "--config", str(REPO / ".hadolint.yaml"), *map(str, DOCKERFILES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copied_file_exists(dockerfile):
    copies = [args for op, args in instructions(dockerfile) if op == "COPY"]
    assert copies
    for args in copies:
        sources = [a for a in args.split() if not a.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), f"{dockerfile.name} copies {source}, which is not in the repository"


def test_ground_station_entrypoint_launches_what_exists():
    entry = (DOCKER / "ground_station_entrypoint.sh").read_text()
    launch_file = re.search(r"ros2 launch mlkd_ros (\S+)", entry).group(1)
    launch = REPO / "launch" / launch_file
    assert launch.is_file()
    setup = (REPO / "setup.py").read_text()
    for node in ET.parse(launch).getroot().iter("node"):
        assert node.get("pkg") == "mlkd_ros"
        assert re.search(rf'"{node.get("exec")}\s*=', setup), f"{node.get('exec')} is not a console script in setup.py"
    args = {a.get("name") for a in ET.parse(launch).getroot().iter("arg")}
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    service = compose["services"]["ground_station"]
    assert (REPO / "docker" / ".." / service["build"]["dockerfile"]).is_file()
    assert service["network_mode"] == "host"
    for argument in service["command"]:
        assert argument.split(":=")[0] in args, f"compose passes {argument}, which the launch file does not declare"


def test_ground_station_installs_onnxruntime_gpu_of_the_pinned_version():
    dockerfile = (DOCKER / "ground_station.Dockerfile").read_text()
    sed = re.search(r"sed -n '([^']+)' requirements/runtime.txt", dockerfile).group(1)
    derived = subprocess.run(
        ["sed", "-n", sed, str(REPO / "requirements/runtime.txt")], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert derived == pinned("runtime.txt", "onnxruntime")
    # Olympe (protobuf 3.19) lives in a venv of its own, which the bridge is pointed at.
    olympe_python = re.search(r"MLKD_OLYMPE_PYTHON=(\S+)/bin/python", dockerfile).group(1)
    assert re.search(
        rf"venv --system-site-packages {olympe_python} .*{olympe_python}/bin/pip install .*"
        r"-r requirements/olympe.txt",
        dockerfile,
        re.S,
    )
    assert re.search(r"^USER 1000$", dockerfile, re.M), "the ground station must not run as root"


def test_train_image_torch_matches_the_pin_and_entrypoint_exists():
    dockerfile = (DOCKER / "train.Dockerfile").read_text()
    image = re.search(r"ARG PYTORCH_IMAGE=pytorch/pytorch:([\d.]+)-cuda", dockerfile).group(1)
    assert image == pinned("train.txt", "torch")
    assert '["torchrun"]' in dockerfile
    modules = set(re.findall(r"-m (mlkd_training\.\w+)", dockerfile))
    assert modules
    for module in modules:
        assert (REPO / "training" / f"{module.split('.', 1)[1]}.py").is_file()
    for config in re.findall(r"training/configs/\S+\.yaml", dockerfile):
        assert (REPO / config).is_file(), config
