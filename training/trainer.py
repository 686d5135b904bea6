"""MLKD trainer: one script for one CPU, one GPU or many (torchrun + DDP), resumable after a kill.

    python -m mlkd_training.trainer --config training/configs/nanotrack_small.yaml --run-dir runs/x
    torchrun --nproc_per_node 4 -m mlkd_training.trainer --config ... --run-dir runs/x

DDP uses gloo on CPU and NCCL on GPU; AMP (float16 autocast + GradScaler) on GPU. A checkpoint
(`last.pt`, written atomically) is saved every `train.checkpoint_every` steps and at each epoch end;
rerunning with --resume continues from it with the same data order and results: every sample is a
pure function of (seed, epoch, index), the LR a function of the step, and the torch RNG states are
restored. Each run directory keeps its config, git revision and environment.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import logging
import os
import platform
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch import nn
from tqdm import tqdm

from mlkd_model.nets.build import build_tracker
from mlkd_model.provenance import git_revision
from mlkd_training.commands.train import add_run_arguments
from mlkd_training.config import RunConfig, TrainConfig, load_config
from mlkd_training.data import ShardedBatchSampler, build_dataset, make_loader
from mlkd_training.framework import FrameworkConfig, MLKDFramework

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- distributed setup


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> Dist:
    """Read torchrun's environment; NCCL on GPU, gloo on CPU. One process without torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    return Dist(rank, world, local, dev)


def lr_at(step: int, total: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Linear warm-up from lr * warmup_factor, then log-linear decay to lr_end (a function of the step only)."""
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return cfg.lr * (cfg.warmup_factor + (1 - cfg.warmup_factor) * step / warm)
    span = max(total - warm - 1, 1)
    frac = min((step - warm) / span, 1.0)
    return float(cfg.lr * (cfg.lr_end / cfg.lr) ** frac)


# --------------------------------------------------------------------------- run directory


def write_run_info(run_dir: Path, cfg: RunConfig, dist_info: Dist) -> None:
    """Config, git revision and environment, so a run can be reproduced (and audited) later."""
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    (run_dir / "git_revision.txt").write_text(git_revision() + "\n")
    try:
        freeze = subprocess.run(
            [sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True, timeout=120, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        freeze = f"pip freeze failed: {exc}\n"
    cuda = torch.version.cuda or "none"
    env = (
        f"python {platform.python_version()} on {platform.platform()}\n"
        f"torch {torch.__version__} (cuda {cuda}, gpus visible {torch.cuda.device_count()})\n"
        f"world size {dist_info.world}, device {dist_info.device}\n"
        f"command: {' '.join(sys.argv)}\n\n{freeze}"
    )
    (run_dir / "environment.txt").write_text(env)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write-then-rename, so a kill during the write never leaves a truncated `last.pt`."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _rng_state() -> dict[str, Any]:
    # Only torch's generators: the data pipeline draws from per-sample numpy generators, never global ones.
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class MetricLog:
    """CSV (every logged row) and TensorBoard; on resume, rows after the checkpoint are dropped."""

    def __init__(self, run_dir: Path, columns: list[str], resume_step: int) -> None:
        self.path = run_dir / "log.csv"
        self.columns = columns
        rows: list[dict[str, str]] = []
        if resume_step > 0 and self.path.is_file():
            with self.path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step + 1 if resume_step else None)
        except ImportError:  # tensorboard is in requirements/train.txt; without it, CSV only
            log.warning("tensorboard is not installed: logging to CSV only")
            self.tb = None

    def write(self, row: dict[str, float]) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow({k: row.get(k, "") for k in self.columns})
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "epoch"):
                    self.tb.add_scalar(k, v, int(row["step"]))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


GRADIENT_PARTS = ("task", "kd", "crl", "ml")


def term_names(cfg: FrameworkConfig) -> list[str]:
    names = [f"s{k}/{t}" for k in range(len(cfg.students)) for t in ("cls", "reg", "kdc", "kdr", "crl", "total")]
    if cfg.mode == "ml":
        names.append("ml")
    return [*names, "total"]


def gradient_names(cfg: FrameworkConfig) -> list[str]:
    """Per student: pre-clip gradient norm, the clip factor applied, and each weighted term's gradient share."""
    per = ["grad_norm", "clip_factor", *[f"share_{p}" for p in GRADIENT_PARTS]]
    return [f"s{k}/{n}" for k in range(len(cfg.students)) for n in per]


def clip_per_student(groups: list[list[nn.Parameter]], max_norm: float) -> tuple[list[float], list[float]]:
    """Clip each student's gradient on its own (one student's large gradient never shrinks another's step).

    Returns the pre-clip norms and the factors applied (1 = unclipped)."""
    norms, factors = [], []
    for params in groups:
        grads = [p.grad for p in params if p.grad is not None]
        norm = (
            float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))) if grads else 0.0
        )
        factor = min(1.0, max_norm / (norm + 1e-6)) if max_norm > 0 else 1.0
        if factor < 1.0:
            for g in grads:
                g.mul_(factor)
        norms.append(norm)
        factors.append(factor)
    return norms, factors


def gradient_shares(parts: dict[str, torch.Tensor], params: list[nn.Parameter]) -> dict[str, float]:
    """Each weighted term's share of a student's gradient: <g_term, g_total> / |g_total|^2 (they sum to 1)."""
    grads = {}
    for name, value in parts.items():
        if not value.requires_grad:
            continue
        g = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        flat = [(gi if gi is not None else torch.zeros_like(p)).flatten() for gi, p in zip(g, params, strict=True)]
        grads[name] = torch.cat(flat)
    if not grads:
        return {}
    total = sum(grads.values())
    denom = float(total @ total) or 1.0
    return {name: float(g @ total) / denom for name, g in grads.items()}


# --------------------------------------------------------------------------- training


def student_state(framework: MLKDFramework, k: int) -> dict[str, torch.Tensor]:
    """Student k's tracker weights as a plain state dict (loads with build_tracker(family, path))."""
    return {name: t.detach().cpu().clone() for name, t in framework.students[k].state_dict().items()}


def train(
    cfg: RunConfig,
    run_dir: str | Path,
    resume: bool = False,
    device: str = "auto",
    max_steps: int | None = None,
) -> Path:
    """Train; returns the run directory. max_steps stops early (a partial run, checkpointed)."""
    run_dir = Path(run_dir)
    d = setup_distributed(device)
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    if d.world > 1:
        dist.barrier()
    torch.manual_seed(cfg.seed)  # same on every rank: identical student initialisation (siamrpn from scratch)
    tcfg = cfg.train

    if cfg.tracker_checkpoint is None:
        log.warning("no tracker_checkpoint: teacher and students start from random weights")
    tracker = build_tracker(cfg.family, cfg.tracker_checkpoint)
    framework = MLKDFramework(cfg.framework, tracker, cfg.enhancer_checkpoint).to(d.device)
    use_cuda = d.device.type == "cuda"
    if tcfg.sync_bn and use_cuda and d.world > 1:
        framework.students = nn.SyncBatchNorm.convert_sync_batchnorm(framework.students)
    student_params = [[p for p in st.parameters() if p.requires_grad] for st in framework.students]
    adapters = cfg.framework.adapters
    groups = [{"params": [p for k, ps in enumerate(student_params) if k not in adapters for p in ps], "lr_scale": 1.0}]
    if adapters:  # the night adapters start from zero and learn at their own rate
        scale = cfg.framework.adapter_lr_scale
        groups.append({"params": [p for k in adapters for p in student_params[k]], "lr_scale": scale})
    optimizer = torch.optim.SGD(groups, lr=tcfg.lr, momentum=tcfg.momentum, weight_decay=tcfg.weight_decay)
    amp = tcfg.amp and use_cuda
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    dataset = build_dataset(cfg.data, cfg.family, cfg.seed)
    steps_per_epoch = len(dataset) // tcfg.batch
    if steps_per_epoch < 1:
        raise ValueError(f"data.samples_per_epoch {len(dataset)} is smaller than one batch of {tcfg.batch}")
    total_steps = steps_per_epoch * tcfg.epochs

    step = 0
    ckpt_path = run_dir / "last.pt"
    if resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=d.device, weights_only=True)
        framework.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(
            {k: v.cpu() if isinstance(v, torch.Tensor) else [t.cpu() for t in v] for k, v in state["rng"].items()}
        )
        step = int(state["step"])
        log.info("resumed from %s at step %d", ckpt_path, step)
    elif resume:
        log.info("--resume: no checkpoint in %s yet, starting from scratch", run_dir)
    if cfg.framework.normalize and not bool(framework.calibrated):
        calib = ShardedBatchSampler(0, min(tcfg.calibration_batches, steps_per_epoch), tcfg.batch, d.rank, d.world)
        batches = [{k: v.to(d.device) for k, v in b.items()} for b in make_loader(dataset, calib, cfg.data.workers)]
        reference = framework.calibrate(batches)
        if d.world > 1:  # every rank normalises by the same sizes
            dist.all_reduce(framework.reference)
            framework.reference /= d.world
        framework.calibrated.fill_(True)
        log.info("loss normalisation references: %s", {k: f"{v:.3g}" for k, v in reference.items()})
    if d.main:
        write_run_info(run_dir, cfg, d)
    model: nn.Module = framework
    if d.world > 1:
        model = nn.parallel.DistributedDataParallel(framework, device_ids=[d.device.index] if use_cuda else None)

    room = cfg.framework.mode == "ml"
    metrics = (
        MetricLog(
            run_dir,
            [
                "step",
                "epoch",
                "lr",
                *term_names(cfg.framework),
                *[f"best/s{k}" for k in range(len(cfg.framework.students)) if room],
                *gradient_names(cfg.framework),
                "skipped_frames",
                "sec_per_step",
            ],
            step,
        )
        if d.main
        else None
    )
    stop = min(total_steps, max_steps) if max_steps is not None else total_steps
    best_acc = torch.zeros(len(cfg.framework.students), dtype=torch.long, device=d.device)
    skipped_acc = torch.zeros((), dtype=torch.long, device=d.device)
    bar = tqdm(total=stop, initial=step, disable=not d.main, desc="mlkd train", dynamic_ncols=True, mininterval=2)
    framework.train()

    def checkpoint(epoch_end: bool) -> None:
        if not d.main:
            return
        state = {
            "step": step,
            "model": framework.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": _rng_state(),
            "config": cfg.to_dict(),
        }
        save_checkpoint(ckpt_path, state)
        if epoch_end:
            save_checkpoint(run_dir / f"epoch_{step // steps_per_epoch:03d}.pt", state)

    t_last = time.perf_counter()
    while step < stop:
        epoch, in_epoch = divmod(step, steps_per_epoch)
        sampler = ShardedBatchSampler(epoch, steps_per_epoch, tcfg.batch, d.rank, d.world, start_step=in_epoch)
        loader = make_loader(dataset, sampler, cfg.data.workers, pin_memory=use_cuda)
        for batch in loader:
            lr = lr_at(step, total_steps, steps_per_epoch, tcfg)
            for g in optimizer.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)
            batch = {k: v.to(d.device, non_blocking=True) for k, v in batch.items()}
            with torch.autocast("cuda", dtype=torch.float16) if amp else nullcontext():
                losses = model(batch)
            terms, best = dict(losses.logged), losses.best
            log_now = (step + 1) % tcfg.log_every == 0 or step + 1 == stop
            if log_now and d.world == 1:  # extra backward passes, only on logged steps (not under DDP)
                for k, (parts, group) in enumerate(zip(losses.parts, student_params, strict=True)):
                    for name, share in gradient_shares(parts, group).items():
                        terms[f"s{k}/share_{name}"] = torch.tensor(share)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses.total).backward()
            scaler.unscale_(optimizer)
            norms, factors = clip_per_student(student_params, tcfg.grad_clip)
            for k, (norm, factor) in enumerate(zip(norms, factors, strict=True)):
                terms[f"s{k}/grad_norm"] = torch.tensor(norm)
                terms[f"s{k}/clip_factor"] = torch.tensor(factor)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            if best is not None:
                best_acc += best
            skipped_acc += batch["skipped"].sum()
            bar.update(1)
            if step % tcfg.log_every == 0 or step == stop:
                _log_step(
                    d,
                    metrics,
                    terms,
                    best_acc,
                    skipped_acc,
                    step,
                    epoch,
                    lr,
                    time.perf_counter() - t_last,
                    tcfg.log_every,
                    bar,
                )
                t_last = time.perf_counter()
                best_acc.zero_()
            epoch_end = step % steps_per_epoch == 0
            if step % tcfg.checkpoint_every == 0 or epoch_end or step == stop:
                checkpoint(epoch_end)
            if step >= stop:
                break
    bar.close()
    if d.main:
        for k in range(len(framework.students)):
            (run_dir / "students").mkdir(exist_ok=True)
            torch.save(student_state(framework, k), run_dir / "students" / f"student{k}.pth")
        (run_dir / "DONE" if step >= total_steps else run_dir / "PARTIAL").write_text(f"{step}\n")
        metrics.close()
    if d.world > 1:
        dist.barrier()
    return run_dir


def _log_step(
    d: Dist,
    metrics: MetricLog | None,
    terms: dict[str, torch.Tensor],
    best: torch.Tensor,
    skipped: torch.Tensor,
    step: int,
    epoch: int,
    lr: float,
    seconds: float,
    every: int,
    bar: tqdm,
) -> None:
    names = sorted(terms)
    values = torch.stack([terms[n].float().to(best.device) for n in names])
    best, skipped = best.clone(), skipped.clone()  # reduce copies: the accumulators stay per-rank
    if d.world > 1:  # mean of the loss terms, sum of the counts, over all ranks
        dist.all_reduce(values)
        values /= d.world
        dist.all_reduce(best)
        dist.all_reduce(skipped)
    if metrics is None:
        return
    row: dict[str, float] = {"step": step, "epoch": epoch, "lr": lr, "sec_per_step": seconds / every}
    row.update({n: float(v) for n, v in zip(names, values.tolist(), strict=True)})
    if "best/s0" in metrics.columns:
        row.update({f"best/s{k}": int(v) for k, v in enumerate(best.tolist())})
    row["skipped_frames"] = int(skipped)
    metrics.write(row)
    bar.set_postfix(loss=f"{row['total']:.3f}", lr=f"{lr:.2g}")


# --------------------------------------------------------------------------- command line


def run_from_args(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config, args.overrides)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:  # TypeError: a section not a mapping
        log.error("bad config %s: %s", args.config, exc)
        return 2
    torch.set_num_threads(max(1, int(os.environ.get("MLKD_THREADS", torch.get_num_threads()))))
    train(cfg, args.run_dir, args.resume, args.device, args.max_steps)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlkd_training.trainer", description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    level = logging.INFO if rank == 0 else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
