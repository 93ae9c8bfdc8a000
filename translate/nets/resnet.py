"""ResNet generator (CycleGAN default), state-dict compatible with the reference CycleGAN code."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from translate.errors import ConfigError
from translate.nets.antialias import BlurDownsample, BlurUpsample
from translate.nets.layers import (
    NORMS,
    GeneratorFacts,
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
class ResnetSpec(GeneratorFacts):
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
    # CUT's default (Park et al. 2020): each stride-2 conv becomes a stride-1 conv followed by a
    # fixed blur-and-subsample, each transposed conv a fixed blur-upsample followed by a conv.
    antialias: bool = False

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
            raise ConfigError(f"upscale: must be one of {UPSCALES}, got {self.upscale!r}")
        if self.residual and self.in_channels != self.out_channels:
            raise ConfigError(f"residual: needs in_channels == out_channels, got {self.in_channels} -> {self.out_channels}")
        if not isinstance(self.antialias, bool):
            raise ConfigError(f"antialias: must be true or false, got {self.antialias!r}")

    @property
    def size_multiple(self) -> int:
        return 2**self.downsampling  # inference pads inputs up to this

    @property
    def value_range(self) -> ValueRange:
        return "minus_one_one"  # ends in tanh

    @property
    def scale(self) -> int:
        return self.upscale

    @property
    def classifies_ab(self) -> bool:
        return False

    @property
    def taps(self) -> tuple[str, ...]:
        """Names of the encoder features `ResnetGenerator.encode` can return, shallow first.

        "input" is the input after the first conv's 3-pixel reflection padding, "down<k>" the
        output of the k-th downsampling conv (before its norm), "block<k>" that of residual
        block k. CUT's nce_layers 0,4,8,12,16 on its anti-aliased layout are
        ("input", "down1", "down2", "block1", "block5").
        """
        downs = tuple(f"down{k}" for k in range(1, self.downsampling + 1))
        return ("input", *downs, *(f"block{k}" for k in range(1, self.n_blocks + 1)))

    def tap_channels(self, name: str) -> int:
        """Channel count of the encoder feature `name` (one of `taps`)."""
        if name not in self.taps:
            raise ValueError(f"tap: unknown {name!r}; choose one of {', '.join(self.taps)}")
        if name == "input":
            return self.in_channels
        if name.startswith("down"):
            return self.base_channels * 2 ** int(name.removeprefix("down"))
        return self.base_channels * 2**self.downsampling


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


def down_stage(cin: int, cout: int, *, norm: Norm, antialias: bool) -> list[nn.Module]:
    """Halve H and W: conv, norm, ReLU; the conv is stride 2 or, anti-aliased, stride 1 + blur."""
    bias = conv_bias(norm)
    if not antialias:
        conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=bias)
        return [conv, norm_layer(norm, cout), nn.ReLU()]
    conv = nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=bias)
    return [conv, norm_layer(norm, cout), nn.ReLU(), BlurDownsample(cout)]


def up_stage(cin: int, cout: int, *, norm: Norm, antialias: bool) -> list[nn.Module]:
    """Double H and W: transposed conv or, anti-aliased, blur-upsample + conv; then norm, ReLU."""
    bias = conv_bias(norm)
    if not antialias:
        conv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=bias)
        return [conv, norm_layer(norm, cout), nn.ReLU()]
    conv = nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=bias)
    return [BlurUpsample(cin), conv, norm_layer(norm, cout), nn.ReLU()]


class ResnetGenerator(nn.Module):
    """ResNet generator. (N, in_channels, H, W) float -> (N, out_channels, s*H, s*W) in [-1, 1].

    s is `spec.upscale`; H and W must be multiples of 4 for the output to have exactly that size.
    `encode` returns named encoder features (`spec.taps`) from the same modules.
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
        tap_index = {"input": 0}  # name -> index in `model` of the layer whose output it is
        for k in range(1, spec.downsampling + 1):
            tap_index[f"down{k}"] = len(layers)
            width = base * 2 ** (k - 1)
            layers += down_stage(width, width * 2, norm=norm, antialias=spec.antialias)
        width = base * 2**spec.downsampling
        for k in range(1, spec.n_blocks + 1):
            tap_index[f"block{k}"] = len(layers)
            layers.append(ResnetBlock(width, norm=norm, dropout=spec.dropout, padding=spec.padding))
        for _ in range(spec.downsampling):
            layers += up_stage(width, width // 2, norm=norm, antialias=spec.antialias)
            width //= 2
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
        self.tap_index = tap_index

    def forward(
        self, x: torch.Tensor, taps: Sequence[str] | None = None, *, with_image: bool = False
    ) -> torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The translated image; with `taps` only those encoder features (see `encode`); with
        `taps` and `with_image` both, from one pass: (image, features).

        Taps go through `forward` so a DistributedDataParallel wrapper, which hooks only
        forward, also averages the gradients they carry.
        """
        if taps is None:
            return self._finish(x, self.model(x))
        features, h = self._walk(x, taps, to_end=with_image)
        return (self._finish(x, h), features) if with_image else features

    def _finish(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The last layer's output `out` as the image: plus the (upscaled) input when residual."""
        if not self.spec.residual:
            return out
        base = x if self.spec.upscale == 1 else nn.functional.interpolate(
            x, scale_factor=self.spec.upscale, mode="bicubic", align_corners=False)
        return (base + out).clamp(-1.0, 1.0)

    def encode(self, x: torch.Tensor, taps: Sequence[str]) -> list[torch.Tensor]:
        """The encoder features named `taps` (see `ResnetSpec.taps`), in that order.

        Runs the layers of `model` only up to the deepest tap; each feature is (N, C, h, w)
        with C = `spec.tap_channels(name)`.
        """
        return self._walk(x, taps, to_end=False)[0]

    def _walk(self, x: torch.Tensor, taps: Sequence[str], *, to_end: bool
              ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Run `model` up to the deepest tap (or to its end), keeping the tapped outputs."""
        for name in taps:
            self.spec.tap_channels(name)  # validates the name
        wanted = {self.tap_index[name] for name in taps}
        stop = len(self.model) if to_end else max(wanted, default=-1) + 1
        found: dict[int, torch.Tensor] = {}
        h = x
        for index, layer in enumerate(self.model[:stop]):
            h = layer(h)
            if index in wanted:
                found[index] = h
        return [found[self.tap_index[name]] for name in taps], h
