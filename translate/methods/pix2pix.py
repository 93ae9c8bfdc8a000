"""pix2pix (Isola et al. 2017): conditional GAN + L1 on aligned pairs; with settings, the paired
super-resolution GANs too: SRGAN / ESRGAN / Real-ESRGAN (unconditional D, VGG19 perceptual loss,
relativistic GAN)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from translate.config import ConfigError, Settings, TrainConfig
from translate.config.plugins import WEIGHT, Range, count
from translate.errors import WeightsError
from translate.losses.terms import (
    ChromaCE, LossTerm, gan_term, hole_l1_term, l1_term, mse_term, perceptual_term, total,
)
from translate.methods.base import GanMethod, first_images
from translate.methods.entry import Flag, MethodEntry
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
    # The pixel term (PIXEL_TERMS below): l1, hole_l1 (inpaint's hole-weighted L1), ab_ce (cross-entropy
    # over ab bins, for ab_classes generators). auto: ab_ce for an ab_classes generator, else the
    # task's own (hole_l1 for inpaint, l1 otherwise): what configs without this key trained with.
    pixel_loss: str = "auto"
    lambda_l1: float = 100.0  # weighs l1 and hole_l1
    # Weight of the adversarial term. 0 trains the generator on L1 alone, with no discriminator:
    # the fidelity-first (PSNR) baseline, and the usual pre-training for super-resolution GANs.
    lambda_gan: float = 1.0
    # Weight of the VGG19 perceptual loss (settings in `perceptual`); 0 = off, VGG19 is not loaded.
    lambda_perceptual: float = 0.0
    # Weight of a pixel MSE term (on [-1, 1] images; 0 = off): PSNR's own loss, which trains a
    # fidelity model far faster than L1 on textured photos (the superres recipe uses it alone).
    lambda_mse: float = 0.0
    lambda_ce: float = 1.0  # weighs ab_ce
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
        name = pixel_loss_name(config)
        if self.ce_rebalance > 0 and name != "ab_ce":
            raise ConfigError("pix2pix.ce_rebalance: rebalances the classes of ab_classes generators (pixel_loss "
                              "ab_ce); add --set generator.ab_classes=true (a U-Net colorizer) or leave it at 0")
        missing = PIXEL_TERMS[name].needs - model_outputs(config)
        if missing:
            raise ConfigError(f"pix2pix.pixel_loss: {name} needs {PIXEL_TERMS[name].requires}; choose another "
                              f"({', '.join(PIXEL_TERMS)}) or auto")
        if self.lambda_perceptual > 0 and not any(w > 0 for w in config.perceptual.layers.values()):
            raise ConfigError("perceptual.layers: pix2pix.lambda_perceptual is on but no layer has a weight; "
                              "set e.g. --set perceptual.layers.conv5_4=1")


@dataclass(frozen=True)
class PixelTerm:
    """A pixel loss pix2pix.pixel_loss can name: how to build it from the config and the generator,
    the forward outputs it reads beyond fake_b / real_b, and what the model must be to give them."""

    build: Callable[[TrainConfig, nn.Module], LossTerm]
    needs: frozenset[str] = frozenset()
    requires: str = ""


# Registered by name; a plug-in adds its own entry (PIXEL_TERMS["name"] = PixelTerm(...)).
PIXEL_TERMS: dict[str, PixelTerm] = {
    "l1": PixelTerm(lambda c, g: l1_term(c.method_settings.lambda_l1)),
    "hole_l1": PixelTerm(lambda c, g: hole_l1_term(c.method_settings.lambda_l1, _task(c).losses(c.task_settings)),
                         frozenset({"known"}), "a task with known pixels (inpaint) trained a_to_b"),
    "ab_ce": PixelTerm(lambda c, g: ChromaCE(c.method_settings.lambda_ce, lambda: g.centres, c.method_settings.ce_rebalance),
                       frozenset({"ab_logits"}), "an ab_classes generator (--set generator.ab_classes=true)"),
}


def _task(config: TrainConfig) -> Any:
    from translate.tasks import get_task

    return get_task(config.task)


def model_outputs(config: TrainConfig) -> set[str]:
    """The forward outputs Pix2Pix gives for `config` beyond real_a, real_b, fake_b."""
    outputs = {"ab_logits"} if config.generator.classifies_ab else set()
    if _task(config).takes_mask and config.direction == "a_to_b":
        outputs |= {"known", "filled_b"}
    return outputs


def pixel_loss_name(config: TrainConfig) -> str:
    """pix2pix.pixel_loss, with auto resolved; ConfigError naming the choices for an unknown name."""
    name = config.method_settings.pixel_loss
    if name == "auto":  # the task's own term where the model gives what it reads
        name = "ab_ce" if config.generator.classifies_ab else _task(config).losses(config.task_settings).pixel
        return name if PIXEL_TERMS[name].needs <= model_outputs(config) else "l1"
    if name not in PIXEL_TERMS:
        raise ConfigError(f"pix2pix.pixel_loss: unknown {name!r}; choose one of auto, {', '.join(PIXEL_TERMS)}")
    return name


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
        self.terms = self._pixel_terms(config)
        self.needs = frozenset().union(*(term.needs for term in self.terms))
        if "known" in model_outputs(config):  # the task's GAN variant (e.g. hole_masked) judges its filled images
            variant = self.task.losses(config.task_settings).gan
            self.gan_term = gan_term(config.gan.loss, config.gan.label_smoothing, variant)

    def _pixel_terms(self, config: TrainConfig) -> list[LossTerm]:
        """The named pixel term, then MSE and the VGG19 perceptual loss where their weights are on."""
        p = config.method_settings
        terms = [PIXEL_TERMS[pixel_loss_name(config)].build(config, self.nets[self.g_name])]
        if p.lambda_mse > 0:
            terms.append(mse_term(p.lambda_mse))
        self.perceptual = None
        if p.lambda_perceptual > 0:
            from translate.losses.perceptual import perceptual_loss

            self.perceptual = perceptual_loss(config.perceptual)
            terms.append(perceptual_term(p.lambda_perceptual, self.perceptual))
        return terms

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
        validation pairs skip the training-only augmentation (Settings.without_augmentation) and
        hold data.val_draws fixed draws of each photo (datasets.validation_draws)."""
        from translate.data import datasets, layouts
        from translate.tasks import get_task

        d, seed, root = self.config.data, self.config.runtime.seed, Path(self.config.data.root)
        task, settings = get_task(self.config.task), self.config.task_settings
        make_pair = task.pair_maker(settings)
        val_settings = settings.without_augmentation() if settings is not None else None
        make_val_pair, val_strata = task.pair_maker(val_settings), task.validation_pair_makers(val_settings)
        channels_a, channels_b = self.data_channels(self.config)

        def find(split: str) -> list[layouts.Sample]:
            if make_pair is not None:
                targets = layouts.find_targets(root, split, val_fraction=d.val_fraction, seed=seed)
                return [layouts.Sample(p) for p in targets]
            return layouts.find_paired(root, split, val_fraction=d.val_fraction, seed=seed)

        def make(samples: list[layouts.Sample], tf: object, pairs: datasets.MakePair | None, draws: int = 0,
                 strata: Sequence[datasets.MakePair] = ()) -> Dataset:
            return datasets.PairedDataset(samples, in_channels=channels_a, out_channels=channels_b, transform=tf,
                                          make_pair=pairs, seed=seed, draws=draws, draw_pairs=strata)

        val = find("val")[: d.max_val_images] if layouts.has_split(root, "val", val_fraction=d.val_fraction) else []
        draws = datasets.validation_draws(d.val_draws, random=make_val_pair is not None or d.preprocess != "none",
                                          n_files=len(val), max_items=d.max_val_images)
        train_tf, val_tf = self.transforms(val_draws=draws)
        train = make(find("train"), train_tf, make_pair)
        for term in self.terms:  # before any epoch is set, so a resumed run fits the same
            term.fit(lambda: (train[i]["b"] for i in range(len(train))))
        return train, (make(val, val_tf, make_val_pair, draws, val_strata) if val else None)

    def data_files(self, dataset: Dataset) -> list[Path]:
        return list(dict.fromkeys(p for s in dataset.samples for p in (s.a, s.b) if p is not None))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        # Below, `a` is the input side: for b_to_a the batch's A and B are swapped here.
        real_a, real_b = batch["a"], batch["b"]
        if self.config.direction == "b_to_a":
            real_a, real_b = real_b, real_a
        out = {"real_a": real_a, "real_b": real_b}
        if "ab_logits" in self.needs:
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

    def generator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        """The pixel terms by their log names, plus G_gan (the GAN term, ramped in) when D is on."""
        p, losses = self.config.method_settings, total(self.terms, out)
        if self.discriminator_names:
            # The bare D (not its replica): D is frozen in this step, so it has nothing to synchronise.
            d = self.nets["d"]
            gan = self.gan_term.generator(lambda image: d(self.discriminator_input(self._judged(out, image))), out)
            losses["G_gan"] = p.lambda_gan * ramp_in(self.step, p.gan_ramp_steps) * gan
        return losses

    def discriminator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.discriminator_names:
            return {}
        return self._discriminator_loss("d", self._judged(out, "real_b"), self._judged(out, "fake_b"), label="D",
                                        out=out)

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
