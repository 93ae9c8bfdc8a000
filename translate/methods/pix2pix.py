"""pix2pix (Isola et al. 2017): conditional GAN + L1 on aligned pairs; with settings, the paired
super-resolution GANs too: SRGAN / ESRGAN / Real-ESRGAN (unconditional D, VGG19 perceptual loss,
relativistic GAN)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from translate.config import ConfigError, Settings, TrainConfig
from translate.config.plugins import WEIGHT, Range, count
from translate.errors import WeightsError
from translate.losses import hole_weighted_l1, l1_loss, masked_gan_loss, mse_loss, relativistic_gan_loss
from translate.methods.base import GanMethod, first_images
from translate.methods.entry import Flag, MethodEntry
from translate.nets.chroma import bin_prior, classification_loss, rebalancing_weights
from translate.losses.schedules import ramp_in


@dataclass
class Pix2PixConfig(Settings):
    """pix2pix's loss weights (YAML `pix2pix:`); with settings, the paired SR GANs' too."""

    SECTION: ClassVar[str] = "pix2pix"
    RANGES: ClassVar[dict[str, Range]] = {
        "lambda_l1": WEIGHT, "lambda_gan": WEIGHT, "lambda_mse": WEIGHT, "lambda_ce": WEIGHT,
        "ce_rebalance": (lambda v: 0 <= v <= 1, "in [0, 1] (0 = off)"),
        "gan_ramp_steps": count(0, "0 or more (0 = no ramp)"), "lambda_perceptual": WEIGHT,
    }
    lambda_l1: float = 100.0
    # Weight of the adversarial term. 0 trains the generator on L1 alone, with no discriminator:
    # the fidelity-first (PSNR) baseline, and the usual pre-training for super-resolution GANs.
    lambda_gan: float = 1.0
    # Weight of the VGG19 perceptual loss (settings in `perceptual`); 0 = off, VGG19 is not loaded.
    lambda_perceptual: float = 0.0
    # Weight of a pixel MSE term (on [-1, 1] images; 0 = off): PSNR's own loss, which trains a
    # fidelity model far faster than L1 on textured photos (the superres recipe uses it alone).
    lambda_mse: float = 0.0
    # Generators with ab_classes (colorize) train on cross-entropy over quantised ab instead of L1.
    lambda_ce: float = 1.0
    # Their class rebalancing (Zhang et al.'s lambda; the paper uses 0.5): pixels of colours rare in
    # the training photos count more. 0 = off, every pixel alike.
    ce_rebalance: float = 0.0
    # pix2pix's D judges (input, output) pairs; SRGAN / ESRGAN / Real-ESRGAN's judges the output alone.
    conditional: bool = True
    # Steps over which the adversarial weight rises linearly from 0 to lambda_gan (0 = full weight
    # from the start): the pixel loss first settles the content (for colorization: grey where the
    # net is unsure), then the GAN term adds colour and texture to a generator worth judging.
    gan_ramp_steps: int = 0

    def check(self, config: TrainConfig) -> None:
        if self.ce_rebalance > 0 and not config.generator.classifies_ab:
            raise ConfigError("pix2pix.ce_rebalance: rebalances the classes of ab_classes generators; "
                              "add --set generator.ab_classes=true (a U-Net colorizer) or leave it at 0")
        if self.lambda_perceptual > 0 and not any(w > 0 for w in config.perceptual.layers.values()):
            raise ConfigError("perceptual.layers: pix2pix.lambda_perceptual is on but no layer has a weight; "
                              "set e.g. --set perceptual.layers.conv5_4=1")


class Pix2Pix(GanMethod):
    """One generator (g_ab, or g_ba when trained b_to_a) and a discriminator `d`. Conditional (the
    paper): D judges (input, output) pairs concatenated on channels, so in_channels = input + output;
    unconditional (pix2pix.conditional false, the SR GANs): D judges the output alone."""

    def __init__(self, config: TrainConfig) -> None:
        from translate.tasks import get_task

        g, p = config.generator, config.method_settings
        self.task = get_task(config.task)
        self.g_name = "g_ab" if config.direction == "a_to_b" else "g_ba"
        judged = g.in_channels + g.out_channels if p.conditional else g.out_channels
        d = dataclasses.replace(config.discriminator, in_channels=judged)
        adversarial = p.lambda_gan > 0
        super().__init__(config, {self.g_name: g, "d": d} if adversarial else {self.g_name: g})
        self.generator_names = (self.g_name,)
        self.discriminator_names = ("d",) if adversarial else ()
        self.classifies_ab = g.classifies_ab  # colorization as classification
        self.ab_weights: Tensor | None = None  # its class rebalancing (set by datasets())
        self.perceptual = None
        if p.lambda_perceptual > 0:
            from translate.losses.perceptual import perceptual_loss

            self.perceptual = perceptual_loss(config.perceptual)

    @staticmethod
    def data_channels(config: TrainConfig) -> tuple[int, int]:
        """Channels to read for the A and B images."""
        g = config.generator
        if config.direction == "a_to_b":
            return g.in_channels, g.out_channels
        return g.out_channels, g.in_channels

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        """Pairs from the data root; with a task recipe, each input is synthesised from its target
        photo with fresh randomness every epoch (a prepared A/B folder's B photos serve then);
        validation pairs skip the training-only augmentation (Settings.without_augmentation)."""
        from translate.data import datasets, layouts
        from translate.tasks import get_task

        d, seed, root = self.config.data, self.config.runtime.seed, Path(self.config.data.root)
        task, settings = get_task(self.config.task), self.config.task_settings
        make_pair = task.pair_maker(settings)
        make_val_pair = task.pair_maker(settings.without_augmentation() if settings is not None else None)
        channels_a, channels_b = self.data_channels(self.config)
        train_tf, val_tf = self.transforms()

        def find(split: str) -> list[layouts.Sample]:
            if make_pair is not None:
                targets = layouts.find_targets(root, split, val_fraction=d.val_fraction, seed=seed)
                return [layouts.Sample(p) for p in targets]
            return layouts.find_paired(root, split, val_fraction=d.val_fraction, seed=seed)

        def make(samples: list[layouts.Sample], tf: object, pairs: datasets.MakePair | None) -> Dataset:
            return datasets.PairedDataset(samples, in_channels=channels_a, out_channels=channels_b, transform=tf,
                                          make_pair=pairs, seed=seed)

        val = find("val")[: d.max_val_images] if layouts.has_split(root, "val", val_fraction=d.val_fraction) else []
        train = make(find("train"), train_tf, make_pair)
        if self.classifies_ab and self.config.method_settings.ce_rebalance > 0:
            # The bins' distribution over one draw of every training photo, before any epoch is set,
            # so a resumed run computes the same weights.
            prior = bin_prior((train[i]["b"] for i in range(len(train))), self.nets[self.g_name].centres)
            self.ab_weights = rebalancing_weights(prior, self.config.method_settings.ce_rebalance)
        return train, (make(val, val_tf, make_val_pair) if val else None)

    def data_files(self, dataset: Dataset) -> list[Path]:
        return list(dict.fromkeys(p for s in dataset.samples for p in (s.a, s.b) if p is not None))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        # Below, `a` is the input side: for b_to_a the batch's A and B are swapped here.
        real_a, real_b = batch["a"], batch["b"]
        if self.config.direction == "b_to_a":
            real_a, real_b = real_b, real_a
        out = {"real_a": real_a, "real_b": real_b}
        if self.classifies_ab:  # the loss needs the bin logits
            out["fake_b"], out["ab_logits"] = self.generate(self.g_name, real_a, with_logits=True)
        else:
            out["fake_b"] = self.generate(self.g_name, real_a)
        fake_b = out["fake_b"]
        known = self.task.known_pixels(real_a) if self.config.direction == "a_to_b" else None
        if known is not None:
            # What conversion returns: the input's own pixels, the net's output in the holes only.
            out["known"] = known
            out["filled_b"] = known * real_b + (1 - known) * fake_b
        if self.config.method_settings.conditional:
            # D judges (condition, output) pairs; a super-resolution input is smaller than the
            # output, so D sees it bicubically upsampled to the output size.
            cond = real_a
            if cond.shape[-2:] != fake_b.shape[-2:]:
                cond = F.interpolate(real_a, size=fake_b.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1)
            out["cond"] = cond
        return out

    def _judged(self, out: dict[str, Tensor], image: str) -> Tensor:
        """What D sees of `image` (real_b or fake_b, which is the filled image when the task copies
        known pixels): with its condition (for inpainting, the holes and the mask), or alone."""
        if image == "fake_b" and "filled_b" in out:
            image = "filled_b"
        return torch.cat([out["cond"], out[image]], 1) if "cond" in out else out[image]

    def _masks_gan(self, out: dict[str, Tensor]) -> bool:
        return "known" in out and self.config.task_settings.mask_discriminator

    def generator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        p, holes = self.config.method_settings, self.config.task_settings
        if "ab_logits" in out:  # colorization as classification: cross-entropy in place of L1
            centres, weights = self.nets[self.g_name].centres, self.ab_weights
            weights = None if weights is None else weights.to(centres.device)
            losses = {"G_CE": p.lambda_ce * classification_loss(out["ab_logits"], out["real_b"], centres,
                                                                weights=weights)}
        elif "known" in out:
            losses = {"G_L1": p.lambda_l1 * hole_weighted_l1(out["fake_b"], out["real_b"], 1 - out["known"],
                                                             hole_weight=holes.hole_l1_weight,
                                                             known_weight=holes.known_l1_weight)}
        else:
            losses = {"G_L1": l1_loss(out["fake_b"], out["real_b"], weight=p.lambda_l1)}
        if p.lambda_mse > 0:
            losses["G_MSE"] = mse_loss(out["fake_b"], out["real_b"], weight=p.lambda_mse)
        if self.perceptual is not None:
            # On the filled image: the known pixels match the target, so only the holes' features differ.
            fake = out.get("filled_b", out["fake_b"])
            losses["G_perceptual"] = p.lambda_perceptual * self.perceptual(fake, out["real_b"])
        if self.discriminator_names:
            # The bare D (not its replica): D is frozen in this step, so it has nothing to synchronise.
            d = self.nets["d"]
            pred_fake = d(self.discriminator_input(self._judged(out, "fake_b")))
            if self._masks_gan(out):
                gan = masked_gan_loss(pred_fake, 1 - out["known"], mode=self.config.gan.loss, for_discriminator=False)
            elif self.config.gan.loss == "ragan":
                with torch.no_grad():  # the reference detaches D(real) in the generator step
                    pred_real = d(self.discriminator_input(self._judged(out, "real_b")))
                gan = relativistic_gan_loss(pred_real, pred_fake, for_discriminator=False)
            else:
                gan = self._gan(pred_fake, is_real=True, for_discriminator=False)
            losses["G_gan"] = p.lambda_gan * ramp_in(self.step, p.gan_ramp_steps) * gan
        return losses

    def discriminator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.discriminator_names:
            return {}
        if self._masks_gan(out):
            # Real images are real everywhere; a filled image is fake in its holes and real elsewhere.
            d = self.replica("d")
            pred_real = d(self.discriminator_input(self._judged(out, "real_b")))
            pred_fake = d(self.discriminator_input(self._judged(out, "fake_b").detach()))
            mode = self.config.gan.loss
            return {"D": 0.5 * (self._gan(pred_real, is_real=True, for_discriminator=True)
                                + masked_gan_loss(pred_fake, 1 - out["known"], mode=mode, for_discriminator=True))}
        return self._discriminator_loss("d", self._judged(out, "real_b"), self._judged(out, "fake_b"), label="D")

    def extra_state(self) -> dict[str, Any]:
        """The sha256 of the VGG19 weights behind the perceptual loss, so a run records what it used."""
        return {"feature_weights": {"vgg19": self.perceptual.sha256}} if self.perceptual is not None else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        saved = state.get("feature_weights", {}).get("vgg19")
        if self.perceptual is not None and saved and saved != self.perceptual.sha256:
            raise WeightsError(f"perceptual.weights: the VGG19 file now has sha256 {self.perceptual.sha256[:12]}..., "
                               f"the run started with {saved[:12]}...; resume with the same VGG19 weights")

    def sample_rows(self, out: dict[str, Tensor]) -> list[list[np.ndarray]]:
        """One row: the task's display of input | output (as conversion returns it) | target."""
        real_a, fake_b, real_b = first_images(out["real_a"], out.get("filled_b", out["fake_b"]), out["real_b"])
        return [self.task.display(real_a, fake_b, real_b)]

    def validation_pairs(self, out: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Output (as conversion returns it: known pixels copied) vs target on the val split: l1, psnr, ssim."""
        return {"": (out.get("filled_b", out["fake_b"]), out["real_b"])}


PIX2PIX = MethodEntry(
    name="pix2pix", description="paired: conditional GAN + L1 (Isola et al. 2017); the SR GANs with settings",
    build=Pix2Pix, settings=Pix2PixConfig,
    flags={"lambda_l1": Flag(("pix2pix.lambda_l1",), float, "pix2pix L1 weight (100)")},
)
