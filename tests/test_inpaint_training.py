"""Inpainting's training path: the filled image (known pixels pasted back) and the mask reach the
discriminator, the losses count the holes, and the loop trains the gated-convolution net."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from translate.config import ConfigError
from translate.recipes import resolve_config
from translate.data.images import image_to_tensor
from translate.methods.pix2pix import Pix2Pix
from translate.tasks.inpaint import inpaint_pair


def _config(**sets):
    # The recipe trains L1 alone by default; its GAN stage is what these tests look at.
    assignments = ["generator.base_channels=4", "discriminator.base_channels=4", "generator.num_downs=5",
                   "data.crop_size=64", "data.load_size=64", "pix2pix.lambda_gan=1",
                   *[f"{k}={v}" for k, v in sets.items()]]
    return resolve_config("pix2pix", task="inpaint", assignments=assignments)


def _batch(photo) -> dict[str, torch.Tensor]:
    pairs = [inpaint_pair(photo(name, 64), np.random.default_rng(i)) for i, name in enumerate(("astronaut", "coffee"))]
    return {"a": torch.stack([image_to_tensor(a) for a, _ in pairs]),
            "b": torch.stack([image_to_tensor(b) for _, b in pairs])}


class SpyD(torch.nn.Module):
    """A discriminator that records what it is shown and answers a constant logit per 8x8 patch."""

    def __init__(self, logit: float) -> None:
        super().__init__()
        self.logit, self.seen = logit, []
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        self.seen.append(x)
        return [torch.full((x.shape[0], 1, x.shape[2] // 8, x.shape[3] // 8), self.logit) + self.weight
                + 0 * x.mean()]


def test_discriminator_sees_the_mask_and_the_filled_image_with_hole_labels(photo):
    torch.manual_seed(0)
    method = Pix2Pix(_config(**{"gan.loss": "lsgan"}))
    method.nets["d"] = SpyD(logit=0.25)
    batch = _batch(photo)
    out = method(batch)
    hole = (batch["a"][:, 3:4] < 0).float()
    assert torch.equal(out["known"], 1 - hole)
    loss = method.discriminator_losses(out)["D"]
    real_seen, fake_seen = method.nets["d"].seen
    # The condition (RGB with holes + the mask channel) comes first, then the image judged.
    assert torch.equal(real_seen[:, :4], batch["a"]) and torch.equal(fake_seen[:, :4], batch["a"])
    assert torch.equal(real_seen[:, 4:], batch["b"])
    filled = fake_seen[:, 4:]
    assert torch.equal(filled * (1 - hole), batch["b"] * (1 - hole))  # known pixels are the photo's
    assert torch.equal(filled * hole, out["fake_b"].detach() * hole)  # holes are the net's
    # lsgan with D = 0.25 everywhere: real (0.25 - 1)^2; fake (0.25 - (1 - h))^2 with h the hole share per patch.
    share = torch.nn.functional.avg_pool2d(hole, 8)
    expected = 0.5 * ((0.25 - 1) ** 2 + ((0.25 - (1 - share)) ** 2).mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_only_the_holes_of_the_output_get_gradients_from_the_gan(photo):
    torch.manual_seed(0)
    method = Pix2Pix(_config(**{"pix2pix.lambda_l1": 0.0}))
    batch = _batch(photo)
    out = method(batch)
    out["fake_b"].retain_grad()
    method.generator_losses(out)["G_gan"].backward()
    grad = out["fake_b"].grad.abs().sum(1, keepdim=True)
    known = out["known"].bool()
    assert grad[known].max() == 0 and grad[~known].max() > 0


def test_hole_weighted_l1_is_the_generators_pixel_loss(photo):
    torch.manual_seed(0)
    method = Pix2Pix(_config(**{"pix2pix.lambda_l1": 10.0, "inpaint.hole_l1_weight": 6.0}))
    out = method(_batch(photo))
    hole = 1 - out["known"]
    diff = (out["fake_b"] - out["real_b"]).abs()
    expected = 10.0 * (diff * (6 * hole + (1 - hole))).mean()
    assert method.generator_losses(out)["G_L1"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_masked_discriminator_refuses_objectives_without_per_patch_labels():
    with pytest.raises(ConfigError, match="gan.loss: hinge cannot label the holes"):
        _config(**{"gan.loss": "hinge"})
    assert _config(**{"gan.loss": "hinge", "inpaint.mask_discriminator": "false"}).gan.loss == "hinge"


def test_gated_generator_trains_on_inpainting_and_keeps_known_pixels(tmp_path, write_photos, photo):
    from translate.inference.translator import Translator
    from translate.tasks.inpaint import masked_input, random_mask
    from translate.training.loop import train

    root = write_photos(4, size=64)
    config = resolve_config("pix2pix", task="inpaint", overrides={"data.root": str(root), "generator": "deepfill_v2_coarse"},
                            assignments=["generator.base_channels=4", "discriminator.base_channels=4",
                                         "data.crop_size=64", "data.load_size=64", "data.samples_per_epoch=4",
                                         "optim.epochs=1", "optim.epochs_decay=0"])
    assert config.generator.kind == "gated" and config.generator.in_channels == 4
    result = train(config=config, run_dir=tmp_path / "run")
    assert result.step == 1
    image = photo("chelsea", 64)
    mask = random_mask(64, 64, np.random.default_rng(3))
    rgba = masked_input(image, mask)
    out = Translator.load(tmp_path / "run")(rgba)
    assert np.array_equal(out[mask == 0], image[mask == 0])
