"""Losses against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from translate.losses import gan_loss, gradient_penalty, l1_loss

PRED = torch.tensor([[[[2.0, -1.0], [0.0, 0.5]]]])  # (1, 1, 2, 2) logits


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_vanilla_is_bce_with_logits():
    # BCE(x, 1) = softplus(-x); BCE(x, 0) = softplus(x)
    values = [2.0, -1.0, 0.0, 0.5]
    real = sum(_softplus(-v) for v in values) / 4
    fake = sum(_softplus(v) for v in values) / 4
    assert gan_loss(PRED, is_real=True, mode="vanilla").item() == pytest.approx(real, rel=1e-6)
    assert gan_loss(PRED, is_real=False, mode="vanilla").item() == pytest.approx(fake, rel=1e-6)


def test_lsgan_is_mean_squared_distance_to_label():
    assert gan_loss(PRED, is_real=True, mode="lsgan").item() == pytest.approx((1 + 4 + 1 + 0.25) / 4)
    assert gan_loss(PRED, is_real=False, mode="lsgan").item() == pytest.approx((4 + 1 + 0 + 0.25) / 4)


def test_one_sided_label_smoothing_only_moves_real_targets_for_d():
    smoothed = gan_loss(PRED, is_real=True, mode="lsgan", label_smoothing=0.1).item()
    assert smoothed == pytest.approx(((2 - 0.9) ** 2 + 1.9**2 + 0.9**2 + 0.4**2) / 4)
    fake = gan_loss(PRED, is_real=False, mode="lsgan", label_smoothing=0.1).item()
    assert fake == pytest.approx((4 + 1 + 0 + 0.25) / 4)
    for_g = gan_loss(PRED, is_real=True, mode="lsgan", label_smoothing=0.1, for_discriminator=False).item()
    assert for_g == pytest.approx((1 + 4 + 1 + 0.25) / 4)


def test_wgan_and_hinge():
    mean = (2 - 1 + 0 + 0.5) / 4
    assert gan_loss(PRED, is_real=True, mode="wgangp").item() == pytest.approx(-mean)
    assert gan_loss(PRED, is_real=False, mode="wgangp").item() == pytest.approx(mean)
    # hinge D: relu(1 - x) for real, relu(1 + x) for fake; G: -mean
    assert gan_loss(PRED, is_real=True, mode="hinge").item() == pytest.approx((0 + 2 + 1 + 0.5) / 4)
    assert gan_loss(PRED, is_real=False, mode="hinge").item() == pytest.approx((3 + 0 + 1 + 1.5) / 4)
    assert gan_loss(PRED, is_real=True, mode="hinge", for_discriminator=False).item() == pytest.approx(-mean)


def test_multiscale_predictions_are_averaged():
    other = torch.zeros(1, 1, 4, 4)
    both = gan_loss([PRED, other], is_real=True, mode="lsgan").item()
    assert both == pytest.approx(((1 + 4 + 1 + 0.25) / 4 + 1.0) / 2)


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="wasserstein"):
        gan_loss(PRED, is_real=True, mode="wasserstein")


def test_l1_weight():
    a, b = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert l1_loss(a, b, weight=100.0).item() == pytest.approx(50.0)


def test_gradient_penalty_matches_closed_form_for_linear_critic():
    # D(x) = sum(w * x) has gradient w everywhere: penalty = weight * (||w|| - 1)^2
    w = torch.full((1, 1, 2, 2), 1.5)
    critic = lambda x: (x * w).sum(dim=(1, 2, 3))  # noqa: E731
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    expected = 10.0 * (w.norm().item() - 1.0) ** 2
    assert gradient_penalty(critic, real, fake, weight=10.0).item() == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_is_differentiable_wrt_critic():
    conv = torch.nn.Conv2d(3, 1, 3)
    gp = gradient_penalty(lambda x: [conv(x)], torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8))
    gp.backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_hole_weighted_l1_by_hand():
    from translate.losses import hole_weighted_l1

    fake = torch.tensor([[[[0.5, -0.5], [1.0, 0.0]]]])
    target = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]]])
    hole = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    # |d| = 0.5, 0.5, 1, 0 weighted 6, 1, 1, 6 -> (3 + 0.5 + 1 + 0) / 4
    assert hole_weighted_l1(fake, target, hole, hole_weight=6, known_weight=1).item() == pytest.approx(4.5 / 4)
    assert hole_weighted_l1(fake, target, hole, hole_weight=1, known_weight=1).item() == pytest.approx(2.0 / 4)


@pytest.mark.parametrize("mode", ["vanilla", "lsgan"])
def test_masked_gan_loss_labels_holes_fake_and_known_patches_real(mode):
    from translate.losses import masked_gan_loss

    hole = torch.zeros(1, 1, 4, 4)
    hole[0, 0, :2, :2] = 1.0  # top-left patch all hole
    hole[0, 0, 0, 2] = hole[0, 0, 1, 3] = 1.0  # top-right patch half hole
    hole[0, 0, 3, 3] = 1.0  # bottom-right patch a quarter
    shares = [1.0, 0.5, 0.0, 0.25]  # per 2x2 patch, row by row
    pred = torch.tensor([[[[2.0, -1.0], [0.0, 0.5]]]])
    x = [2.0, -1.0, 0.0, 0.5]
    if mode == "vanilla":  # BCE(x, y) = y softplus(-x) + (1 - y) softplus(x)
        loss = lambda v, y: y * _softplus(-v) + (1 - y) * _softplus(v)  # noqa: E731
    else:
        loss = lambda v, y: (v - y) ** 2  # noqa: E731
    d = sum(loss(v, 1 - h) for v, h in zip(x, shares)) / 4
    g = sum(h * loss(v, 1.0) for v, h in zip(x, shares)) / sum(shares)
    assert masked_gan_loss(pred, hole, mode=mode, for_discriminator=True).item() == pytest.approx(d, rel=1e-6)
    assert masked_gan_loss(pred, hole, mode=mode, for_discriminator=False).item() == pytest.approx(g, rel=1e-6)
    assert masked_gan_loss(pred, torch.zeros_like(hole), mode=mode, for_discriminator=False).item() == 0.0
