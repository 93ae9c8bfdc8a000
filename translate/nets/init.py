"""Weight initialisation schemes of the reference pix2pix/CycleGAN code."""
from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

from translate.errors import ConfigError

INIT_SCHEMES = ("normal", "xavier", "kaiming", "orthogonal", "torch")
_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def init_weights(net: nn.Module, *, scheme: str = "normal", gain: float = 0.02) -> None:
    """Re-initialise conv/linear weights by `scheme`, their biases to 0, BatchNorm to N(1, gain), 0.

    Draws from torch's global generator: seed it (the training loop does) for repeatable nets.
    `gain` is the std for "normal" and the gain for "xavier"/"orthogonal"; "kaiming" ignores it.
    "torch" keeps PyTorch's own fan-in-scaled defaults (as EDSR does): a deep net without
    normalisation barely passes a signal through N(0, 0.02) weights, so it learns far slower.
    """
    if scheme not in INIT_SCHEMES:
        choices = ", ".join(INIT_SCHEMES)
        raise ConfigError(f"init scheme: unknown {scheme!r}; choose one of {choices}")
    if scheme == "torch":
        return
    for module in net.modules():
        if isinstance(module, _WEIGHTED):
            # Under spectral norm `weight` is computed on the fly; initialise what it is made from
            # (the parametrization's `original`, or `weight_orig` of torch.nn.utils.spectral_norm).
            if parametrize.is_parametrized(module, "weight"):
                weight = module.parametrizations.weight.original
            else:
                weight = getattr(module, "weight_orig", module.weight)
            if scheme == "normal":
                nn.init.normal_(weight, 0.0, gain)
            elif scheme == "xavier":
                nn.init.xavier_normal_(weight, gain=gain)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(weight, gain=gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
