"""Gated-convolution inpainting generator: the coarse network of DeepFill v2 (Yu et al. 2019, "Free-Form
Image Inpainting with Gated Convolution", section 3.1 and its figure 3), one stage, no attention.

A gated convolution learns, per pixel and channel, how much of its feature to let through:
    out = ELU(conv_f(x)) * sigmoid(conv_g(x))
so a layer can learn to ignore the mid-grey hole pixels and the mask channel tells it where they
are, which a plain convolution (the same weights on hole and known pixels) cannot. The middle
runs at a quarter of the resolution with dilations 2, 4, 8, 16, ... so every hole pixel sees known
context far away (a 128 px crop's whole width with four dilated layers).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from translate.nets.layers import SameSizeTanhSpec, check_positive


@dataclass(frozen=True)
class GatedSpec(SameSizeTanhSpec):
    """Gated-conv encoder-decoder: two stride-2 stages, `n_dilated` dilated gated convs (dilation
    2, 4, 8, ...) between plain ones, two nearest-upsampling stages. DeepFill v2's width is 48."""

    kind: Literal["gated"] = "gated"
    in_channels: int = 4  # RGB with holes + the known mask (the inpaint task's input)
    out_channels: int = 3
    base_channels: int = 48
    n_dilated: int = 4

    def __post_init__(self) -> None:
        check_positive("in_channels", self.in_channels)
        check_positive("out_channels", self.out_channels)
        check_positive("base_channels", self.base_channels, minimum=2)
        check_positive("n_dilated", self.n_dilated, minimum=0)

    @property
    def size_multiple(self) -> int:
        return 4  # two stride-2 stages; inference pads inputs up to this


class GatedConv2d(nn.Module):
    """ELU(features) * sigmoid(gate), both from one convolution with 2 x out_channels ("same" padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, stride=stride, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2)
        self.activation = nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return self.activation(features) * torch.sigmoid(gate)


class GatedGenerator(nn.Module):
    """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]; H, W multiples of 4."""

    def __init__(self, spec: GatedSpec) -> None:
        super().__init__()
        self.spec = spec
        c = spec.base_channels
        layers: list[nn.Module] = [
            GatedConv2d(spec.in_channels, c, 5),
            GatedConv2d(c, 2 * c, stride=2), GatedConv2d(2 * c, 2 * c),
            GatedConv2d(2 * c, 4 * c, stride=2), GatedConv2d(4 * c, 4 * c), GatedConv2d(4 * c, 4 * c),
        ]
        layers += [GatedConv2d(4 * c, 4 * c, dilation=2 ** (i + 1)) for i in range(spec.n_dilated)]
        layers += [
            GatedConv2d(4 * c, 4 * c), GatedConv2d(4 * c, 4 * c),
            nn.Upsample(scale_factor=2, mode="nearest"), GatedConv2d(4 * c, 2 * c), GatedConv2d(2 * c, 2 * c),
            nn.Upsample(scale_factor=2, mode="nearest"), GatedConv2d(2 * c, c), GatedConv2d(c, c // 2),
            nn.Conv2d(c // 2, spec.out_channels, 3, padding=1), nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
