"""SRVGGNetCompact (Real-ESRGAN's small models), state-dict compatible with BasicSR's version.

A plain stack of 3x3 convs at input resolution, one pixel-shuffle at the end, and the input
nearest-upsampled and added so the net learns only the residual (Real-ESRGAN, realesr-general-x4v3
and realesr-animevideov3).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.nets.layers import PublishedSRSpec, check_choice, check_positive

Activation = Literal["prelu", "relu", "leaky_relu"]
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
SRVGG_UPSCALES = (1, 2, 3, 4)


@dataclass(frozen=True)
class SrvggCompactSpec(PublishedSRSpec):
    """SRVGGNetCompact: a conv, `n_convs` body convs, a conv to out_channels * upscale**2 channels.

    BasicSR's names: base_channels is `num_feat`, n_convs `num_conv`, activation `act_type`
    ("leaky_relu" is its "leakyrelu", slope 0.1). Needs in_channels == out_channels: the
    upsampled input is added to the output.
    """

    kind: Literal["srvgg_compact"] = "srvgg_compact"
    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 64
    n_convs: int = 32  # realesr-general-x4v3; realesr-animevideov3 has 16
    upscale: int = 4
    activation: Activation = "prelu"  # one learned slope per channel, as all published models

    def __post_init__(self) -> None:
        check_positive("in_channels", self.in_channels)
        check_positive("out_channels", self.out_channels)
        check_positive("base_channels", self.base_channels)
        check_positive("n_convs", self.n_convs, minimum=0)
        check_choice("activation", self.activation, ACTIVATIONS)
        if self.upscale not in SRVGG_UPSCALES:
            raise ConfigError(f"upscale: must be one of {SRVGG_UPSCALES}, got {self.upscale!r}")
        if self.in_channels != self.out_channels:
            raise ConfigError(
                f"in_channels: must equal out_channels ({self.out_channels}) for srvgg_compact, "
                f"which adds its upsampled input to the output; got {self.in_channels}"
            )


def activation_layer(activation: Activation, channels: int) -> nn.Module:
    """The activation after each conv; only PReLU has parameters (`body.N.weight`)."""
    if activation == "prelu":
        return nn.PReLU(num_parameters=channels)
    if activation == "relu":
        return nn.ReLU()
    return nn.LeakyReLU(0.1)


class SrvggCompactGenerator(nn.Module):
    """SRVGGNetCompact. (N, C, H, W) RGB in [0, 1] -> (N, C, s*H, s*W), unbounded.

    s is `spec.upscale`. Clamp to [0, 1] for images, as the published inference code does.
    """

    def __init__(self, spec: SrvggCompactSpec) -> None:
        super().__init__()
        self.spec = spec
        feat, act = spec.base_channels, spec.activation
        # One flat ModuleList `body` (conv, act, conv, act, ..., conv) so released weights load.
        layers: list[nn.Module] = [nn.Conv2d(spec.in_channels, feat, 3, padding=1)]
        layers.append(activation_layer(act, feat))
        for _ in range(spec.n_convs):
            layers += [nn.Conv2d(feat, feat, 3, padding=1), activation_layer(act, feat)]
        layers.append(nn.Conv2d(feat, spec.out_channels * spec.upscale**2, 3, padding=1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(spec.upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        base = F.interpolate(x, scale_factor=float(self.spec.upscale), mode="nearest")
        return self.upsampler(out) + base
