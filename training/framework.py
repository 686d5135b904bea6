"""The MLKD framework: a frozen teacher and n students, each with its own correlation loss.

Modes:
- `kd`: every student learns from the teacher alone (one student is the paper's plain KD; several
  students here are independent runs sharing data, e.g. the ablation student without L_CRL);
- `ml`: the same, plus the mutual-learning room (L_ML) across the students.
Per student: l1 (L_cls + L_reg) + l2 (L_KDC + L_KDR) + l3 L_CRL, plus l4 times its own part of L_ML
when it is in the room. Students share no parameters, so each student's gradient is that of its own
loss; the trainer clips each student on its own, which keeps the students independent runs.

Teacher kinds:
- `darklighter`: DarkLighter on every (dark) crop, then the tracker (the paper's teacher);
- `clean`: the same tracker on the clean daytime crop (an oracle enhancer), while the students see
  the darkened crop. Possible only because our night data is darkened day data.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from mlkd_model.nets.build import build_teacher
from mlkd_model.nets.common import Freezable, HeadOutput
from mlkd_training import losses
from mlkd_training.adapter import make_adapter_student
from mlkd_training.data import EXEMPLAR_SIZE, SEARCH_SIZE
from mlkd_training.room import MutualLearningRoom

log = logging.getLogger(__name__)

TEACHER_KINDS = ("darklighter", "clean")
MODES = ("kd", "ml")


@dataclass
class LossWeights:
    l1: float = 1.0  # L_cls + L_reg
    l2: float = 1000.0  # L_KDC + L_KDR
    l3: float = 0.2  # L_CRL (for the feature student: its target-aware feature distillation)
    l4: float = 20.0  # L_ML


@dataclass
class FrameworkConfig:
    family: str
    mode: str = "ml"
    teacher: str = "darklighter"
    students: list[str] = field(default_factory=lambda: ["l2", "spatial", "threshold"])  # CRL kind of each
    # Indices of the students in the mutual-learning room (mode ml; default: all). The others are
    # independent KD students trained on the same batches: the ablation rows of one run.
    room: list[int] | None = None
    trainable: list[str] = field(default_factory=lambda: ["backbone"])  # parameter-name prefixes, or ["all"]
    # Indices of night-adapter students (training/adapter.py): the tracker frozen, low-rank adapters in its
    # backbone that open only on dark crops; `trainable` does not apply to them. Their parameters learn
    # at lr * adapter_lr_scale (they start from zero, not from trained weights).
    adapters: list[int] = field(default_factory=list)
    adapter_rank: int = 8
    adapter_lr_scale: float = 1.0
    freeze_bn: bool = False  # keep every BatchNorm of the students in eval mode (small per-GPU batches)
    temperature: float = 1.0
    kdr_region: str = "positive"  # where L_KDR distils: "positive" points/anchors, or "all"
    crl_tau: float = 0.1
    # normalize: every distillation term is divided by its own size at the start of training and
    # multiplied by the task loss's (measured once on calibration batches, see `calibrate`), so the
    # weights read as shares of the tracking loss whatever each term's native scale (docs/training.md).
    normalize: bool = False
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        if isinstance(self.weights, dict):
            self.weights = LossWeights(**self.weights)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.teacher not in TEACHER_KINDS:
            raise ValueError(f"teacher must be one of {TEACHER_KINDS}, got {self.teacher!r}")
        bad = [k for k in self.students if k not in losses.CRL_KINDS]
        if bad or not self.students:
            raise ValueError(f"students must be a non-empty list of {losses.CRL_KINDS}, got {self.students!r}")
        if self.room is not None and (
            len(set(self.room)) != len(self.room) or any(not 0 <= k < len(self.students) for k in self.room)
        ):
            raise ValueError(f"room must list distinct student indices 0..{len(self.students) - 1}, got {self.room}")
        if self.mode == "ml" and len(self.room_members()) < 2:
            raise ValueError("mode 'ml' needs at least two students in the room")
        n = len(self.students)
        if len(set(self.adapters)) != len(self.adapters) or any(not 0 <= k < n for k in self.adapters):
            raise ValueError(f"adapters must list distinct student indices 0..{n - 1}, got {self.adapters}")
        if self.kdr_region not in ("positive", "all"):
            raise ValueError(f"kdr_region must be 'positive' or 'all', got {self.kdr_region!r}")

    def room_members(self) -> list[int]:
        if self.mode != "ml":
            return []
        return list(range(len(self.students))) if self.room is None else list(self.room)


# Raw terms whose start-of-training size `calibrate` measures ("corr" = MSE of correlation maps: the
# unit of L_ML, which is 0 at the start because every student begins as the same network).
NORMALIZED_TERMS = ("task", "kd", "l2", "spatial", "threshold", "feature", "corr")


class FrozenTracker(Freezable):
    """The `clean` teacher: the tracker alone, frozen (it stays in eval mode under .train())."""

    def __init__(self, tracker: nn.Module) -> None:
        super().__init__()
        self.tracker = tracker
        self.family = tracker.family

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> HeadOutput:
        return self.tracker(z, x)


def make_student(tracker: nn.Module, trainable: list[str]) -> nn.Module:
    """A copy of the teacher's tracker in which only parameters under the `trainable` prefixes learn."""
    student = copy.deepcopy(tracker)
    train_all = "all" in trainable
    for name, p in student.named_parameters():
        p.requires_grad_(train_all or any(name.startswith(prefix) for prefix in trainable))
    if not any(p.requires_grad for p in student.parameters()):
        raise ValueError(f"no student parameter matches trainable prefixes {trainable}")
    return student


class MLKDFramework(nn.Module):
    """forward(batch) -> StepLosses (per-student losses, so the trainer can clip each student on its own)."""

    def __init__(self, cfg: FrameworkConfig, tracker: nn.Module, enhancer_checkpoint: str | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.family = cfg.family
        teacher_tracker = copy.deepcopy(tracker)
        if cfg.teacher == "darklighter":
            if enhancer_checkpoint is None:
                raise ValueError("teacher 'darklighter' needs the DarkLighter checkpoint (enhancer_checkpoint)")
            self.teacher: nn.Module = build_teacher(teacher_tracker, enhancer_checkpoint).freeze()
        else:
            self.teacher = FrozenTracker(teacher_tracker).freeze()
        self.students = nn.ModuleList(
            make_adapter_student(tracker, cfg.adapter_rank)
            if k in cfg.adapters
            else make_student(tracker, cfg.trainable)
            for k in range(len(cfg.students))
        )
        self.room = MutualLearningRoom() if cfg.mode == "ml" else None
        # The feature student's teacher is always the clean-frame tracker (its features are the target).
        if "feature" in cfg.students:
            self.clean_tracker = (
                self.teacher if cfg.teacher == "clean" else FrozenTracker(copy.deepcopy(tracker)).freeze()
            )
        # Reference sizes of NORMALIZED_TERMS (set by calibrate; a buffer, so checkpoints carry it).
        self.register_buffer("reference", torch.ones(len(NORMALIZED_TERMS)))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))

    def train(self, mode: bool = True) -> MLKDFramework:
        super().train(mode)
        # BatchNorm layers whose weights do not learn keep their running statistics too (pysot does
        # the same for frozen backbone layers); freeze_bn extends that to every BatchNorm.
        for student in self.students:
            for m in student.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    frozen = not any(p.requires_grad for p in m.parameters(recurse=False))
                    if frozen or self.cfg.freeze_bn:
                        m.eval()
        return self

    def forward(self, batch: dict[str, torch.Tensor]) -> StepLosses:
        """Every student's weighted loss (its own terms plus its part of l4 L_ML) and the logged terms."""
        cfg, w = self.cfg, self.cfg.weights
        z, x = batch["template"], batch["search"]
        feature_students = [k for k, kind in enumerate(cfg.students) if kind == "feature"]
        t_feat = None
        with torch.no_grad():
            if cfg.teacher == "clean" and feature_students:
                t_out, t_feat = _with_features(self.teacher, batch["template_clean"], batch["search_clean"])
            elif cfg.teacher == "clean":
                t_out = self.teacher(batch["template_clean"], batch["search_clean"])
            else:
                t_out = self.teacher(z, x)
                if feature_students:
                    t_feat = _with_features(self.clean_tracker, batch["template_clean"], batch["search_clean"])[1]
        labels = batch["label_cls"]
        region = (labels == 1).float() if cfg.kdr_region == "positive" else None
        raw: list[dict[str, torch.Tensor]] = []
        outputs = []
        for student, kind in zip(self.students, cfg.students, strict=True):
            if kind == "feature":
                out, s_feat = _with_features(student, z, x)
            else:
                out, s_feat = student(z, x), None
            outputs.append(out)
            l_cls = losses.select_cross_entropy(out.cls, labels)
            l_reg = losses.regression_loss(self.family, out.loc, batch)
            terms = {
                "cls": l_cls,
                "reg": l_reg,
                "kdc": losses.kd_cls_loss(out.cls, t_out.cls, cfg.temperature),
                "kdr": losses.kd_reg_loss(out.loc, t_out.loc, self.family, cfg.temperature, region),
            }
            if kind == "threshold":
                terms["crl"] = losses.crl_threshold(out.corr, t_out.corr, cfg.crl_tau)
            elif kind == "feature":
                assert t_feat is not None and s_feat is not None
                terms["crl"] = self._feature_loss(s_feat, t_feat, batch["box"])
            else:
                terms["crl"] = losses.correlation_loss(kind, out.corr, t_out.corr)
            raw.append(terms)
        members = cfg.room_members()
        room_result = None
        if members:
            room_result = self.room([outputs[k].cls.float() for k in members], [outputs[k].corr for k in members])
        per_student: list[torch.Tensor] = []
        parts: list[dict[str, torch.Tensor]] = []
        logged: dict[str, torch.Tensor] = {}
        for k, (terms, kind) in enumerate(zip(raw, cfg.students, strict=True)):
            weighted = {
                "task": w.l1 * (terms["cls"] + terms["reg"]),
                "kd": w.l2 * self._scale("kd") * (terms["kdc"] + terms["kdr"]),
                "crl": w.l3 * self._scale(kind) * terms["crl"] if kind != "none" else terms["crl"],
            }
            if room_result is not None and k in members:
                weighted["ml"] = w.l4 * self._scale("corr") * room_result.per_student[members.index(k)]
            parts.append(weighted)
            per_student.append(sum(weighted.values()))
            for name, value in terms.items():
                logged[f"s{k}/{name}"] = value.detach()
            logged[f"s{k}/total"] = per_student[-1].detach()
        best_counts = None
        if room_result is not None:
            logged["ml"] = room_result.loss.detach()
            counts = torch.bincount(room_result.best, minlength=len(members))
            best_counts = torch.zeros(len(cfg.students), dtype=torch.long, device=counts.device)
            best_counts[members] = counts
        total = sum(per_student)
        logged["total"] = total.detach()
        return StepLosses(total, per_student, parts, logged, best_counts, raw)

    def _scale(self, term: str) -> torch.Tensor | float:
        """The normalisation factor of a raw term (1 without `normalize`)."""
        if not self.cfg.normalize:
            return 1.0
        idx = NORMALIZED_TERMS.index(term)
        return self.reference[0] / self.reference[idx].clamp_min(1e-12)

    def _feature_loss(self, s_feat: tuple, t_feat: tuple, box: torch.Tensor) -> torch.Tensor:
        """Template features weighted around the (centred) template target, search features around the box."""
        (zs, xs), (zt, xt) = s_feat, t_feat
        z_box = torch.tensor([[EXEMPLAR_SIZE / 4, EXEMPLAR_SIZE / 4, 3 * EXEMPLAR_SIZE / 4, 3 * EXEMPLAR_SIZE / 4]])
        z_w = losses.target_weights(z_box.to(zs.device).expand(zs.shape[0], 4), EXEMPLAR_SIZE, zs.shape[-1])
        x_w = losses.target_weights(box, SEARCH_SIZE, xs.shape[-1])
        return losses.feature_distillation(zs, zt, z_w) + losses.feature_distillation(xs, xt, x_w)

    @torch.no_grad()
    def calibrate(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Measure each raw term's mean size on these batches (students as at the start) for `normalize`."""
        sums = torch.zeros(len(NORMALIZED_TERMS), dtype=torch.float64)
        counts = torch.zeros(len(NORMALIZED_TERMS), dtype=torch.float64)
        was_training = self.training
        self.train()
        for batch in batches:
            out = self(batch)
            t_out = (
                self.teacher(batch["template_clean"], batch["search_clean"])
                if self.cfg.teacher == "clean"
                else self.teacher(batch["template"], batch["search"])
            )
            s_out = self.students[0](batch["template"], batch["search"])
            values = {
                "task": out.raw[0]["cls"] + out.raw[0]["reg"],
                "kd": out.raw[0]["kdc"] + out.raw[0]["kdr"],
                "corr": losses.crl_l2(s_out.corr, t_out.corr),
            }
            for k, kind in enumerate(self.cfg.students):
                if kind != "none":
                    values[kind] = out.raw[k]["crl"]
            for name, v in values.items():
                i = NORMALIZED_TERMS.index(name)
                sums[i] += float(v)
                counts[i] += 1
        self.train(was_training)
        mean = torch.where(counts > 0, sums / counts.clamp_min(1), torch.ones_like(sums))
        self.reference.copy_(mean.to(self.reference))
        return dict(zip(NORMALIZED_TERMS, mean.tolist(), strict=True))


@dataclass
class StepLosses:
    total: torch.Tensor  # sum over students: what backward() runs on
    per_student: list[torch.Tensor]  # each student's weighted loss (its parameters get only this gradient)
    parts: list[dict[str, torch.Tensor]]  # per student: weighted "task", "kd", "crl", "ml" (gradient shares)
    logged: dict[str, torch.Tensor]  # detached raw terms for the log
    best: torch.Tensor | None  # per student: samples on which it was the room's best
    raw: list[dict[str, torch.Tensor]]


def _with_features(tracker: nn.Module, z: torch.Tensor, x: torch.Tensor) -> tuple[HeadOutput, tuple]:
    """Run a tracker and also return its backbone's outputs (template, search), caught by a forward hook."""
    caught: list[torch.Tensor] = []
    backbone = getattr(tracker, "tracker", tracker).backbone  # FrozenTracker wraps the tracker
    handle = backbone.register_forward_hook(lambda _m, _i, out: caught.append(out))
    try:
        out = tracker(z, x)
    finally:
        handle.remove()
    if len(caught) != 2:
        raise RuntimeError(f"expected the backbone to run twice (template, search), it ran {len(caught)} times")
    return out, (caught[0], caught[1])
