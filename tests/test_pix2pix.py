"""pix2pix's objective: the named loss terms equal a hand computation from the nets' raw outputs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from translate.config import DataConfig, GanConfig, TrainConfig
from translate.data.images import image_to_tensor
from translate.methods.pix2pix import Pix2Pix, Pix2PixConfig
from translate.nets import preset

LAMBDA_L1, LAMBDA_GAN = 7.0, 0.5

# Per objective: (G's term for D's maps of fakes, D's term for real maps, D's term for fake maps),
# written from the papers' formulas rather than through translate.losses.
HAND = {
    "vanilla": (lambda f: F.softplus(-f).mean(), lambda r: F.softplus(-r).mean(), lambda f: F.softplus(f).mean()),
    "lsgan": (lambda f: ((f - 1) ** 2).mean(), lambda r: ((r - 1) ** 2).mean(), lambda f: (f**2).mean()),
    "wgangp": (lambda f: -f.mean(), lambda r: -r.mean(), lambda f: f.mean()),
    "hinge": (lambda f: -f.mean(), lambda r: F.relu(1 - r).mean(), lambda f: F.relu(1 + f).mean()),
}


def _maps(pred) -> list[torch.Tensor]:
    return [pred] if isinstance(pred, torch.Tensor) else list(pred)


@pytest.mark.parametrize("loss, discriminator", [("vanilla", "patchgan_70"), ("lsgan", "pixelgan"),
                                                 ("wgangp", "patchgan_34"), ("hinge", "multiscale_patchgan")])
def test_loss_terms_match_a_hand_computation(photo, loss, discriminator):
    torch.manual_seed(0)
    config = TrainConfig(
        generator=preset("unet_128", num_downs=5, base_channels=4),
        discriminator=preset(discriminator, base_channels=4, **({"norm": "none"} if loss == "wgangp" else {})),
        gan=GanConfig(loss=loss), method_settings=Pix2PixConfig(lambda_l1=LAMBDA_L1, lambda_gan=LAMBDA_GAN),
        data=DataConfig(load_size=96, crop_size=96),
    )
    method = Pix2Pix(config)
    batch = {"a": torch.stack([image_to_tensor(photo(name, 96)) for name in ("astronaut", "rocket")]),
             "b": torch.stack([image_to_tensor(photo(name, 96)) for name in ("coffee", "chelsea")])}
    out = method(batch)
    g_losses, d_losses = method.generator_losses(out), method.discriminator_losses(out)

    g_term, d_real_term, d_fake_term = HAND[loss]
    d = method.nets["d"]
    fake_maps = _maps(d(torch.cat([batch["a"], out["fake_b"]], 1)))
    real_maps = _maps(d(torch.cat([batch["a"], batch["b"]], 1)))
    hand_l1 = LAMBDA_L1 * (out["fake_b"] - batch["b"]).abs().mean()
    hand_g = LAMBDA_GAN * torch.stack([g_term(f) for f in fake_maps]).mean()
    # D's loss is halved (pix2pix section 3.3) and averaged over a multiscale D's scales.
    hand_d = 0.5 * (torch.stack([d_real_term(r) for r in real_maps]).mean()
                    + torch.stack([d_fake_term(f) for f in fake_maps]).mean())

    assert set(g_losses) == {"G_L1", "G_gan"}
    assert set(d_losses) == ({"D", "D_gp"} if loss == "wgangp" else {"D"})
    torch.testing.assert_close(g_losses["G_L1"], hand_l1)
    torch.testing.assert_close(g_losses["G_gan"], hand_g)
    torch.testing.assert_close(d_losses["D"], hand_d)


def test_mse_term_is_the_mean_squared_error_and_fidelity_runs_build_no_discriminator(photo):
    torch.manual_seed(0)
    config = TrainConfig(generator=preset("unet_128", num_downs=5, base_channels=4),
                         method_settings=Pix2PixConfig(lambda_l1=0.0, lambda_mse=3.0, lambda_gan=0.0),
                         data=DataConfig(load_size=96, crop_size=96))
    method = Pix2Pix(config)
    assert set(method.nets) == {"g_ab"}
    batch = {"a": image_to_tensor(photo("astronaut", 96))[None], "b": image_to_tensor(photo("coffee", 96))[None]}
    out = method(batch)
    losses = method.generator_losses(out)
    assert set(losses) == {"G_L1", "G_MSE"} and losses["G_L1"] == 0
    torch.testing.assert_close(losses["G_MSE"], 3.0 * ((out["fake_b"] - batch["b"]) ** 2).mean())


def test_gan_weight_ramps_in_over_the_configured_steps(photo):
    from translate.recipes import resolve_config
    from translate.losses.schedules import anneal, ramp_in

    assert [ramp_in(s, 4) for s in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0] and ramp_in(0, 0) == 1.0
    assert [anneal(s, 4) for s in (0, 1, 4, 9)] == [1.0, 0.75, 0.0, 0.0] and anneal(0, 0) == 0.0
    torch.manual_seed(0)
    config = resolve_config("pix2pix", task="colorize", assignments=[
        "generator.base_channels=4", "discriminator.base_channels=4", "generator.num_downs=5",
        "pix2pix.gan_ramp_steps=8"])
    method = Pix2Pix(config)
    batch = {"a": torch.stack([image_to_tensor(photo("astronaut", 64)[:, :, :1])]),
             "b": torch.zeros(1, 2, 64, 64)}
    out = method(batch)
    gan = {}
    for step in (0, 2, 8, 20):
        method.step = step
        gan[step] = method.generator_losses(out)["G_gan"].item()
    assert gan[0] == 0.0 and gan[8] > 0
    assert gan[2] == pytest.approx(gan[8] / 4) and gan[20] == pytest.approx(gan[8])
