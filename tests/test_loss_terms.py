"""Losses as named terms: pix2pix's total is the sum of the terms its config names (re-stated here from
the papers' equations), a plug-in pixel term trains with no other file changed, and a term that does not
fit the model is refused by name."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from translate.cli import main
from translate.config import ConfigError
from translate.data.images import image_to_tensor
from translate.losses.terms import LossTerm
from translate.methods.pix2pix import PIXEL_TERMS, Pix2Pix, PixelTerm
from translate.recipes import resolve_config
from translate.tasks.inpaint import inpaint_pair

HOLE_W, KNOWN_W, L1, PERCEPTUAL, GAN = 4.0, 0.5, 3.0, 2.0, 0.25


def _inpaint_batch(photo) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    pairs = [inpaint_pair(photo(name, 64), rng) for name in ("astronaut", "coffee")]
    return {"a": torch.stack([image_to_tensor(a) for a, _ in pairs]),
            "b": torch.stack([image_to_tensor(b) for _, b in pairs])}


def _maps(pred) -> list[torch.Tensor]:
    return [pred] if isinstance(pred, torch.Tensor) else list(pred)


def test_hole_l1_perceptual_and_relativistic_terms_sum_as_the_papers_say(photo, vgg19_weights):
    torch.manual_seed(0)
    config = resolve_config("pix2pix", task="inpaint", assignments=[
        "generator.num_downs=5", "generator.base_channels=4", "discriminator.base_channels=4",
        "data.crop_size=64", "data.load_size=64", "gan.loss=ragan", "inpaint.mask_discriminator=false",
        f"inpaint.hole_l1_weight={HOLE_W}", f"inpaint.known_l1_weight={KNOWN_W}", f"pix2pix.lambda_l1={L1}",
        f"pix2pix.lambda_perceptual={PERCEPTUAL}", f"pix2pix.lambda_gan={GAN}", "perceptual.layers.conv2_2=1",
        f"perceptual.weights={vgg19_weights}"])
    method = Pix2Pix(config)
    batch = _inpaint_batch(photo)
    out = method(batch)
    losses = method.generator_losses(out)

    real, fake = batch["b"], out["fake_b"]
    hole = (batch["a"][:, 3:4] <= 0).float()  # alpha -1 (0 of 255) marks the holes
    filled = hole * fake + (1 - hole) * real
    # Liu et al. 2018 eq. 1-2: per-pixel weights, mean over every pixel and channel.
    hand_l1 = L1 * ((hole * HOLE_W + (1 - hole) * KNOWN_W) * (fake - real).abs()).mean()
    hand_perceptual = PERCEPTUAL * method.perceptual(filled, real)
    d, cond = method.nets["d"], batch["a"]
    fakes, reals = _maps(d(torch.cat([cond, filled], 1))), _maps(d(torch.cat([cond, real], 1)))
    # ESRGAN eq. 1-2 for G: -E[log(1 - D_Ra(x_r, x_f))] - E[log D_Ra(x_f, x_r)], halved; mean over D's scales.
    hand_gan = GAN * torch.stack([0.5 * (F.softplus(r - f.mean()).mean() + F.softplus(-(f - r.mean())).mean())
                                  for f, r in zip(fakes, reals)]).mean()

    assert list(losses) == ["G_L1", "G_perceptual", "G_gan"]
    torch.testing.assert_close(losses["G_L1"], hand_l1)
    torch.testing.assert_close(losses["G_perceptual"], hand_perceptual)
    torch.testing.assert_close(losses["G_gan"], hand_gan)
    torch.testing.assert_close(sum(losses.values()), hand_l1 + hand_perceptual + hand_gan)


def test_pixel_loss_auto_is_the_choice_configs_without_the_key_trained_with():
    tiny = ["generator.num_downs=5", "generator.base_channels=4", "data.crop_size=64", "data.load_size=64"]
    assert Pix2Pix(resolve_config("pix2pix", task="inpaint", assignments=tiny)).terms[0].needs == {"known"}
    colorize = Pix2Pix(resolve_config("pix2pix", task="colorize", assignments=tiny + ["generator.ab_classes=true"]))
    assert [t.name for t in colorize.terms] == ["G_CE"]
    plain = Pix2Pix(resolve_config("pix2pix", task="sketch", assignments=tiny + ["pix2pix.pixel_loss=auto"]))
    assert [(t.name, t.needs) for t in plain.terms] == [("G_L1", frozenset())]


@pytest.mark.parametrize("setting, message", [
    ("pix2pix.pixel_loss=l2", "^pix2pix.pixel_loss: unknown 'l2'; choose one of auto, l1, hole_l1, ab_ce"),
    ("pix2pix.pixel_loss=ab_ce", "^pix2pix.pixel_loss: ab_ce needs an ab_classes generator"),
    ("pix2pix.pixel_loss=hole_l1", "^pix2pix.pixel_loss: hole_l1 needs a task with known pixels"),
])
def test_a_bad_or_unfitting_pixel_term_is_refused_by_name(setting, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("pix2pix", task="sketch", assignments=[setting])


def test_a_plugin_pixel_term_defined_here_trains(monkeypatch, write_photos, tmp_path):
    seen = []

    def charbonnier(out):  # sqrt((x - y)^2 + eps^2), a smooth L1
        seen.append(out["fake_b"].shape)
        return torch.sqrt((out["fake_b"] - out["real_b"]) ** 2 + 1e-6).mean()

    monkeypatch.setitem(PIXEL_TERMS, "charbonnier", PixelTerm(lambda c, g: LossTerm("G_charbonnier", 2.0, charbonnier)))
    run = tmp_path / "run"
    code = main(["train", "pix2pix", "--task", "sketch", "--data", str(write_photos(4, size=48)), "--out", str(run),
                 "--max-steps", "2", "--crop-size", "32", "--load-size", "36", "--device", "cpu",
                 "--set", "generator.num_downs=5", "--set", "generator.base_channels=4",
                 "--set", "discriminator.base_channels=4", "--set", "pix2pix.pixel_loss=charbonnier"])
    assert code == 0
    assert len(seen) == 2
    assert "G_charbonnier" in (run / "log.csv").read_text().splitlines()[0]
