"""The MLKD framework: a frozen teacher and n students, each with its own correlation loss.

Modes:
- `kd`: every student learns from the teacher alone (one student is the paper's plain KD; several
  students here are independent runs sharing data, e.g. the ablation student without L_CRL);
- `ml`: the same, plus the mutual-learning room (L_ML) across the students.
Per student: l1 (L_cls + L_reg) + l2 (L_KDC + L_KDR) + l3 L_CRL; the run adds l4 L_ML.

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
from mlkd_model.nets.common import HeadOutput
from mlkd_training import losses
from mlkd_training.room import MutualLearningRoom

log = logging.getLogger(__name__)

TEACHER_KINDS = ("darklighter", "clean")
MODES = ("kd", "ml")


@dataclass
class LossWeights:
    l1: float = 1.0  # L_cls + L_reg
    l2: float = 1000.0  # L_KDC + L_KDR
    l3: float = 0.2  # L_CRL
    l4: float = 20.0  # L_ML


@dataclass
class FrameworkConfig:
    family: str
    mode: str = "ml"
    teacher: str = "darklighter"
    students: list[str] = field(default_factory=lambda: ["l2", "spatial", "threshold"])  # CRL kind of each
    trainable: list[str] = field(default_factory=lambda: ["backbone"])  # parameter-name prefixes, or ["all"]
    freeze_bn: bool = False  # keep every BatchNorm of the students in eval mode (small per-GPU batches)
    temperature: float = 1.0
    kdr_region: str = "positive"  # where L_KDR distils: "positive" points/anchors, or "all"
    crl_tau: float = 0.1
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
        if self.mode == "ml" and len(self.students) < 2:
            raise ValueError("mode 'ml' needs at least two students")
        if self.kdr_region not in ("positive", "all"):
            raise ValueError(f"kdr_region must be 'positive' or 'all', got {self.kdr_region!r}")


class FrozenTracker(nn.Module):
    """The `clean` teacher: the tracker alone, frozen (it stays in eval mode under .train())."""

    def __init__(self, tracker: nn.Module) -> None:
        super().__init__()
        self.tracker = tracker
        self.family = tracker.family

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> HeadOutput:
        return self.tracker(z, x)

    def freeze(self) -> FrozenTracker:
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> FrozenTracker:
        return super().train(False)


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
    """forward(batch) -> (total loss, {term name: detached value}, best-student counts or None)."""

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
        self.students = nn.ModuleList(make_student(tracker, cfg.trainable) for _ in cfg.students)
        self.room = MutualLearningRoom() if cfg.mode == "ml" else None

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

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        cfg, w = self.cfg, self.cfg.weights
        z, x = batch["template"], batch["search"]
        with torch.no_grad():
            if cfg.teacher == "clean":
                t_out = self.teacher(batch["template_clean"], batch["search_clean"])
            else:
                t_out = self.teacher(z, x)
        labels = batch["label_cls"]
        if cfg.kdr_region == "positive":
            region = (labels == 1).float()
        else:
            region = None
        terms: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=x.device)
        outputs = []
        for k, (student, crl_kind) in enumerate(zip(self.students, cfg.students, strict=True)):
            out = student(z, x)
            outputs.append(out)
            l_cls = losses.select_cross_entropy(out.cls, labels)
            if self.family == "siamrpn_alex":
                l_reg = losses.weighted_smooth_l1(out.loc, batch["label_loc"], batch["label_loc_weight"])
            else:
                l_reg = losses.iou_loss(out.loc, batch["label_loc"], labels[:, 0] == 1)
            l_kdc = losses.kd_cls_loss(out.cls, t_out.cls, cfg.temperature)
            l_kdr = losses.kd_reg_loss(out.loc, t_out.loc, self.family, cfg.temperature, region)
            if crl_kind == "threshold":
                l_crl = losses.crl_threshold(out.corr, t_out.corr, cfg.crl_tau)
            else:
                l_crl = losses.correlation_loss(crl_kind, out.corr, t_out.corr)
            student_total = w.l1 * (l_cls + l_reg) + w.l2 * (l_kdc + l_kdr) + w.l3 * l_crl
            total = total + student_total
            for name, value in (("cls", l_cls), ("reg", l_reg), ("kdc", l_kdc), ("kdr", l_kdr), ("crl", l_crl)):
                terms[f"s{k}/{name}"] = value.detach()
            terms[f"s{k}/total"] = student_total.detach()
        best_counts = None
        if self.room is not None:
            result = self.room([o.cls.float() for o in outputs], [o.corr for o in outputs])
            total = total + w.l4 * result.loss
            terms["ml"] = result.loss.detach()
            best_counts = torch.bincount(result.best, minlength=len(self.students))
        terms["total"] = total.detach()
        return total, terms, best_counts
