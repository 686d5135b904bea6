"""Dockerfiles, checked without a Docker engine (none runs on these machines): lint, files, entrypoints, pins."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

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


# colcon as scripts/setup.sh dev installs it: outside the venv's site-packages, like Ubuntu's colcon in the image.
COLCON_LIB = Path(sys.prefix) / "colcon"
VENV_PYTHON = Path(sys.prefix) / "bin" / "python"


def replay_copies(dockerfile, root: Path, under: str = "/ws") -> None:
    """Re-enact the Dockerfile's COPY steps whose destination lies under `under`, into `root`."""
    workdir = PurePosixPath("/")
    for op, args in instructions(dockerfile):
        if op == "WORKDIR":
            workdir = workdir / args.strip()
        elif op == "COPY":
            *sources, dest = [a for a in args.split() if not a.startswith("--")]
            target = workdir / dest
            if not str(target).startswith(under):
                continue
            for source in sources:
                src = REPO / source
                out = root / target.relative_to(under)
                if src.is_dir():  # Docker copies a folder's contents, not the folder itself
                    shutil.copytree(src, out, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
                else:
                    out.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, out / src.name)


def colcon_step(dockerfile) -> tuple[str, list[str]]:
    """(WORKDIR, colcon arguments) of the Dockerfile's colcon build."""
    workdir = PurePosixPath("/")
    for op, args in instructions(dockerfile):
        if op == "WORKDIR":
            workdir = workdir / args.strip()
        elif op == "RUN" and "colcon" in args:
            match = re.search(r'"\$\{VIRTUAL_ENV\}/bin/python" -m colcon (build[^&]*)', args)
            assert match, (
                "the image must run colcon with the venv's interpreter: colcon runs setup.py with its own "
                "interpreter, which becomes the scripts' shebang (/usr/bin/colcon gives /usr/bin/python3)"
            )
            return str(workdir), shlex.split(match.group(1))
    raise AssertionError("no colcon build in the Dockerfile")


def run_colcon(python: Path, ws: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLCON", "AMENT", "PYTHON"))}
    env |= {"PYTHONPATH": str(COLCON_LIB), "COLCON_HOME": str(ws / ".colcon")}
    return subprocess.run(
        [str(python), "-m", "colcon", *args], cwd=ws, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.skipif(
    not (COLCON_LIB / "colcon").is_dir(),
    reason=f"colcon is not installed in {COLCON_LIB} (scripts/setup.sh dev installs it from requirements/colcon.txt)",
)
def test_colcon_build_gives_the_scripts_the_venv_interpreter(tmp_path):
    """The image's colcon build, re-enacted (its COPY steps, its colcon command, this venv as its venv): every
    console script under lib/mlkd_ros starts with the venv's interpreter and runs."""
    dockerfile = DOCKER / "ground_station.Dockerfile"
    ws = tmp_path / "ws"
    replay_copies(dockerfile, ws)
    workdir, args = colcon_step(dockerfile)
    assert workdir == "/ws"
    res = run_colcon(VENV_PYTHON, ws, args)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    scripts = re.findall(r'"([\w-]+) = [\w.]+:\w+"', (REPO / "setup.py").read_text())
    assert "tracker_node" in scripts
    lib = ws / "install" / "mlkd_ros" / "lib" / "mlkd_ros"
    for name in scripts:
        script = lib / name
        assert os.access(script, os.X_OK), f"{name} is not installed in {lib}"
        assert script.read_text().splitlines()[0] == f"#!{VENV_PYTHON}", f"{name}: {script.read_text()[:80]!r}"
    # The shebang's interpreter runs the installed node (its imports resolve there).
    site = next((ws / "install" / "mlkd_ros" / "lib").glob("python3*/site-packages"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")} | {"PYTHONPATH": str(site)}
    run = subprocess.run([str(lib / "tracker_node"), "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "usage: tracker_node" in run.stdout, run.stdout + run.stderr


@pytest.mark.skipif(not (COLCON_LIB / "colcon").is_dir(), reason=f"colcon is not installed in {COLCON_LIB}")
def test_colcon_shebang_is_the_interpreter_running_colcon(tmp_path):
    """Why the image cannot use a bare `colcon build`: another interpreter running colcon (here Debian's
    /usr/bin/python3, which is what /usr/bin/colcon runs in the image) ends up in every shebang."""
    other = Path("/usr/bin/python3")
    probe = subprocess.run([str(other), "-c", "import setuptools"], capture_output=True) if other.exists() else None
    if probe is None or probe.returncode:
        pytest.skip(f"{other} with setuptools is needed as the 'other' interpreter")
    ws = tmp_path / "ws"
    replay_copies(DOCKER / "ground_station.Dockerfile", ws)
    res = run_colcon(other, ws, ["build", "--packages-select", "mlkd_ros"])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    first = (ws / "install" / "mlkd_ros" / "lib" / "mlkd_ros" / "tracker_node").read_text().splitlines()[0]
    assert first == f"#!{other}"
