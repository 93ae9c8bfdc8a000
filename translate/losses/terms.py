"""Named loss terms a method composes from its config, so it never asks which kind of output it got.

A pixel term (`LossTerm`) is a weighted loss on the method's forward-pass outputs (a dict of
(N, C, H, W) tensors in [-1, 1]: fake_b, real_b and, where the model gives them, ab_logits and
known), logged under its own name (G_L1, G_CE, G_MSE, G_perceptual). A `GanTerm` scores a
discriminator's predictions for both players; `GAN_TERMS` names the variants. `TaskLosses` is what a
task tells a paired method about its losses (which pixel term fits it, its hole weights).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from translate.losses import (
    Preds, gan_loss, hole_weighted_l1, l1_loss, masked_gan_loss, mse_loss, relativistic_gan_loss,
)

Outputs = Mapping[str, Tensor]
Judge = Callable[[str], Preds]  # image name in the outputs ("fake_b", "real_b") -> D's predictions


@dataclass(frozen=True)
class TaskLosses:
    """A task's say in a paired method's losses: the pixel term `pixel_loss: auto` picks, the GAN
    variant that replaces gan.loss's own (None: keep it), and hole_l1's weights (Liu et al. 2018)."""

    pixel: str = "l1"
    gan: str | None = None
    hole_weight: float = 1.0
    known_weight: float = 1.0


@dataclass
class LossTerm:
    """weight * loss(outputs), logged as `name`; `needs` are the outputs it reads beyond fake_b / real_b."""

    name: str
    weight: float
    loss: Callable[[Outputs], Tensor]
    needs: frozenset[str] = frozenset()

    def __call__(self, out: Outputs) -> Tensor:
        return self.weight * self.loss(out)

    def fit(self, targets: Callable[[], Iterator[Tensor]]) -> None:
        """Learn from the training targets ((C, H, W) tensors) before the first step; most terms need nothing."""


def l1_term(weight: float) -> LossTerm:
    """lambda * E[|y - G(x)|] (pix2pix eq. 3)."""
    return LossTerm("G_L1", weight, lambda out: l1_loss(out["fake_b"], out["real_b"]))


def mse_term(weight: float) -> LossTerm:
    """lambda * E[(y - G(x))^2], PSNR's own loss (see translate.losses.mse_loss)."""
    return LossTerm("G_MSE", weight, lambda out: mse_loss(out["fake_b"], out["real_b"]))


def hole_l1_term(weight: float, losses: TaskLosses) -> LossTerm:
    """lambda * E[w |y - G(x)|], w = hole_weight in the holes (known == 0), known_weight elsewhere
    (Liu et al. 2018, eq. 1-2; translate.losses.hole_weighted_l1)."""
    def loss(out: Outputs) -> Tensor:
        return hole_weighted_l1(out["fake_b"], out["real_b"], 1 - out["known"], hole_weight=losses.hole_weight,
                                known_weight=losses.known_weight)
    return LossTerm("G_L1", weight, loss, frozenset({"known"}))


def perceptual_term(weight: float, perceptual: Callable[[Tensor, Tensor], Tensor]) -> LossTerm:
    """lambda * VGG feature distance, on the filled image where the task copies known pixels (only
    the holes' features can differ then)."""
    return LossTerm("G_perceptual", weight, lambda out: perceptual(out.get("filled_b", out["fake_b"]), out["real_b"]))


class ChromaCE(LossTerm):
    """lambda * cross-entropy over quantised ab bins (Zhang et al. 2016, eq. 2), optionally rebalanced
    towards rare colours (eq. 3-4, mix `rebalance`; 0 = every pixel alike)."""

    def __init__(self, weight: float, centres: Callable[[], Tensor], rebalance: float) -> None:
        super().__init__("G_CE", weight, self._loss, frozenset({"ab_logits"}))
        self.centres, self.rebalance = centres, rebalance
        self.class_weights: Tensor | None = None

    def _loss(self, out: Outputs) -> Tensor:
        from translate.nets.chroma import classification_loss

        centres, weights = self.centres(), self.class_weights
        weights = None if weights is None else weights.to(centres.device)
        return classification_loss(out["ab_logits"], out["real_b"], centres, weights=weights)

    def fit(self, targets: Callable[[], Iterator[Tensor]]) -> None:
        """The bins' distribution over one draw of every training target, so a resumed run gets the same weights."""
        if self.rebalance > 0:
            from translate.nets.chroma import bin_prior, rebalancing_weights

            self.class_weights = rebalancing_weights(bin_prior(targets(), self.centres()), self.rebalance)


class GanTerm:
    """standard: gan.loss's mode (vanilla, lsgan, wgangp, hinge; translate.losses.gan_loss).
    G: l(D(G(x)), real); D: 0.5 * (l(D(y), real) + l(D(G(x)), fake)), halved to slow D (pix2pix §3.3)."""

    def __init__(self, mode: str, label_smoothing: float = 0.0) -> None:
        self.mode, self.label_smoothing = mode, label_smoothing

    def score(self, pred: Preds, is_real: bool, for_discriminator: bool) -> Tensor:
        """gan.loss's mode on one set of predictions (label smoothing for D's real targets)."""
        return gan_loss(pred, is_real=is_real, mode=self.mode, for_discriminator=for_discriminator,
                        label_smoothing=self.label_smoothing)

    def generator(self, judge: Judge, out: Outputs) -> Tensor:
        return self.score(judge("fake_b"), True, False)

    def discriminator(self, real: Preds, fake: Preds, out: Outputs) -> Tensor:
        return 0.5 * (self.score(real, True, True) + self.score(fake, False, True))


class RelativisticGan(GanTerm):
    """Relativistic average GAN (ESRGAN §3.2; translate.losses.relativistic_gan_loss); G's real
    logits carry no gradient, as the reference detaches them."""

    def generator(self, judge: Judge, out: Outputs) -> Tensor:
        fake = judge("fake_b")
        with torch.no_grad():
            real = judge("real_b")
        return relativistic_gan_loss(real, fake, for_discriminator=False)

    def discriminator(self, real: Preds, fake: Preds, out: Outputs) -> Tensor:
        return relativistic_gan_loss(real, fake, for_discriminator=True)  # already the mean of both terms


class HoleMaskedGan(GanTerm):
    """LaMa's (Suvorov et al. 2022, §3.3) on a filled image: holes (known == 0) are fake, known
    pixels real; G's term counts the holes only (translate.losses.masked_gan_loss)."""

    def generator(self, judge: Judge, out: Outputs) -> Tensor:
        return masked_gan_loss(judge("fake_b"), 1 - out["known"], mode=self.mode, for_discriminator=False)

    def discriminator(self, real: Preds, fake: Preds, out: Outputs) -> Tensor:
        return 0.5 * (self.score(real, True, True)
                      + masked_gan_loss(fake, 1 - out["known"], mode=self.mode, for_discriminator=True))


GAN_TERMS: dict[str, type[GanTerm]] = {"standard": GanTerm, "relativistic": RelativisticGan,
                                       "hole_masked": HoleMaskedGan}


def gan_term(mode: str, label_smoothing: float = 0.0, variant: str | None = None) -> GanTerm:
    """The GAN term of gan.loss `mode` (ragan: relativistic), or the named `variant` in that mode."""
    name = variant or ("relativistic" if mode == "ragan" else "standard")
    return GAN_TERMS[name](mode, label_smoothing)


def total(terms: Iterable[LossTerm], out: Outputs) -> dict[str, Tensor]:
    """Each term's weighted value by its log name."""
    return {term.name: term(out) for term in terms}
