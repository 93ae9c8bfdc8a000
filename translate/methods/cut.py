"""CUT and FastCUT (Park et al., ECCV 2020): one generator and one discriminator; PatchNCE ties each
output patch to the input patch at the same place instead of a cycle back to the input."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from translate.config import ConfigError, Settings, TrainConfig
from translate.config.plugins import RATE, WEIGHT, Range, count
from translate.losses import patch_nce_loss
from translate.methods.base import shown_as_is
from translate.methods.entry import MethodEntry, Flag
from translate.methods.unpaired import UnpairedMethod, refuse_relativistic_gan
from translate.nets import PRESETS, init_weights, spec_to_dict
from translate.nets.patch_sample import PatchSampler
from translate.nets.resnet import ResnetSpec


@dataclass
class CUTConfig(Settings):
    """CUT / FastCUT (Park et al. 2020): one generator, one discriminator, PatchNCE instead of a cycle."""

    SECTION: ClassVar[str] = "cut"
    RANGES: ClassVar[dict[str, Range]] = {
        "lambda_gan": WEIGHT, "lambda_nce": WEIGHT, "num_patches": count(1, "at least 1"),
        "mlp_channels": count(1, "at least 1"), "nce_t": RATE,
    }
    lambda_gan: float = 1.0
    lambda_nce: float = 1.0  # FastCUT: 10
    nce_layers: str = "input,down1,down2,block1,block5"  # ResnetSpec.taps; CUT's nce_layers 0,4,8,12,16
    num_patches: int = 256  # locations sampled per layer and image
    mlp_channels: int = 256  # width of the projection MLPs (the reference's netF_nc)
    nce_t: float = 0.07  # temperature
    nce_idt: bool = True  # also NCE(real_B, G(real_B)), A and B through G in one batch (not FastCUT)
    flip_equivariance: bool = False  # FastCUT: random left-right flips of G's input, undone on features

    def check(self, config: TrainConfig) -> None:
        refuse_relativistic_gan(config)


def nce_taps(config: TrainConfig) -> tuple[str, ...]:
    """The generator features `cut.nce_layers` names, checked against the generator."""
    g = config.generator
    if not isinstance(g, ResnetSpec):
        raise ConfigError(f"generator: {config.method} compares ResNet encoder features; "
                          f"{g.kind!r} has none (use resnet_9blocks_antialias or resnet_9blocks)")
    taps = tuple(name.strip() for name in config.method_settings.nce_layers.split(",") if name.strip())
    unknown = [name for name in taps if name not in g.taps]
    if unknown or not taps:
        raise ConfigError(f"cut.nce_layers: {unknown[0] if unknown else 'nothing'!r} is not a feature "
                          f"of this generator; choose from {', '.join(g.taps)}")
    return taps


class CUT(UnpairedMethod):
    """g_ab: A -> B, d_b judges B, patch_sampler projects encoder patches for PatchNCE.

    patch_sampler trains with the generator (it is in `generator_names`, so in G's optimiser) but
    is never exported: inference loads g_ab alone. D is updated before G, as in CUT's code.
    """

    generator_names = ("g_ab", "patch_sampler")
    discriminator_names = ("d_b",)
    update_order = ("discriminator", "generator")

    def __init__(self, config: TrainConfig) -> None:
        g, c = config.generator, config.method_settings
        if config.direction != "a_to_b":
            raise ConfigError(f"direction: {config.method} trains a_to_b only; swap the A and B "
                              "folders to learn the other way")
        if g.scale != 1:
            raise ConfigError(f"generator: {config.method} needs a same-size generator (upscale 1)")
        if c.nce_idt and g.in_channels != g.out_channels:
            raise ConfigError(f"cut.nce_idt: feeds B images to g_ab, so in_channels ({g.in_channels}) "
                              f"must equal out_channels ({g.out_channels}); set cut.nce_idt=false")
        self.taps = nce_taps(config)
        specs = {"g_ab": g, "d_b": dataclasses.replace(config.discriminator, in_channels=g.out_channels)}
        super().__init__(config, specs)
        sampler = PatchSampler([g.tap_channels(t) for t in self.taps], mlp_channels=c.mlp_channels,
                               seed=config.runtime.seed)
        init_weights(sampler, scheme=config.init, gain=config.init_gain)
        self.nets["patch_sampler"] = sampler
        # The flip coin of flip_equivariance; the same on every rank, kept in checkpoints.
        self.flip_rng = torch.Generator().manual_seed(config.runtime.seed)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """real_a, real_b -> fake_b = G(real_a) (and idt_b = G(real_b) with nce_idt, same batch)."""
        c = self.config.method_settings
        real_a, real_b = batch["a"], batch["b"]
        both = c.nce_idt and self.training
        real = torch.cat([real_a, real_b]) if both else real_a
        flipped = self.training and c.flip_equivariance and bool(
            torch.rand((), generator=self.flip_rng) < 0.5)
        g, out = self.replica("g_ab"), {}
        if self.training and c.lambda_nce > 0 and not flipped:
            # The NCE keys are G's encoder features of `real`: keep them from this pass instead of
            # a second one (G's weights do not change before the G step; keys are detached anyway).
            fake, keys = g(real, taps=self.taps, with_image=True)
            out["real_taps"] = [k.detach() for k in keys]
        else:
            fake = g(real.flip(3) if flipped else real)
        n = real_a.shape[0]
        out |= {"real_a": real_a, "real_b": real_b, "real": real, "fake": fake, "fake_b": fake[:n],
                "flipped": torch.tensor(flipped)}
        if both:
            out["idt_b"] = fake[n:]
        return out

    def generator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        """lambda_GAN * GAN(D(G(a))) + NCE, NCE = (NCE_X + NCE_Y) / 2 with nce_idt (CUT eq. 5)."""
        c = self.config.method_settings
        losses: dict[str, Tensor] = {}
        if c.lambda_gan > 0:
            # The bare discriminator: it is frozen in this step, so it has nothing to synchronise.
            pred = self.nets["d_b"](out["fake_b"])
            losses["G_GAN"] = c.lambda_gan * self.gan_term.score(pred, True, False)
        if c.lambda_nce > 0:
            losses["NCE"] = self._nce(out["real"], out["fake"], n_a=len(out["real_a"]),
                                      flipped=bool(out["flipped"]), keys=out.get("real_taps"))
        return losses

    def _nce(self, real: Tensor, fake: Tensor, *, n_a: int, flipped: bool,
             keys: list[Tensor] | None = None) -> Tensor:
        """PatchNCE between G's features of `fake` (queries) and of `real` (keys, computed here
        unless given); when the batch holds A (first n_a) and B, per part, then averaged:
        (NCE_X + NCE_Y) / 2."""
        c, g, sampler = self.config.method_settings, self.replica("g_ab"), self.replica("patch_sampler")
        with torch.no_grad():  # the keys are detached in the loss: no graph needed
            keys = keys if keys is not None else g(real, taps=self.taps)
            where = self.nets["patch_sampler"].sample_locations(keys, c.num_patches)
            keys = sampler(keys, where)
        queries = g(fake, taps=self.taps)
        if flipped:  # G saw the mirrored input: mirror its features back onto the real ones
            queries = [q.flip(3) for q in queries]
        queries = sampler(queries, where)
        halves = [slice(0, n_a), slice(n_a, None)] if len(real) > n_a else [slice(None)]
        terms = [patch_nce_loss([q[h] for q in queries], [k[h] for k in keys],
                                temperature=c.nce_t, weight=c.lambda_nce) for h in halves]
        return torch.stack(terms).mean()

    def discriminator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        return self._discriminator_loss("d_b", out["real_b"], out["fake_b"], label="D")

    def sample_rows(self, out: dict[str, Tensor]) -> list[list[np.ndarray]]:
        """real_A | fake_B, plus real_B | idt_B with nce_idt (fakes shown unmirrored)."""
        unflip = (lambda x: x.flip(3)) if bool(out["flipped"]) else (lambda x: x)  # noqa: E731
        rows = [shown_as_is(out["real_a"], unflip(out["fake_b"]))]
        if "idt_b" in out:
            rows.append(shown_as_is(out["real_b"], unflip(out["idt_b"])))
        return rows

    def validation_pairs(self, out: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """No aligned targets: how much of the input's structure the output keeps (vs_input_ssim, ...)."""
        if out["fake_b"].shape[1] != out["real_a"].shape[1]:
            return {}
        return {"vs_input_": (out["fake_b"], out["real_a"])}

    def translation_pairs(self, out: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Translations vs the real test images of domain B (for KID)."""
        return {"": (out["fake_b"], out["real_b"])}

    def extra_state(self) -> dict[str, Any]:
        # The patch-location RNG is in patch_sampler's state dict, saved with the nets.
        return {"flip_rng": self.flip_rng.get_state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "flip_rng" in state:
            self.flip_rng.set_state(state["flip_rng"])


# CUT and FastCUT share the nets anti-aliased, xavier init and LSGAN; FastCUT changes the NCE terms
# and the schedule (150 + 50 epochs instead of 200 + 200).
_CUT_DEFAULTS = {
    "generator": "resnet_9blocks_antialias", "init": "xavier", "gan": {"loss": "lsgan"},
    "discriminator": {**spec_to_dict(PRESETS["patchgan_70_antialias"]), "norm": "instance"},
}
_NCE_FLAG = {"lambda_nce": Flag(("cut.lambda_nce",), float, "CUT / FastCUT PatchNCE weight (1 / 10)")}
CUT_ENTRY = MethodEntry(
    name="cut", description="unpaired, one-sided: PatchNCE instead of a cycle (Park et al. 2020)",
    build=CUT, settings=CUTConfig, flags=_NCE_FLAG,
    defaults={**_CUT_DEFAULTS, "optim": {"epochs": 200, "epochs_decay": 200}},
)
FASTCUT = MethodEntry(
    name="fastcut", description="CUT with FastCUT's defaults: NCE weight 10, no identity NCE, flip equivariance",
    build=CUT, settings=CUTConfig, flags=_NCE_FLAG,
    defaults={**_CUT_DEFAULTS, "optim": {"epochs": 150, "epochs_decay": 50},
              "cut": {"lambda_nce": 10.0, "nce_idt": False, "flip_equivariance": True}},
)
