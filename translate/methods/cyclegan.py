"""CycleGAN (Zhu et al. 2017): two generators, two discriminators, cycle + identity losses."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from translate.config import ConfigError, Settings, TrainConfig
from translate.config.plugins import OFF, WEIGHT, Range
from translate.methods.base import shown_as_is
from translate.methods.entry import Flag, MethodEntry
from translate.losses import l1_loss
from translate.methods.image_pool import ImagePool
from translate.nets import PRESETS, spec_to_dict
from translate.methods.unpaired import UnpairedMethod, refuse_relativistic_gan


@dataclass
class CycleGANConfig(Settings):
    """CycleGAN's loss weights and image pool (YAML `cyclegan:`)."""

    SECTION: ClassVar[str] = "cyclegan"
    RANGES: ClassVar[dict[str, Range]] = {"lambda_a": WEIGHT, "lambda_b": WEIGHT, "lambda_identity": WEIGHT,
                                           "pool_size": OFF}
    lambda_a: float = 10.0  # cycle weight for A -> B -> A
    lambda_b: float = 10.0  # cycle weight for B -> A -> B
    lambda_identity: float = 0.5  # relative to lambda_a / lambda_b, as in the paper's code
    pool_size: int = 50  # image history buffer; 0 disables it

    def check(self, config: TrainConfig) -> None:
        refuse_relativistic_gan(config)


def identity_loss_applies(config: TrainConfig) -> bool:
    """Identity loss feeds B to g_ab (and A to g_ba), so it needs equal channel counts."""
    g = config.generator
    return config.method_settings.lambda_identity > 0 and g.in_channels == g.out_channels


class CycleGAN(UnpairedMethod):
    """g_ab: A -> B and g_ba: B -> A share the configured generator spec (channels swapped);
    d_a judges domain A, d_b domain B. Fakes reach the discriminators through image pools."""

    generator_names = ("g_ab", "g_ba")
    discriminator_names = ("d_a", "d_b")

    def __init__(self, config: TrainConfig) -> None:
        g = config.generator
        if g.scale != 1:
            raise ConfigError("generator: CycleGAN needs same-size generators (upscale 1) to form cycles")
        d = config.discriminator
        specs = {
            "g_ab": g,
            "g_ba": dataclasses.replace(g, in_channels=g.out_channels, out_channels=g.in_channels),
            "d_a": dataclasses.replace(d, in_channels=g.in_channels),
            "d_b": dataclasses.replace(d, in_channels=g.out_channels),
        }
        super().__init__(config, specs)
        c = config.method_settings
        # Identity loss is documented as automatically off when channel counts differ (gray <-> RGB).
        self.lambda_identity = c.lambda_identity if identity_loss_applies(config) else 0.0
        seed = config.runtime.seed
        self.pool_a = ImagePool(c.pool_size, seed=seed * 2 + 1)  # fakes of A, judged by d_a
        self.pool_b = ImagePool(c.pool_size, seed=seed * 2 + 2)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real_a, real_b = batch["a"], batch["b"]
        g_ab, g_ba = self.replica("g_ab"), self.replica("g_ba")
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        return {"real_a": real_a, "real_b": real_b, "fake_a": fake_a, "fake_b": fake_b,
                "rec_a": g_ba(fake_b), "rec_b": g_ab(fake_a)}

    def generator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        c = self.config.method_settings
        # Bare discriminators: they are frozen in this step, so they have nothing to synchronise.
        losses = {
            "G_AB": self.gan_term.score(self.nets["d_b"](self.discriminator_input(out["fake_b"])), True,
                              False),
            "G_BA": self.gan_term.score(self.nets["d_a"](self.discriminator_input(out["fake_a"])), True,
                              False),
            # ||G_BA(G_AB(a)) - a||_1 and ||G_AB(G_BA(b)) - b||_1 (CycleGAN eq. 2)
            "cycle_A": l1_loss(out["rec_a"], out["real_a"], weight=c.lambda_a),
            "cycle_B": l1_loss(out["rec_b"], out["real_b"], weight=c.lambda_b),
        }
        if self.lambda_identity > 0:
            # ||G_AB(b) - b||_1 (CycleGAN §5.2, from Taigman et al.), weighted relative to the cycle weight
            idt_b = self.replica("g_ab")(out["real_b"])
            idt_a = self.replica("g_ba")(out["real_a"])
            losses["idt_A"] = l1_loss(idt_a, out["real_a"], weight=c.lambda_a * self.lambda_identity)
            losses["idt_B"] = l1_loss(idt_b, out["real_b"], weight=c.lambda_b * self.lambda_identity)
        return losses

    def discriminator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        return {
            **self._discriminator_loss("d_a", out["real_a"], self.pool_a.query(out["fake_a"].detach()), label="D_A"),
            **self._discriminator_loss("d_b", out["real_b"], self.pool_b.query(out["fake_b"].detach()), label="D_B"),
        }

    def sample_rows(self, out: dict[str, Tensor]) -> list[list[np.ndarray]]:
        """real_A | fake_B | rec_A and real_B | fake_A | rec_B."""
        return [shown_as_is(out["real_a"], out["fake_b"], out["rec_a"]),
                shown_as_is(out["real_b"], out["fake_a"], out["rec_b"])]

    def validation_pairs(self, out: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Cycle reconstructions on testA/testB (no aligned targets exist): cycle_A_l1, cycle_B_psnr, ..."""
        return {"cycle_A_": (out["rec_a"], out["real_a"]), "cycle_B_": (out["rec_b"], out["real_b"])}

    def translation_pairs(self, out: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Each direction's translations vs the real test images of its target domain."""
        return {"A_to_B_": (out["fake_b"], out["real_b"]), "B_to_A_": (out["fake_a"], out["real_a"])}

    def extra_state(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        device = next(self.parameters()).device
        self.pool_a.load_state_dict(state["pool_a"], device=device)
        self.pool_b.load_state_dict(state["pool_b"], device=device)


CYCLEGAN = MethodEntry(
    name="cyclegan", description="unpaired: two generators, cycle + identity losses (Zhu et al. 2017)",
    build=CycleGAN, settings=CycleGANConfig,
    defaults={"generator": "resnet_9blocks", "discriminator": {**spec_to_dict(PRESETS["patchgan_70"]), "norm": "instance"},
              "gan": {"loss": "lsgan"}},
    flags={"lambda_cycle": Flag(("cyclegan.lambda_a", "cyclegan.lambda_b"), float,
                                "CycleGAN cycle weight for both directions (10)"),
           "lambda_identity": Flag(("cyclegan.lambda_identity",), float, "CycleGAN identity weight (0.5; 0 = off)"),
           "pool_size": Flag(("cyclegan.pool_size",), int, "CycleGAN image history size (50; 0 = off)")},
)
