"""The mutual-learning room: per sample, the most persuasive student teaches the others.

Persuasive value of a student on a sample = (largest local maximum of its foreground score map) /
(second-largest local maximum). A single sharp peak gives a large value; two similar peaks
(distractor confusion) give a value near 1. The best student per sample is the one with the largest
value; every other student is pulled towards the best one's correlation maps:
    L_ML = (1/u) * sum over the u-1 other students of MSE(C_best.detach(), C_own)
computed per sample and averaged over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mlkd_training.losses import foreground_score


def local_maxima(score: torch.Tensor) -> torch.Tensor:
    """B x H x W scores -> the same with every value that is not a 3x3 local maximum set to -inf."""
    peak = F.max_pool2d(score.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)
    return torch.where(score >= peak, score, torch.full_like(score, float("-inf")))


def persuasive_value(score: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """B x H x W foreground scores (probabilities, >= 0) -> B values: largest / second-largest local maximum.

    A map with a single local maximum is divided by eps (the most persuasive possible). Equal
    neighbouring values both count as maxima (a plateau is not a sharp peak), giving a value of 1.
    """
    b = score.shape[0]
    peaks = local_maxima(score.detach().float()).reshape(b, -1)
    top2 = peaks.topk(2, dim=1).values
    second = torch.where(torch.isfinite(top2[:, 1]), top2[:, 1], torch.zeros_like(top2[:, 1]))
    return top2[:, 0] / second.clamp_min(eps)


@dataclass
class RoomResult:
    loss: torch.Tensor  # scalar L_ML
    best: torch.Tensor  # B indices of the best student per sample
    values: torch.Tensor  # u x B persuasive values


def mutual_learning_loss(corrs: list[torch.Tensor], values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L_ML from the students' correlation maps (u tensors B x K x H x W) and persuasive values (u x B).

    Returns (loss, best) where best[b] is the index of the best student for sample b. The best
    student's maps are detached, so it receives no gradient from the room for that sample.
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
    loss = (per_student * others).sum(0) / u  # B
    return loss.mean(), best


class MutualLearningRoom:
    """Scores students from their classification maps and returns L_ML plus who was best."""

    def __call__(self, cls_maps: list[torch.Tensor], corrs: list[torch.Tensor]) -> RoomResult:
        values = torch.stack([persuasive_value(foreground_score(c)) for c in cls_maps])
        loss, best = mutual_learning_loss(corrs, values)
        return RoomResult(loss, best, values)
