"""`mlkd track` and `mlkd export` as a user runs them, and the no-torch ground-station path."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
from shared_paths import NANOTRACK_PTH, REPO, SEQUENCES

MLKD = [sys.executable, "-m", "mlkd_model.cli"]
CROSSING = SEQUENCES / "fixtures" / "otb_Crossing"


def run(*args, **kw):
    return subprocess.run([*MLKD, *map(str, args)], capture_output=True, text=True, cwd=REPO, timeout=300, **kw)


def test_track_otb_sequence_defaults_to_first_ground_truth_box(tmp_path, shared):
    result = run("track", CROSSING, "--out", tmp_path, "--video")
    assert result.returncode == 0, result.stderr
    assert "frames/s" in result.stdout
    boxes = np.loadtxt(tmp_path / "otb_Crossing.txt", delimiter=",")
    gt = np.loadtxt(CROSSING / "groundtruth_rect.txt", delimiter=",")
    assert boxes.shape == (len(list((CROSSING / "img").glob("*.jpg"))), 4)
    assert np.allclose(boxes[0], gt[0])
    centre_error = np.hypot(*(boxes[:, :2] + boxes[:, 2:] / 2 - gt[:, :2] - gt[:, 2:] / 2).T)
    assert np.median(centre_error) < 10  # it really tracks the walker
    assert (tmp_path / "otb_Crossing.mp4").stat().st_size > 10_000
    assert '"git_revision"' in (tmp_path / "otb_Crossing.json").read_text()
    # the per-frame CSV: same boxes as the .txt, plus score, confidence and state
    lines = (tmp_path / "otb_Crossing.csv").read_text().splitlines()
    assert lines[0] == "frame,x,y,w,h,score,confidence,state"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == len(boxes) and [int(r[0]) for r in rows] == list(range(1, len(boxes) + 1))
    assert rows[0][5:] == ["1.0000", "1.0000", "tracking"]
    assert np.allclose(np.array([r[1:5] for r in rows], float), boxes)
    scores, confidence = (np.array([r[k] for r in rows], float) for k in (5, 6))
    assert ((scores >= 0) & (scores <= 1)).all() and ((confidence >= 0) & (confidence <= 1)).all()
    assert {r[7] for r in rows} <= {"tracking", "uncertain", "lost"}
    on_target = [r[7] for r, e in zip(rows, centre_error, strict=True) if e < 10]
    assert on_target.count("tracking") >= 0.9 * len(on_target), "on the walker, the state says tracking"


def test_track_folder_of_frames_needs_init(tmp_path, shared):
    folder = tmp_path / "frames"
    folder.mkdir()
    for p in sorted((CROSSING / "img").glob("*.jpg"))[:5]:
        shutil.copy(p, folder / p.name)
    missing = run("track", folder, "--out", tmp_path / "out")
    assert missing.returncode == 2 and "give the target box with --init" in missing.stderr
    ok = run("track", folder, "--init", "205,151,17,50", "--out", tmp_path / "out")
    assert ok.returncode == 0, ok.stderr
    assert len((tmp_path / "out" / "frames.txt").read_text().splitlines()) == 5


def test_track_reports_bad_arguments(tmp_path, shared):
    no_model = run("track", CROSSING, "--model", tmp_path / "nowhere", "--out", tmp_path)
    assert no_model.returncode == 2 and "model directory" in no_model.stderr and "does not exist" in no_model.stderr
    outside = run("track", CROSSING, "--init", "900,10,20,20", "--out", tmp_path)
    assert outside.returncode == 2 and "outside the 360x240 frame" in outside.stderr
    garbled = run("track", CROSSING, "--init", "1,2,three,4", "--out", tmp_path)
    assert garbled.returncode == 2 and "expected four numbers" in garbled.stderr
    no_source = run("track", tmp_path / "missing.mp4", "--out", tmp_path)
    assert no_source.returncode == 2 and "does not exist" in no_source.stderr


def test_export_cli_and_corrupt_checkpoint(tmp_path, shared):
    out = run("export", NANOTRACK_PTH, "--family", "nanotrack", "--out", tmp_path / "model")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "model" / "manifest.json").is_file()
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00" * 100)
    failed = run("export", bad, "--family", "nanotrack", "--out", tmp_path / "m2")
    assert failed.returncode == 2 and "bad.pth is corrupt" in failed.stderr
    assert not (tmp_path / "m2").exists()


def test_ground_station_path_runs_without_torch(tmp_path, shared):
    """Tracking with the embedded model must not import torch: run it with torch made unimportable."""
    script = textwrap.dedent(
        f"""
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, NoTorch())
        from mlkd_model.cli import main
        code = main(["track", r"{CROSSING}", "--out", r"{tmp_path}"])
        assert "torch" not in sys.modules
        sys.exit(code)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "otb_Crossing.txt").read_text().splitlines()) == 120


def test_train_arguments_reach_torchrun_processes_unchanged():
    """`mlkd train --nproc N` relaunches `python -m mlkd_training.trainer` under torchrun with the same run
    arguments, serialised from the one parser definition (no second list to keep in step)."""
    import argparse

    from mlkd_training.commands.train import add_run_arguments, run_argv

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    for argv in (
        ["--config", "c.yaml", "--run-dir", "r"],
        ["--config", "c.yaml", "--run-dir", "r", "--resume", "--set", "train.epochs=2", "--set", "seed=3",
         "--device", "cpu", "--max-steps", "5"],
    ):  # fmt: skip
        args = parser.parse_args(argv)
        assert vars(parser.parse_args(run_argv(args))) == vars(args)


def test_every_command_module_describes_itself():
    """The CLI builds each sub-parser from its module: help from the docstring's first line, the docstring as
    the description, the arguments from add_arguments and run as the handler (mlkd_model/cli.py)."""
    from mlkd_model.cli import build_parser, commands

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = [c.name for c in commands()]
    assert set(names) >= {"track", "export", "eval", "train", "select", "record", "replay"}
    helps = {a.dest: a.help for a in sub._choices_actions}
    for command in commands():
        module = command.load()
        p = sub.choices[command.name]
        assert module.__doc__.startswith(f"`mlkd {command.name}"), command.name
        assert helps[command.name] and not helps[command.name].startswith("`"), command.name
        assert p.get_default("func") is module.run
        assert module.__doc__.splitlines()[0] in p.format_help()
        assert len(p._actions) > 1, f"{command.name} declares no arguments"
