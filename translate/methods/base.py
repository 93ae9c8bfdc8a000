"""What every method shares: its nets, their specs and the discriminator objective."""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from translate.config import TrainConfig
from translate.losses import gan_loss, gradient_penalty
from translate.nets import build_net, init_weights, spec_to_dict


class GanMethod(nn.Module):
    """Base: `nets` (ModuleDict by role name: g_ab, g_ba, d_a, d_b ...) and their `specs`.

    The training loop calls `forward(batch) -> outputs`, then `generator_losses(outputs)` and
    `discriminator_losses(outputs)`; both return named losses that the loop sums."""

    generator_names: tuple[str, ...] = ()
    discriminator_names: tuple[str, ...] = ()

    def __init__(self, config: TrainConfig, specs: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.specs = specs
        self.nets = nn.ModuleDict({name: build_net(spec) for name, spec in specs.items()})
        for net in self.nets.values():
            init_weights(net, scheme=config.init, gain=config.init_gain)
        # Under torchrun the loop puts DistributedDataParallel wrappers here; calls that train a net
        # go through `self.replica(name)` so its gradients are averaged across ranks.
        self.replicas: dict[str, nn.Module] = {}

    def replica(self, name: str) -> nn.Module:
        return self.replicas.get(name, self.nets[name])

    def spec_dicts(self) -> dict[str, dict]:
        return {name: spec_to_dict(spec) for name, spec in self.specs.items()}

    def extra_state(self) -> dict[str, Any]:
        """Method state beyond the nets that a checkpoint must keep (e.g. image pools)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def _gan(self, pred: Any, *, is_real: bool, for_discriminator: bool) -> Tensor:
        gan = self.config.gan
        return gan_loss(pred, is_real=is_real, mode=gan.loss, for_discriminator=for_discriminator,
                        label_smoothing=gan.label_smoothing)

    def _discriminator_loss(self, name: str, real: Tensor, fake: Tensor, *, label: str) -> dict[str, Tensor]:
        """0.5 * (loss(D(real), real) + loss(D(fake), fake)): halved to slow D relative to G
        (pix2pix §3.3, CycleGAN §4), plus the gradient penalty for WGAN-GP."""
        d = self.replica(name)
        fake = fake.detach()
        loss = 0.5 * (self._gan(d(real), is_real=True, for_discriminator=True)
                      + self._gan(d(fake), is_real=False, for_discriminator=True))
        losses = {label: loss}
        if self.config.gan.loss == "wgangp":
            # The bare net: DDP does not support double backward; the penalty's gradients still
            # reach the same parameters within this backward, so they are averaged with the rest.
            losses[f"{label}_gp"] = gradient_penalty(
                self.nets[name], real, fake, weight=self.config.gan.gp_weight)
        return losses
