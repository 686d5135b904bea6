"""Framework, trainer, DDP and kill-and-resume on tiny synthetic data (NanoTrack, random weights, CPU)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tiny_sequences import make_sequences

from mlkd_model.datasets import DEFAULT_SHARED
from mlkd_model.nets.build import build_tracker
from mlkd_training.config import config_from_dict, load_config
from mlkd_training.framework import FrameworkConfig, MLKDFramework
from mlkd_training.trainer import lr_at

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MLKD_SHARED", DEFAULT_SHARED))
DARKLIGHTER = SHARED / "weights/darklighter/Epoch193.pth"


def tiny_config(data_root: Path, **train: object) -> dict:
    return {
        "family": "nanotrack",
        "seed": 3,
        "tracker_checkpoint": None,
        "framework": {
            "mode": "ml",
            "teacher": "clean",
            "students": ["l2", "threshold"],
            "trainable": ["backbone"],
            "freeze_bn": True,
        },
        "data": {"roots": [str(data_root)], "samples_per_epoch": 8, "workers": 0, "frame_range": 3},
        "train": {
            "epochs": 2,
            "batch": 2,
            "lr": 0.01,
            "lr_end": 0.001,
            "checkpoint_every": 2,
            "log_every": 1,
            "grad_clip": 0.0,
            **train,
        },
    }


def _write(tmp_path: Path, cfg: dict, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def _trainer(
    args: list[str], nproc: int = 1, timeout: int = 120, code: str | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLKD_THREADS": "1"}
    if code is not None:
        cmd = [sys.executable, "-c", code, *args]
    elif nproc == 1:
        cmd = [sys.executable, "-m", "mlkd_training.trainer", *args]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(nproc),
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            "-m",
            "mlkd_training.trainer",
            *args,
        ]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _students(run_dir: Path) -> list[dict[str, torch.Tensor]]:
    return [torch.load(p, weights_only=True) for p in sorted((run_dir / "students").glob("student*.pth"))]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sequences(tmp_path_factory.mktemp("seqs"))


# --------------------------------------------------------------------------- framework


def _batch(b: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    labels = -torch.ones(b, 1, 16, 16, dtype=torch.long)
    labels[:, :, 7:9, 7:9] = 1
    labels[:, :, :3, :] = 0
    ltrb = torch.full((b, 4, 16, 16), 20.0)
    z, x = torch.rand(b, 3, 127, 127, generator=g) * 60, torch.rand(b, 3, 255, 255, generator=g) * 60
    return {
        "template": z,
        "search": x,
        "template_clean": z * 3,
        "search_clean": x * 3,
        "label_cls": labels,
        "label_loc": ltrb,
        "label_loc_weight": (labels == 1).float() / 4,
    }


@pytest.mark.parametrize("teacher", ["clean", "darklighter"])
def test_framework_teacher_frozen_students_learn(teacher):
    torch.manual_seed(0)
    cfg = FrameworkConfig(family="nanotrack", mode="ml", teacher=teacher, students=["l2", "spatial", "none"])
    fw = MLKDFramework(cfg, build_tracker("nanotrack"), str(DARKLIGHTER) if teacher == "darklighter" else None)
    fw.train()
    assert not fw.teacher.training and all(not m.training for m in fw.teacher.modules())
    assert not any(p.requires_grad for p in fw.teacher.parameters())
    batch = _batch(1 if teacher == "darklighter" else 2)
    out = fw(batch)
    loss, terms, best = out.total, out.logged, out.best
    loss.backward()
    assert torch.isfinite(loss) and "ml" in terms and int(best.sum()) == batch["search"].shape[0]
    for s in fw.students:
        assert s.backbone.features[0][0].weight.grad.abs().sum() > 0  # backbone learns
        assert s.ban_head.cls_pred[0].weight.grad is None  # head frozen (paper: backbone only)
    assert all(p.grad is None for p in fw.teacher.parameters())
    assert terms["s2/crl"].item() == 0.0  # the ablation student has no L_CRL


def test_framework_kd_mode_single_student_no_room():
    cfg = FrameworkConfig(family="nanotrack", mode="kd", teacher="clean", students=["threshold"], trainable=["all"])
    fw = MLKDFramework(cfg, build_tracker("nanotrack")).train()
    out = fw(_batch())
    loss, terms, best = out.total, out.logged, out.best
    assert best is None and "ml" not in terms and torch.isfinite(loss)
    with pytest.raises(ValueError, match="at least two"):
        FrameworkConfig(family="nanotrack", mode="ml", students=["l2"])


def test_framework_siamrpn_losses_run():
    torch.manual_seed(0)
    cfg = FrameworkConfig(family="siamrpn_alex", mode="ml", teacher="clean", students=["l2", "threshold"])
    fw = MLKDFramework(cfg, build_tracker("siamrpn_alex")).train()
    labels = -torch.ones(1, 5, 17, 17, dtype=torch.long)
    labels[:, 2, 8, 8] = 1
    labels[:, :, 0, :] = 0
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    batch = {
        "template": z,
        "search": x,
        "template_clean": z,
        "search_clean": x,
        "label_cls": labels,
        "label_loc": torch.zeros(1, 20, 17, 17),
        "label_loc_weight": (labels == 1).float(),
    }
    out = fw(batch)
    loss, terms = out.total, out.logged
    loss.backward()
    assert torch.isfinite(loss) and terms["s0/reg"] > 0


# --------------------------------------------------------------------------- config and schedule


def test_checked_in_configs_load():
    paper = load_config(REPO / "training/configs/siamrpn_alex_paper.yaml")
    assert (paper.train.lr, paper.train.batch, len(paper.framework.students)) == (0.005, 64, 3)
    w = paper.framework.weights
    assert (w.l1, w.l2, w.l3, w.l4) == (1.0, 1000.0, 0.2, 20.0)
    small = load_config(REPO / "training/configs/nanotrack_small.yaml", ["train.epochs=1"])
    assert small.family == "nanotrack" and small.train.epochs == 1 and small.data.clean  # clean teacher
    with pytest.raises(ValueError, match="unknown keys"):
        config_from_dict({"family": "nanotrack", "data": {"roots": []}, "framework": {"bogus": 1}})


def test_lr_schedule_warmup_and_log_decay():
    cfg = config_from_dict(
        {
            "family": "nanotrack",
            "data": {"roots": []},
            "train": {"lr": 0.01, "lr_end": 0.001, "warmup_epochs": 1, "warmup_factor": 0.1},
        }
    ).train
    assert lr_at(0, 30, 10, cfg) == pytest.approx(0.001)
    assert lr_at(10, 30, 10, cfg) == pytest.approx(0.01)
    assert lr_at(29, 30, 10, cfg) == pytest.approx(0.001)


# --------------------------------------------------------------------------- DDP and resume


def test_two_process_gloo_gradients_match_single_process(tmp_path, data_root):
    # One SGD step with lr 1 and no momentum/decay: (w0 - w1) is exactly the (averaged) gradient.
    # Per-process batch 2: torch 2.13's CPU BatchNorm backward is wrong at batch 1 for the
    # channels-last-strided gradient NanoTrack's pixel-wise xcorr produces (reported to the lead).
    cfg = tiny_config(data_root, epochs=1, batch=4, lr=1.0, lr_end=1.0, momentum=0.0, weight_decay=0.0)
    cfg["data"]["samples_per_epoch"] = 4
    cfg["tracker_checkpoint"] = str(SHARED / "weights/nanotrack_v2/nanotrackv2.pth")
    path = _write(tmp_path, cfg)
    single = _trainer(["--config", str(path), "--run-dir", str(tmp_path / "one")])
    assert single.returncode == 0, single.stderr[-3000:]
    double = _trainer(["--config", str(path), "--run-dir", str(tmp_path / "two")], nproc=2, timeout=180)
    assert double.returncode == 0, double.stderr[-3000:]
    w0 = build_tracker("nanotrack", cfg["tracker_checkpoint"]).state_dict()
    for a, b in zip(_students(tmp_path / "one"), _students(tmp_path / "two"), strict=True):
        grads_a = {k: w0[k] - a[k] for k in a if a[k].is_floating_point()}
        grads_b = {k: w0[k] - b[k] for k in b if b[k].is_floating_point()}
        assert any(g.abs().sum() > 0 for g in grads_a.values())
        for k in grads_a:
            scale = grads_a[k].abs().max().item()
            torch.testing.assert_close(grads_b[k], grads_a[k], rtol=1e-3, atol=1e-4 * scale + 1e-7, msg=k)


def test_kill_and_resume_reaches_same_weights(tmp_path, data_root):
    path = _write(tmp_path, tiny_config(data_root))  # 2 epochs x 4 steps, checkpoint every 2 steps
    full = _trainer(["--config", str(path), "--run-dir", str(tmp_path / "full")])
    assert full.returncode == 0, full.stderr[-3000:]
    # killed (SIGKILL) after step 3, mid-epoch, one step after the step-2 checkpoint: the trainer runs as
    # `python -m mlkd_training.trainer`, with its step logger wrapped here to die like a killed job
    killer = (
        "import os, signal, sys\n"
        "import mlkd_training.trainer as t\n"
        "log_step = t._log_step\n"
        "def dying(*a, **k):\n"
        "    log_step(*a, **k)\n"
        "    if a[5] == 3:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "t._log_step = dying\n"
        "sys.exit(t.main(sys.argv[1:]))\n"
    )
    killed = _trainer(["--config", str(path), "--run-dir", str(tmp_path / "cut")], code=killer)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (tmp_path / "cut" / "last.pt").is_file() and not (tmp_path / "cut" / "students").exists()
    resumed = _trainer(["--config", str(path), "--run-dir", str(tmp_path / "cut"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr and "at step 2" in resumed.stderr
    for a, b in zip(_students(tmp_path / "full"), _students(tmp_path / "cut"), strict=True):
        for k in a:
            assert torch.equal(b[k], a[k]), k  # bit-for-bit on CPU
    # the log was rewound to the checkpoint and continued: one row per step, no duplicates
    steps = [line.split(",")[0] for line in (tmp_path / "cut" / "log.csv").read_text().splitlines()[1:]]
    assert steps == [str(s) for s in range(1, 9)]
    run = tmp_path / "cut"
    for name in ("config.yaml", "git_revision.txt", "environment.txt", "DONE", "epoch_002.pt"):
        assert (run / name).is_file(), name
    assert "torch " + torch.__version__ in (run / "environment.txt").read_text()
    assert list((run / "tensorboard").iterdir())
