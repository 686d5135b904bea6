"""MLKD loss terms, each a small function on plain tensors.

Layouts (as the networks in `mlkd_model.nets` produce them):
- cls logits: B x 2A x H x W, channels [class][anchor] (A = 5 for SiamRPN AlexNet, 1 for NanoTrack);
- SiamRPN loc: B x 4A x H x W anchor deltas, channels [coord][anchor];
- NanoTrack loc: B x 4 x H x W exp'd left/top/right/bottom distances in crop pixels;
- correlation maps C: B x K x H x W.

Every supervised term is normalised per sample and then averaged over the batch, so a batch split
over DDP ranks (gradients averaged) gives the same gradient as the whole batch in one process.
pysot normalises over the whole batch's positives instead; the difference only reweights samples.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from mlkd_model.families import get_family


def split_classes(cls: torch.Tensor) -> torch.Tensor:
    """B x 2A x H x W -> B x 2 x A x H x W (class axis first, as the [class][anchor] layout stores it)."""
    b, c, h, w = cls.shape
    return cls.reshape(b, 2, c // 2, h, w)


def foreground_score(cls: torch.Tensor) -> torch.Tensor:
    """Foreground probability per location, B x H x W: softmax over the class axis, max over anchors."""
    return F.softmax(split_classes(cls), dim=1)[:, 1].amax(dim=1)


def select_cross_entropy(cls: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """pysot's classification loss: 0.5 * CE(positives) + 0.5 * CE(negatives); label -1 is ignored.

    cls: B x 2A x H x W logits; labels: B x A x H x W in {1, 0, -1}. A sample with no positive (a
    negative pair) contributes only its negative half, as in pysot.
    """
    logp = F.log_softmax(split_classes(cls).float(), dim=1)  # B x 2 x A x H x W
    nll_pos = -logp[:, 1]
    nll_neg = -logp[:, 0]
    pos = (labels == 1).float()
    neg = (labels == 0).float()
    dims = (1, 2, 3)
    loss_pos = (nll_pos * pos).sum(dims) / pos.sum(dims).clamp_min(1)
    loss_neg = (nll_neg * neg).sum(dims) / neg.sum(dims).clamp_min(1)
    return (0.5 * loss_pos + 0.5 * loss_neg).mean()


def weighted_smooth_l1(
    loc: torch.Tensor, delta: torch.Tensor, weight: torch.Tensor, beta: float = 1.0 / 9
) -> torch.Tensor:
    """SiamRPN regression: smooth-L1 on anchor deltas, summed over the 4 coordinates, weighted per anchor.

    loc, delta: B x 4A x H x W ([coord][anchor]); weight: B x A x H x W (pysot: 1/#positives on
    positive anchors, 0 elsewhere), so each sample's loss is the mean over its positives.
    """
    b, c, h, w = loc.shape
    diff = F.smooth_l1_loss(loc.float(), delta.float(), reduction="none", beta=beta).reshape(b, 4, c // 4, h, w)
    return (diff.sum(1) * weight).sum((1, 2, 3)).mean()


def iou_loss(pred: torch.Tensor, target: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """NanoTrack regression: 1 - IoU of the ltrb boxes around each positive point (linear IoU loss).

    pred, target: B x 4 x H x W distances (pixels) to the left, top, right, bottom edges; positive:
    B x H x W mask. Samples without positives contribute 0.
    """
    pred, target = pred.float(), target.float()
    pl, pt, pr, pb = pred.unbind(1)
    tl, tt, tr, tb = target.unbind(1)
    area_p = (pl + pr) * (pt + pb)
    area_t = (tl + tr) * (tt + tb)
    inter = (torch.minimum(pl, tl) + torch.minimum(pr, tr)).clamp_min(0) * (
        torch.minimum(pt, tt) + torch.minimum(pb, tb)
    ).clamp_min(0)
    iou = inter / (area_p + area_t - inter).clamp_min(1e-6)
    pos = positive.float()
    per_sample = ((1 - iou) * pos).sum((1, 2)) / pos.sum((1, 2)).clamp_min(1)
    return per_sample.mean()


def _kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, dim: int, temperature: float) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)) along `dim`, one value per remaining position, scaled by T^2 (Hinton)."""
    t = F.log_softmax(teacher_logits.float() / temperature, dim=dim)
    s = F.log_softmax(student_logits.float() / temperature, dim=dim)
    return (t.exp() * (t - s)).sum(dim) * temperature**2


def kd_cls_loss(student_cls: torch.Tensor, teacher_cls: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """L_KDC: KL between softened class distributions, per location and anchor, averaged.

    Softmax over the class axis of each location only; the official code softmaxes across the whole
    batch, which makes every sample's target depend on the others'.
    """
    kl = _kl(split_classes(teacher_cls.detach()), split_classes(student_cls), dim=1, temperature=temperature)
    return kl.mean()


# The task regression loss a family names (`Family.regression_loss`), on its loc output and the batch.
REGRESSION_LOSSES: dict[str, Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]] = {
    "smooth_l1": lambda loc, batch: weighted_smooth_l1(loc, batch["label_loc"], batch["label_loc_weight"]),
    "iou": lambda loc, batch: iou_loss(loc, batch["label_loc"], batch["label_cls"][:, 0] == 1),
}


def regression_loss(family: str, loc: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """L_reg of `family` for one student's loc output."""
    return REGRESSION_LOSSES[get_family(family).regression_loss](loc, batch)


def edge_logits(values: torch.Tensor, bins: torch.Tensor, sigma: float) -> torch.Tensor:
    """Scalar regression outputs -> logits of a discrete distribution over `bins` (new last axis).

    LD (localization distillation) distils a distribution per box edge; our heads regress one
    scalar per edge, so each scalar v is spread over fixed bins with a Gaussian kernel,
    logit_k = -((v - b_k) / sigma)^2 / 2. The mode of the distribution is v, and softening it with
    a temperature widens the kernel, as softening does for LD's learned distributions.
    """
    return -0.5 * ((values.float().unsqueeze(-1) - bins) / sigma) ** 2


def kd_reg_loss(
    student_loc: torch.Tensor,
    teacher_loc: torch.Tensor,
    family: str,
    temperature: float = 1.0,
    weight: torch.Tensor | None = None,
    num_bins: int = 17,
) -> torch.Tensor:
    """L_KDR: KL between per-edge distributions of teacher and student regression (LD-style).

    The family says which values are binned and over what range (`Family.kd_reg_values`,
    `kd_reg_range`): SiamRPN deltas as they are on [-2, 2]; NanoTrack's exp'd pixel distances as
    log(d / 16) on [-3, 3], which undoes the head's exp and keeps the bins well spaced.
    weight: B x A x H x W (or None = uniform) selects/weights the locations distilled, as LD's
    distillation region; it is normalised per sample.
    """
    b, c, h, w = student_loc.shape
    spec = get_family(family)
    lo, hi = spec.kd_reg_range
    s, t = spec.kd_reg_values(student_loc), spec.kd_reg_values(teacher_loc.detach())
    bins = torch.linspace(lo, hi, num_bins, device=student_loc.device)
    sigma = (hi - lo) / (num_bins - 1)
    kl = _kl(edge_logits(t, bins, sigma), edge_logits(s, bins, sigma), dim=-1, temperature=temperature)
    kl = kl.reshape(b, 4, c // 4, h, w).mean(1)  # mean over the 4 edges -> B x A x H x W
    if weight is None:
        return kl.mean()
    wsum = weight.float().sum((1, 2, 3))
    per_sample = (kl * weight).sum((1, 2, 3)) / wsum.clamp_min(1e-12)
    return torch.where(wsum > 0, per_sample, torch.zeros_like(per_sample)).mean()


# --- correlation-map losses (L_CRL), one per student -------------------------------------------------


def crl_l2(student_corr: torch.Tensor, teacher_corr: torch.Tensor) -> torch.Tensor:
    """Student 1: MSE(C_S, C_T)."""
    return F.mse_loss(student_corr.float(), teacher_corr.detach().float())


def neighbour_differences(corr: torch.Tensor) -> torch.Tensor:
    """N(i): softmax over each flattened H x W map, then for every pixel the sum of (p_i - p_j) over
    its 4 neighbours j. Neighbours outside the map are absent (replicate padding makes their difference 0).

    The probabilities are taken relative to a uniform map (p * H * W, mean 1): in absolute form they
    are ~1/(H*W) each, so the loss is ~1e-5 and its student learns from KD alone.
    """
    b, k, h, w = corr.shape
    p = F.softmax(corr.float().reshape(b, k, h * w), dim=-1).reshape(b, k, h, w) * (h * w)
    padded = F.pad(p, (1, 1, 1, 1), mode="replicate")
    up = padded[:, :, :-2, 1:-1]
    down = padded[:, :, 2:, 1:-1]
    left = padded[:, :, 1:-1, :-2]
    right = padded[:, :, 1:-1, 2:]
    return 4 * p - up - down - left - right


def crl_spatial(student_corr: torch.Tensor, teacher_corr: torch.Tensor) -> torch.Tensor:
    """Student 2, spatial consistency: mean((N_S(i) - N_T(i))^2)."""
    return F.mse_loss(neighbour_differences(student_corr), neighbour_differences(teacher_corr.detach()))


def soft_binarize(corr: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """sigmoid((C - mean) / (tau * std)) per flattened map: a differentiable "C > mean".

    The official code thresholds with a hard comparison, whose gradient is zero everywhere, so the
    response-threshold student learned nothing from it. Dividing by the map's std makes tau
    independent of the correlation's scale (which differs by orders of magnitude between families).
    """
    b, k, h, w = corr.shape
    flat = corr.float().reshape(b, k, h * w)
    mean = flat.mean(-1, keepdim=True)
    std = flat.std(-1, keepdim=True).clamp_min(1e-6)
    return torch.sigmoid((flat - mean) / (tau * std))


def crl_threshold(student_corr: torch.Tensor, teacher_corr: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Student 3, response threshold: MSE between the (soft-)binarised maps."""
    return F.mse_loss(soft_binarize(student_corr, tau), soft_binarize(teacher_corr.detach(), tau))


def target_weights(box: torch.Tensor, crop: int, size: int, background: float = 0.1) -> torch.Tensor:
    """B x size x size weights of a feature map over a crop x crop image: a Gaussian around each target box
    (x1, y1, x2, y2 in crop pixels, sigma = half its size) on top of a `background` floor, mean 1 per map."""
    centres = (torch.arange(size, device=box.device, dtype=torch.float32) + 0.5) * (crop / size)
    cx, cy = (box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2
    sx = ((box[:, 2] - box[:, 0]) / 2).clamp_min(crop / size / 2)
    sy = ((box[:, 3] - box[:, 1]) / 2).clamp_min(crop / size / 2)
    gx = torch.exp(-0.5 * ((centres[None, :] - cx[:, None]) / sx[:, None]) ** 2)  # B x size
    gy = torch.exp(-0.5 * ((centres[None, :] - cy[:, None]) / sy[:, None]) ** 2)
    w = background + gy[:, :, None] * gx[:, None, :]
    return w / w.mean((1, 2), keepdim=True)


def feature_distillation(student: torch.Tensor, teacher: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Target-aware feature distillation (EATrack-style): squared error of backbone features, weighted
    per location by `weight` (B x H x W, mean 1) and normalised by the teacher's per-sample feature
    energy, so the term is scale-free (1 = as far from the teacher as the teacher is from zero)."""
    t = teacher.detach().float()
    err = ((student.float() - t) ** 2).mean(1)  # B x H x W
    energy = (t**2).mean((1, 2, 3)).clamp_min(1e-6)
    return ((err * weight).mean((1, 2)) / energy).mean()


CRL_LOSSES = {"l2": crl_l2, "spatial": crl_spatial, "threshold": crl_threshold}
# "feature": the target-aware feature student (its distillation is on backbone features, framework.py).
CRL_KINDS = ("none", *CRL_LOSSES, "feature")


def correlation_loss(kind: str, student_corr: torch.Tensor, teacher_corr: torch.Tensor) -> torch.Tensor:
    """L_CRL of the named kind ('none' = the ablation student: a zero that keeps the graph)."""
    if kind in ("none", "feature"):
        return student_corr.sum() * 0.0
    try:
        return CRL_LOSSES[kind](student_corr, teacher_corr)
    except KeyError:
        raise ValueError(f"unknown correlation loss {kind!r}; expected one of {CRL_KINDS}") from None
