"""Persuasive value and the mutual-learning room."""

from __future__ import annotations

import pytest
import torch

from mlkd_training.room import (
    SINGLE_PEAK,
    MutualLearningRoom,
    mutual_learning_loss,
    persuasive_value,
)


def _map(peaks: dict[tuple[int, int], float], size: int = 9, floor: float = 0.01) -> torch.Tensor:
    m = torch.full((size, size), floor)
    for (y, x), v in peaks.items():
        m[y, x] = v
    return m


def test_one_sharp_peak_beats_two_similar_peaks():
    # persuasive values are taken on log-odds maps: largest minus second-largest local maximum
    sharp = _map({(4, 4): 4.0, (1, 1): 1.0}, floor=-3.0)
    confused = _map({(4, 4): 4.0, (1, 7): 3.5}, floor=-3.0)
    values = persuasive_value(torch.stack([sharp, confused]))
    assert values[0].item() == pytest.approx(3.0, rel=1e-5)
    assert values[1].item() == pytest.approx(0.5, rel=1e-5)
    assert values[0] > values[1]


def test_neighbours_of_the_peak_are_not_local_maxima():
    # the second-largest value sits next to the top peak: not a local maximum, so it is skipped
    m = _map({(4, 4): 4.0, (4, 5): 3.0, (0, 0): 1.0}, floor=-3.0)
    assert persuasive_value(m[None]).item() == pytest.approx(3.0, rel=1e-5)


def test_single_peak_is_most_persuasive_and_plateau_least():
    yy, xx = torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij")
    single = -((yy - 4) ** 2 + (xx - 4) ** 2)[None]  # one hill: no second local maximum anywhere
    plateau = single.clone()
    plateau[0, 4, 5] = 0.0  # two equal neighbours at the top: both count as maxima
    assert persuasive_value(single).item() == SINGLE_PEAK
    assert persuasive_value(plateau).item() == 0.0


def test_ml_loss_picks_best_per_sample_and_hand_value():
    # 3 students, 2 samples, 1x1x1 maps with values chosen by hand
    corrs = [torch.tensor([[[[1.0]]], [[[0.0]]]]) for _ in range(3)]
    corrs[1] = torch.tensor([[[[3.0]]], [[[2.0]]]])
    corrs[2] = torch.tensor([[[[0.0]]], [[[4.0]]]])
    corrs = [c.clone().requires_grad_(True) for c in corrs]
    values = torch.tensor([[5.0, 1.0], [2.0, 1.5], [1.0, 9.0]])  # best: student 0 for sample 0, student 2 for 1
    loss, best, parts = mutual_learning_loss(corrs, values)
    assert best.tolist() == [0, 2]
    assert parts.sum().item() == pytest.approx(loss.item(), rel=1e-6)
    # sample 0: target 1 -> (3-1)^2 + (0-1)^2 = 5; sample 1: target 4 -> (0-4)^2 + (2-4)^2 = 20
    assert loss.item() == pytest.approx(((5 / 3) + (20 / 3)) / 2, rel=1e-6)
    loss.backward()
    # no gradient to the best student of each sample, some to the others
    assert corrs[0].grad[0].abs().sum() == 0 and corrs[2].grad[1].abs().sum() == 0
    assert corrs[0].grad[1].abs().sum() > 0 and corrs[1].grad.abs().sum() > 0 and corrs[2].grad[0].abs().sum() > 0


def test_room_from_score_maps():
    # student 0 has one sharp peak, student 1 two similar: student 0 teaches student 1
    def logits(score: torch.Tensor) -> torch.Tensor:
        fg = torch.logit(score.clamp(1e-4, 1 - 1e-4))
        return torch.stack([torch.zeros_like(fg), fg])[None]  # 1 x 2 x H x W ([bg, fg], A = 1)

    cls0 = logits(_map({(4, 4): 0.9, (1, 1): 0.1}))
    cls1 = logits(_map({(4, 4): 0.9, (1, 7): 0.85}))
    c0 = torch.randn(1, 2, 9, 9, requires_grad=True)
    c1 = torch.randn(1, 2, 9, 9, requires_grad=True)
    result = MutualLearningRoom()([cls0, cls1], [c0, c1])
    assert result.best.tolist() == [0]
    result.loss.backward()
    assert c0.grad.abs().sum() == 0
    assert c1.grad.abs().sum() > 0


def test_room_needs_two_students():
    with pytest.raises(ValueError):
        mutual_learning_loss([torch.zeros(1, 1, 1, 1)], torch.ones(1, 1))
