"""ResNet generator (CycleGAN default), state-dict compatible with the reference CycleGAN code."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from translate.nets.layers import (
    NORMS,
    PADDINGS,
    Norm,
    ValueRange,
    Padding,
    check_choice,
    check_dropout,
    check_positive,
    conv_bias,
    norm_layer,
    padding_layers,
)

UPSCALES = (1, 2, 4)


@dataclass(frozen=True)
class ResnetSpec:
    """ResNet generator: 2 stride-2 downsamplings, `n_blocks` residual blocks, 2 upsamplings.

    `upscale` > 1 adds a learned pixel-shuffle tail (super-resolution): an H x W input gives an
    (upscale * H) x (upscale * W) output. With upscale == 1 the net is exactly the reference one.
    """

    kind: Literal["resnet"] = "resnet"
    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 64
    n_blocks: int = 9
    norm: Norm = "instance"  # CycleGAN default
    dropout: float = 0.0  # CycleGAN trains without; the reference's use_dropout means 0.5
    padding: Padding = "reflect"  # inside the residual blocks; the 7x7 convs always reflect
    upscale: int = 1
    # Stride-2 stages before the residual blocks (and transposed-conv stages after them). 2 is the
    # reference; 0 keeps the blocks at input resolution, as super-resolution nets do (EDSR).
    downsampling: int = 2
    # Add the input, bicubically resized to the output size, to the output: the net then learns
    # only the correction (global residual learning, VDSR: Kim et al. 2016), which trains much
    # faster for super-resolution. Needs in_channels == out_channels.
    residual: bool = False

    def __post_init__(self) -> None:
        check_positive("in_channels", self.in_channels)
        check_positive("out_channels", self.out_channels)
        check_positive("base_channels", self.base_channels)
        check_positive("n_blocks", self.n_blocks, minimum=0)
        check_choice("norm", self.norm, NORMS)
        check_dropout(self.dropout)
        check_choice("padding", self.padding, PADDINGS)
        check_positive("downsampling", self.downsampling, minimum=0)
        if self.upscale not in UPSCALES:
            raise ValueError(f"upscale: must be one of {UPSCALES}, got {self.upscale!r}")
        if self.residual and self.in_channels != self.out_channels:
            raise ValueError(f"residual: needs in_channels == out_channels, got {self.in_channels} -> {self.out_channels}")

    @property
    def size_multiple(self) -> int:
        return 2**self.downsampling  # inference pads inputs up to this

    @property
    def value_range(self) -> ValueRange:
        return "minus_one_one"  # ends in tanh

    @property
    def scale(self) -> int:
        return self.upscale


class ResnetBlock(nn.Module):
    """Residual block x + F(x), F = pad, conv3x3, norm, ReLU, [dropout], pad, conv3x3, norm."""

    def __init__(self, channels: int, *, norm: Norm, dropout: float, padding: Padding) -> None:
        super().__init__()
        bias = conv_bias(norm)
        pad, conv_padding = padding_layers(padding, 1)
        layers = [
            *pad,
            nn.Conv2d(channels, channels, 3, padding=conv_padding, bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))  # shifts the later indices, as in the reference
        pad, conv_padding = padding_layers(padding, 1)
        layers += [
            *pad,
            nn.Conv2d(channels, channels, 3, padding=conv_padding, bias=bias),
            norm_layer(norm, channels),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """ResNet generator. (N, in_channels, H, W) float -> (N, out_channels, s*H, s*W) in [-1, 1].

    s is `spec.upscale`; H and W must be multiples of 4 for the output to have exactly that size.
    """

    def __init__(self, spec: ResnetSpec) -> None:
        super().__init__()
        self.spec = spec
        base, norm, bias = spec.base_channels, spec.norm, conv_bias(spec.norm)
        # One flat Sequential named `model`, as in the reference, so released weights load.
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(spec.in_channels, base, 7, bias=bias),
            norm_layer(norm, base),
            nn.ReLU(),
        ]
        mults = [2**i for i in range(spec.downsampling)]
        for mult in mults:
            layers += [
                nn.Conv2d(base * mult, base * mult * 2, 3, stride=2, padding=1, bias=bias),
                norm_layer(norm, base * mult * 2),
                nn.ReLU(),
            ]
        width = base * 2**spec.downsampling
        layers += [
            ResnetBlock(width, norm=norm, dropout=spec.dropout, padding=spec.padding)
            for _ in range(spec.n_blocks)
        ]
        for mult in reversed([2 * m for m in mults]):
            layers += [
                nn.ConvTranspose2d(
                    base * mult, base * mult // 2, 3,
                    stride=2, padding=1, output_padding=1, bias=bias,
                ),
                norm_layer(norm, base * mult // 2),
                nn.ReLU(),
            ]
        for _ in range(spec.upscale.bit_length() - 1):  # one x2 stage per factor of two
            layers += [
                # Sub-pixel convolution (Shi et al. 2016): learned, and free of the
                # checkerboard artefacts a strided transposed conv leaves.
                nn.Conv2d(base, base * 4, 3, padding=1, padding_mode=spec.padding),
                nn.PixelShuffle(2),
                nn.ReLU(),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(base, spec.out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if not self.spec.residual:
            return out
        base = x if self.spec.upscale == 1 else nn.functional.interpolate(
            x, scale_factor=self.spec.upscale, mode="bicubic", align_corners=False)
        return (base + out).clamp(-1.0, 1.0)
