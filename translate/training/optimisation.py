"""The optimizers of a run: Adam for the generators and the discriminators, AMP scalers, the LR
schedule, gradient clipping and the generator / discriminator updates."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from translate.config import TrainConfig
from translate.inference.device import autocast
from translate.methods.base import GanMethod


def lr_factor(epoch: int, *, epochs: int, epochs_decay: int) -> float:
    """Constant for `epochs`, then linear decay towards 0 over `epochs_decay` (pix2pix/CycleGAN code).
    `epoch` is 0-based; the last decay epoch still trains at a small positive rate."""
    return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)


class Optimisers:
    """Adam over the method's generators (`g`) and discriminators (`d`, none for a GAN-less method)."""

    def __init__(self, method: GanMethod, config: TrainConfig, device: torch.device) -> None:
        self.method, self.config, self.device = method, config, device
        o, fp16 = config.optim, config.runtime.amp == "fp16"
        params = lambda names: [p for n in names for p in method.nets[n].parameters()]  # noqa: E731
        # fused Adam: one kernel over all parameters; on CPU it cuts the optimizer step ~4x.
        adam = lambda names, lr: torch.optim.Adam(params(names), lr=lr, betas=(o.beta1, o.beta2), fused=True)  # noqa: E731
        self.opt_g = adam(method.generator_names, o.lr_g)
        self.opt_d = adam(method.discriminator_names, o.lr_d) if method.discriminator_names else None
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=fp16) for k in ("g", "d")}

    @property
    def lr(self) -> float:
        return self.opt_g.param_groups[0]["lr"]

    def set_epoch(self, epoch: int, *, epochs: int) -> None:
        """The learning rates for 0-based `epoch`: constant for `epochs`, then optim.epochs_decay down."""
        o = self.config.optim
        factor = lr_factor(epoch, epochs=epochs, epochs_decay=o.epochs_decay)
        for opt, base in ((self.opt_g, o.lr_g), (self.opt_d, o.lr_d)):
            for group in opt.param_groups if opt is not None else []:
                group["lr"] = base * factor

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": {"g": self.opt_g.state_dict(), **({"d": self.opt_d.state_dict()} if self.opt_d else {})},
                "scalers": {k: s.state_dict() for k, s in self.scalers.items()}}

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        self.opt_g.load_state_dict(ckpt["optimizers"]["g"])
        if self.opt_d is not None:
            self.opt_d.load_state_dict(ckpt["optimizers"]["d"])
        for k, s in self.scalers.items():
            if ckpt.get("scalers", {}).get(k):
                s.load_state_dict(ckpt["scalers"][k])

    def _set_requires_grad(self, names: tuple[str, ...], flag: bool) -> None:
        for name in names:
            for p in self.method.nets[name].parameters():
                p.requires_grad_(flag)

    def _optimise(self, losses: dict[str, Tensor], opt: torch.optim.Optimizer, scaler: Any,
                  names: tuple[str, ...]) -> None:
        opt.zero_grad(set_to_none=True)
        scaler.scale(sum(losses.values())).backward()
        if self.config.optim.grad_clip > 0:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_([p for n in names for p in self.method.nets[n].parameters()],
                                     self.config.optim.grad_clip)
        scaler.step(opt)
        scaler.update()

    def update_generators(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        m = self.method
        # D is frozen during the G step so no D weight gradients are computed for nothing.
        self._set_requires_grad(m.discriminator_names, False)
        with autocast(self.device, self.config.runtime.amp):
            losses = m.generator_losses(out)
        self._optimise(losses, self.opt_g, self.scalers["g"], m.generator_names)
        self._set_requires_grad(m.discriminator_names, True)
        return losses

    def update_discriminators(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.opt_d is None:
            return {}
        with autocast(self.device, self.config.runtime.amp):
            losses = self.method.discriminator_losses(out)
        self._optimise(losses, self.opt_d, self.scalers["d"], self.method.discriminator_names)
        return losses
