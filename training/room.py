"""The mutual-learning room: per sample, the most persuasive student teaches the others.

Persuasive value of a student on a sample = (largest local maximum of its foreground score map) /
(second-largest local maximum). A single sharp peak gives a large value; two similar peaks
(distractor confusion) give a value near 1. It is computed on the foreground log-odds (logit(p) =
log p - log(1 - p)), where the ratio of the paper becomes a difference: float32 probabilities
saturate at 1.0 for confident students, which would tie their two peaks and make the most confident
student the least persuasive. The best student per sample is the one with the largest
value; every other student is pulled towards the best one's correlation maps:
    L_ML = (1/u) * sum over the u-1 other students of MSE(C_best.detach(), C_own)
computed per sample and averaged over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mlkd_training.losses import split_classes

SINGLE_PEAK = 1e4  # persuasive value of a map with one local maximum (the most persuasive possible)


def local_maxima(score: torch.Tensor) -> torch.Tensor:
    """B x H x W scores -> the same with every value that is not a 3x3 local maximum set to -inf."""
    peak = F.max_pool2d(score.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)
    return torch.where(score >= peak, score, torch.full_like(score, float("-inf")))


def foreground_logit(cls: torch.Tensor) -> torch.Tensor:
    """B x H x W foreground log-odds from B x 2A x H x W class logits (max over anchors); never saturates."""
    pair = split_classes(cls.detach().float())
    return (pair[:, 1] - pair[:, 0]).amax(dim=1)


def persuasive_value(logit: torch.Tensor) -> torch.Tensor:
    """B x H x W foreground log-odds -> B values: largest minus second-largest local maximum.

    The log of the paper's probability-odds ratio: monotone in it wherever float32 can tell the peaks
    apart, and still ordered where it cannot. Equal neighbouring values both count as maxima (a plateau
    is not a sharp peak), giving 0; a single local maximum gives SINGLE_PEAK.
    """
    b = logit.shape[0]
    peaks = local_maxima(logit.detach().float()).reshape(b, -1)
    top2 = peaks.topk(2, dim=1).values
    gap = top2[:, 0] - top2[:, 1]
    return torch.where(torch.isfinite(gap), gap, torch.full_like(gap, SINGLE_PEAK))


@dataclass
class RoomResult:
    loss: torch.Tensor  # scalar L_ML
    best: torch.Tensor  # B indices of the best student per sample
    values: torch.Tensor  # u x B persuasive values
    per_student: torch.Tensor  # u: each student's part of L_ML (they sum to it; only student k's has its gradient)


def mutual_learning_loss(
    corrs: list[torch.Tensor], values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """L_ML from the students' correlation maps (u tensors B x K x H x W) and persuasive values (u x B).

    Returns (loss, best, per_student) where best[b] is the index of the best student for sample b and
    per_student[k] is student k's part of the loss. The best student's maps are detached, so it
    receives no gradient from the room for that sample.
    """
    u = len(corrs)
    if u < 2:
        raise ValueError("the mutual-learning room needs at least two students")
    best = values.argmax(dim=0)  # B
    stacked = torch.stack([c.float() for c in corrs])  # u x B x K x H x W
    batch = torch.arange(stacked.shape[1], device=stacked.device)
    target = stacked[best, batch].detach()  # B x K x H x W: each sample's best maps
    per_student = ((stacked - target.unsqueeze(0)) ** 2).flatten(2).mean(-1)  # u x B
    others = torch.ones_like(per_student)
    others[best, batch] = 0.0  # the best student adds nothing (its own term would be 0 anyway)
    parts = (per_student * others).mean(1) / u  # u: batch mean of each student's share
    return parts.sum(), best, parts


class MutualLearningRoom:
    """Scores students from their classification maps and returns L_ML plus who was best."""

    def __call__(self, cls_maps: list[torch.Tensor], corrs: list[torch.Tensor]) -> RoomResult:
        values = torch.stack([persuasive_value(foreground_logit(c)) for c in cls_maps])
        loss, best, parts = mutual_learning_loss(corrs, values)
        return RoomResult(loss, best, values, parts)
