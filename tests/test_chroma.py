"""Colorization as classification over quantised ab (Zhang, Isola & Efros 2016), checked against a
re-statement of the paper's definitions: bins of 10 units in gamut, soft encoding over the 5 nearest
centres with Gaussian weights (sigma 5), cross-entropy, and the annealed mean
H(Z) = E[f_T(Z)], f_T(z) = exp(log z / T) / sum_q exp(log z_q / T)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from translate.recipes import resolve_config
from translate.data.images import image_to_tensor
from translate.errors import ConfigError
from translate.methods.pix2pix import Pix2Pix
from translate.nets.chroma import (ANNEALED_T, annealed_mean, bin_centres, bin_prior, classification_loss, from_ab,
                                   rebalancing_weights, soft_encode, to_ab)
from translate.nets.unet import UnetGenerator, UnetSpec
from translate.tasks.colorize import lab_split


def _net_units(ab_star: list[float]) -> torch.Tensor:
    return from_ab(torch.tensor(ab_star, dtype=torch.float32)).reshape(1, 2, 1, 1)


def test_bins_are_a_10_unit_grid_over_the_colours_of_real_photos(photo):
    centres = bin_centres().numpy()
    assert (centres % 10 == 0).all() and len(np.unique(centres, axis=0)) == len(centres)
    assert ((centres == 0).all(1)).any()  # grey is a class of its own
    for name in ("astronaut", "coffee", "retina"):
        ab = lab_split(photo(name, 64))[1].reshape(-1, 2).astype(float) - 128
        nearest = np.sqrt(((ab[:, None] - centres[None]) ** 2).sum(-1)).min(1)
        assert nearest.max() <= 5 * np.sqrt(2) + 1e-6  # every colour lies in a kept bin


def test_soft_encoding_weights_the_five_nearest_centres_by_a_gaussian():
    centres = bin_centres()
    target = [23.0, -41.0]
    encoded = soft_encode(_net_units(target), centres)[0, :, 0, 0].numpy()
    # The paper's recipe, restated with numpy on the same a*, b* (net units round-trip to a* exactly).
    ab = to_ab(_net_units(target)).reshape(2).numpy().astype(np.float64)
    dist2 = ((centres.numpy().astype(np.float64) - ab) ** 2).sum(1)
    nearest = np.argsort(dist2)[:5]
    expected = np.zeros(len(centres))
    expected[nearest] = np.exp(-dist2[nearest] / (2 * 5.0**2))
    expected /= expected.sum()
    assert np.count_nonzero(encoded) == 5
    np.testing.assert_allclose(encoded, expected, atol=1e-6)


def test_faint_chroma_is_encoded_mostly_as_grey():
    """A dark sky's ab of (1, 1.5) belongs to the grey bin: the property the recipe relies on."""
    centres = bin_centres()
    encoded = soft_encode(_net_units([1.0, 1.5]), centres)[0, :, 0, 0]
    assert centres[encoded.argmax()].tolist() == [0.0, 0.0] and encoded.max() > 0.3


def test_annealed_mean_restates_the_paper():
    torch.manual_seed(0)
    centres = bin_centres()
    logits = torch.randn(2, len(centres), 3, 4) * 3
    z = torch.softmax(logits.double(), 1).numpy()
    for temperature in (ANNEALED_T, 1.0):
        f_t = np.exp(np.log(z) / temperature)
        f_t /= f_t.sum(1, keepdims=True)
        expected = np.einsum("nqhw,qc->nchw", f_t, centres.double().numpy())
        ours = to_ab(annealed_mean(logits, centres, temperature)).numpy()
        np.testing.assert_allclose(ours, expected, atol=1e-3)
    # T -> 0 is the mode: the most likely bin's centre.
    mode = centres[logits.argmax(1)].permute(0, 3, 1, 2)
    torch.testing.assert_close(to_ab(annealed_mean(logits, centres, 1e-3)), mode, atol=1e-2, rtol=0)


def test_classification_loss_is_the_cross_entropy_against_the_soft_encoding():
    torch.manual_seed(1)
    centres = bin_centres()
    logits = torch.randn(1, len(centres), 1, 2)
    target = torch.cat([_net_units([23.0, -41.0]), _net_units([-5.0, 60.0])], dim=3)
    z = soft_encode(target, centres)
    log_p = logits - torch.logsumexp(logits, 1, keepdim=True)
    by_hand = -sum((z[0, :, 0, i] * log_p[0, :, 0, i]).sum() for i in range(2)) / 2
    assert classification_loss(logits, target, centres).item() == pytest.approx(by_hand.item(), rel=1e-5)
    # A target twice the logits' size is compared by its 2x2 area means.
    doubled = target.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert classification_loss(logits, doubled, centres).item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_classification_loss_on_sampled_pixels_estimates_the_full_mean(photo):
    torch.manual_seed(2)
    centres = bin_centres()
    target = image_to_tensor(lab_split(photo("chelsea", 64))[1])[None]
    logits = torch.randn(1, len(centres), 64, 64)
    full = classification_loss(logits, target, centres, pixels=None).item()
    sampled = [classification_loss(logits, target, centres, pixels=256).item() for _ in range(40)]
    assert len(set(sampled)) > 1  # really drawn anew
    assert np.mean(sampled) == pytest.approx(full, rel=0.02)


def test_ab_classes_unet_returns_the_annealed_mean_of_its_bin_logits():
    torch.manual_seed(0)
    net = UnetGenerator(UnetSpec(in_channels=1, out_channels=2, base_channels=4, num_downs=3, ab_classes=True))
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    ab, logits = net(x, with_logits=True)
    assert ab.shape == (2, 2, 16, 16) and logits.shape == (2, len(bin_centres()), 8, 8)  # half size
    def upsampled(mean):
        return torch.nn.functional.interpolate(mean, size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(net(x), upsampled(annealed_mean(logits, bin_centres())))
    assert "centres" not in net.state_dict()  # fixed by the gamut, not a weight
    with pytest.raises(ConfigError, match="ab_classes: maps L to ab"):
        UnetSpec(in_channels=3, out_channels=3, ab_classes=True)
    with pytest.raises(ConfigError, match="ab_temperature: must be > 0"):
        UnetSpec(in_channels=1, out_channels=2, ab_classes=True, ab_temperature=0.0)
    mean_net = UnetGenerator(dataclasses.replace(net.spec, ab_temperature=1.0))
    mean_net.load_state_dict(net.state_dict())
    torch.testing.assert_close(mean_net(x), upsampled(annealed_mean(logits, bin_centres(), 1.0)))


def test_pix2pix_trains_ab_classes_nets_on_the_classification_loss(photo):
    config = resolve_config("pix2pix", task="colorize", assignments=[
        "generator.base_channels=4", "discriminator.base_channels=4", "generator.num_downs=5",
        "generator.ab_classes=true", "pix2pix.lambda_ce=2"])
    method = Pix2Pix(config)
    image = photo("coffee", 64)
    lightness, ab = lab_split(image)
    batch = {"a": image_to_tensor(lightness)[None], "b": image_to_tensor(ab)[None]}
    out = method(batch)
    torch.manual_seed(3)  # the same sampled pixels for both
    losses = method.generator_losses(out)
    torch.manual_seed(3)
    expected = 2 * classification_loss(out["ab_logits"], out["real_b"], bin_centres())
    assert "G_L1" not in losses  # cross-entropy replaces L1
    assert losses["G_CE"].item() == pytest.approx(expected.item(), rel=1e-5)
    losses["G_CE"].backward()
    assert method.nets[method.g_name].model.model[0].weight.grad.abs().sum() > 0


def test_ab_classes_colorizer_exports_to_onnx_with_parity(tmp_path):
    pytest.importorskip("onnxruntime")
    from test_export import load, write_checkpoint

    from translate.export.write import PARITY_TOLERANCE, export_model

    spec = UnetSpec(in_channels=1, out_channels=2, base_channels=8, num_downs=5, ab_classes=True)
    checkpoint = write_checkpoint(tmp_path / "colorize.pt", spec,
                                  config={"method": "pix2pix", "task": "colorize", "direction": "a_to_b"})
    report = export_model(load(checkpoint), tmp_path / "colorize.onnx")  # checks parity on real photos
    assert report.max_abs_diff is not None and report.max_abs_diff <= PARITY_TOLERANCE


def test_rebalancing_weights_restate_the_paper():
    prior = torch.tensor([0.7, 0.2, 0.1, 0.0])
    weights = rebalancing_weights(prior, 0.5)
    expected = 1 / (0.5 * prior + 0.5 / 4)
    expected = expected / (prior * expected).sum()
    torch.testing.assert_close(weights, expected)
    assert (prior * weights).sum().item() == pytest.approx(1.0)  # E_p[w] = 1
    assert weights[3] > weights[2] > weights[1] > weights[0]  # rarer bins weigh more
    torch.testing.assert_close(rebalancing_weights(prior, 1.0), torch.ones(4))  # lambda 1: uniform


def test_bin_prior_counts_nearest_bins_and_smooths_them_with_sigma_5():
    centres = bin_centres()
    grey, red = _net_units([0.0, 0.0]), _net_units([60.0, 40.0])
    maps = [grey[0].expand(2, 3, 4).clone(), red[0].expand(2, 1, 4).clone()]  # 12 grey pixels, 4 red
    prior = bin_prior(maps, centres)
    assert prior.sum().item() == pytest.approx(1.0)
    counts = torch.zeros(len(centres), dtype=torch.float64)
    counts[(centres == 0).all(1)] = 12
    counts[(centres == torch.tensor([60.0, 40.0])).all(1)] = 4
    kernel = torch.exp(-torch.cdist(centres, centres).double() ** 2 / 50)
    expected = kernel @ (counts / 16)
    torch.testing.assert_close(prior, (expected / expected.sum()).float())


def test_rebalanced_loss_weights_each_pixel_by_its_target_bin():
    torch.manual_seed(4)
    centres = bin_centres()
    logits = torch.randn(1, len(centres), 1, 2)
    target = torch.cat([_net_units([0.0, 0.0]), _net_units([60.0, 40.0])], dim=3)
    weights = torch.rand(len(centres)) + 0.5
    z = soft_encode(target, centres)
    per_pixel = -(z * torch.log_softmax(logits, 1)).sum(1)[0, 0]
    by_hand = (per_pixel * weights[z.argmax(1)[0, 0]]).mean()
    assert classification_loss(logits, target, centres, weights=weights).item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_pix2pix_rebalances_with_the_training_photos_prior(write_photos):
    root = write_photos(4, size=64)
    config = resolve_config("pix2pix", task="colorize", assignments=[
        f"data.root={root}", "generator.base_channels=4", "discriminator.base_channels=4",
        "generator.num_downs=5", "generator.ab_classes=true", "pix2pix.ce_rebalance=0.5"])
    method = Pix2Pix(config)
    train, _ = method.datasets()
    prior = bin_prior([train[i]["b"] for i in range(len(train))], bin_centres())
    torch.testing.assert_close(method.terms[0].class_weights, rebalancing_weights(prior, 0.5))
    off = Pix2Pix(resolve_config("pix2pix", task="colorize", assignments=[
        f"data.root={root}", "generator.ab_classes=true", "generator.base_channels=4"]))
    off.datasets()
    assert off.terms[0].class_weights is None


def test_rebalancing_without_classes_is_a_config_error():
    from translate.config import ConfigError

    with pytest.raises(ConfigError, match="^pix2pix.ce_rebalance: rebalances the classes of ab_classes generators"):
        resolve_config("pix2pix", task="colorize", assignments=["pix2pix.ce_rebalance=0.5"])
