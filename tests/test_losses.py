"""MLKD loss terms against hand computations, and where their gradients go."""

from __future__ import annotations

import math

import pytest
import torch

from mlkd_training import losses


def test_select_cross_entropy_matches_hand_computation():
    # one sample, A=1, 1x3 map: logits (bg, fg) per location; labels pos, neg, ignored
    cls = torch.tensor([[0.0, 1.0, 5.0], [2.0, 0.0, -5.0]]).reshape(1, 2, 1, 3)
    labels = torch.tensor([1, 0, -1]).reshape(1, 1, 1, 3)
    ce_pos = -math.log(math.exp(2) / (math.exp(0) + math.exp(2)))
    ce_neg = -math.log(math.exp(1) / (math.exp(1) + math.exp(0)))
    got = losses.select_cross_entropy(cls, labels)
    assert got.item() == pytest.approx(0.5 * ce_pos + 0.5 * ce_neg, rel=1e-6)


def test_weighted_smooth_l1_matches_hand_computation():
    loc = torch.zeros(1, 4, 1, 2)
    delta = torch.zeros(1, 4, 1, 2)
    delta[0, :, 0, 0] = torch.tensor([1.0, 0.05, 0.0, -2.0])
    weight = torch.tensor([[[[1.0, 0.0]]]])
    beta = 0.1
    # smooth-L1: |d| - beta/2 when |d| >= beta, else d^2 / (2 beta)
    expected = (1 - beta / 2) + 0.05**2 / (2 * beta) + 0 + (2 - beta / 2)
    got = losses.weighted_smooth_l1(loc, delta, weight, beta=beta)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_iou_loss_matches_hand_computation():
    pred = torch.tensor([2.0, 2.0, 2.0, 2.0]).reshape(1, 4, 1, 1)
    target = torch.tensor([1.0, 1.0, 1.0, 1.0]).reshape(1, 4, 1, 1)
    got = losses.iou_loss(pred, target, torch.ones(1, 1, 1))
    assert got.item() == pytest.approx(1 - 4 / 16, rel=1e-6)
    assert losses.iou_loss(pred, target, torch.zeros(1, 1, 1)).item() == 0.0


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def test_kd_cls_is_kl_over_the_class_axis_per_location():
    t = torch.tensor([[1.0, 0.0], [0.0, 3.0]]).reshape(1, 2, 1, 2)  # [class][location]
    s = torch.tensor([[0.0, 0.0], [0.0, 1.0]]).reshape(1, 2, 1, 2)
    temp = 2.0

    def soft(a, b):
        ea, eb = math.exp(a / temp), math.exp(b / temp)
        return [ea / (ea + eb), eb / (ea + eb)]

    expected = (_kl(soft(1, 0), soft(0, 0)) + _kl(soft(0, 3), soft(0, 1))) / 2 * temp**2
    assert losses.kd_cls_loss(s, t, temp).item() == pytest.approx(expected, rel=1e-5)


def test_kd_cls_does_not_mix_samples():
    # The official code softmaxes across the batch; ours must give each sample its own loss.
    torch.manual_seed(0)
    s, t = torch.randn(2, 10, 3, 3), torch.randn(2, 10, 3, 3)
    both = losses.kd_cls_loss(s, t, 2.0)
    halves = (losses.kd_cls_loss(s[:1], t[:1], 2.0) + losses.kd_cls_loss(s[1:], t[1:], 2.0)) / 2
    assert both.item() == pytest.approx(halves.item(), rel=1e-6)


def test_kd_reg_is_zero_for_equal_outputs_and_matches_hand_computation():
    bins = torch.linspace(-2, 2, 5)
    sigma = 1.0
    v_t, v_s = 0.3, -0.5
    lt = losses.edge_logits(torch.tensor(v_t), bins, sigma)
    ls = losses.edge_logits(torch.tensor(v_s), bins, sigma)
    p, q = torch.softmax(lt, 0).tolist(), torch.softmax(ls, 0).tolist()
    s = torch.full((1, 4, 1, 1), v_s)
    t = torch.full((1, 4, 1, 1), v_t)
    got = losses.kd_reg_loss(s, t, "siamrpn_alex", temperature=1.0, num_bins=5)
    assert got.item() == pytest.approx(_kl(p, q), rel=1e-5)
    assert losses.kd_reg_loss(t, t, "siamrpn_alex").item() == pytest.approx(0.0, abs=1e-7)
    # NanoTrack: distances in pixels, compared in log space
    d = torch.full((1, 4, 2, 2), 20.0)
    assert losses.kd_reg_loss(d, d, "nanotrack").item() == pytest.approx(0.0, abs=1e-7)
    assert losses.kd_reg_loss(d * 2, d, "nanotrack").item() > 0


def test_crl_l2_and_spatial_and_threshold_hand_values():
    cs = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    ct = torch.zeros(1, 1, 2, 2)
    assert losses.crl_l2(cs, ct).item() == pytest.approx((0 + 1 + 4 + 9) / 4)
    # spatial: constant teacher map -> N_T = 0; student N via explicit neighbours, on probabilities
    # relative to a uniform map (x H*W = 4)
    p = torch.softmax(cs.flatten(), 0).reshape(2, 2) * 4
    n = [
        (p[0, 0] - p[0, 1]) + (p[0, 0] - p[1, 0]),
        (p[0, 1] - p[0, 0]) + (p[0, 1] - p[1, 1]),
        (p[1, 0] - p[0, 0]) + (p[1, 0] - p[1, 1]),
        (p[1, 1] - p[0, 1]) + (p[1, 1] - p[1, 0]),
    ]
    expected = sum(float(v) ** 2 for v in n) / 4
    assert losses.crl_spatial(cs, ct).item() == pytest.approx(expected, rel=1e-5)
    # threshold: a tiny tau makes the soft binarisation ~ the hard one: [0, 0, 1, 1] vs [1, 0, 0, 1]
    ct2 = torch.tensor([[[[3.0, 0.0], [0.0, 3.0]]]])
    assert losses.crl_threshold(cs, ct2, tau=1e-3).item() == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize("kind", ["l2", "spatial", "threshold"])
def test_crl_gradient_reaches_student_not_teacher(kind):
    torch.manual_seed(1)
    cs = torch.randn(2, 3, 5, 5, requires_grad=True)
    ct = torch.randn(2, 3, 5, 5, requires_grad=True)
    losses.correlation_loss(kind, cs, ct).backward()
    assert cs.grad is not None and cs.grad.abs().sum() > 0
    assert ct.grad is None


def test_response_threshold_gradient_is_nonzero_at_default_tau():
    torch.manual_seed(2)
    cs = torch.randn(1, 4, 17, 17, requires_grad=True)
    ct = torch.randn(1, 4, 17, 17)
    losses.crl_threshold(cs, ct).backward()
    assert cs.grad.abs().max() > 1e-4


@pytest.mark.parametrize("family,channels", [("siamrpn_alex", 20), ("nanotrack", 4)])
def test_kd_gradients_student_only(family, channels):
    torch.manual_seed(3)
    s_cls = torch.randn(2, channels // 2, 4, 4, requires_grad=True)
    t_cls = torch.randn(2, channels // 2, 4, 4, requires_grad=True)
    s_loc = torch.rand(2, channels, 4, 4, requires_grad=True)
    t_loc = torch.rand(2, channels, 4, 4, requires_grad=True)
    (losses.kd_cls_loss(s_cls, t_cls, 2.0) + losses.kd_reg_loss(s_loc + 0.5, t_loc + 0.5, family, 2.0)).backward()
    assert s_cls.grad.abs().sum() > 0 and s_loc.grad.abs().sum() > 0
    assert t_cls.grad is None and t_loc.grad is None


def test_none_crl_is_zero_and_unknown_kind_fails():
    cs = torch.randn(1, 2, 3, 3, requires_grad=True)
    assert losses.correlation_loss("none", cs, cs.detach()).item() == 0.0
    with pytest.raises(ValueError, match="unknown correlation loss"):
        losses.correlation_loss("l3", cs, cs)
