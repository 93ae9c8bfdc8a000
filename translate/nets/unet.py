"""U-Net generator (pix2pix default), state-dict compatible with the reference pix2pix code."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.nets.chroma import annealed_mean, bin_centres
from translate.nets.fill import pull_push_fill
from translate.nets.layers import (
    NORMS,
    Norm,
    SameSizeTanhSpec,
    check_choice,
    check_dropout,
    check_positive,
    conv_bias,
    norm_layer,
)


@dataclass(frozen=True)
class UnetSpec(SameSizeTanhSpec):
    """U-Net generator: `num_downs` stride-2 levels with skip connections; unet_256 has 8."""

    kind: Literal["unet"] = "unet"
    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 64
    num_downs: int = 8  # any depth >= 1; the reference code always builds at least 5
    norm: Norm = "batch"  # pix2pix default
    # pix2pix trains its U-Net with dropout 0.5 as the only noise source (paper section 3.1), so
    # the spec default follows it. Like the reference, dropout sits only in the middle levels
    # that have 8 * base_channels on both sides; nets with num_downs <= 5 have none.
    dropout: float = 0.5
    # Inpainting: the last input channel marks known pixels (> 0); the holes of the other channels
    # are first filled smoothly from the known pixels (nets/fill.py) and the net adds a correction
    # to that fill, so it starts where a classical fill ends (as SR nets start from bicubic).
    prefill: bool = False
    # Colorization as classification (nets/chroma.py, Zhang et al. 2016): a 1x1 classifier on the
    # last features predicts a distribution over quantised ab, and the net returns its annealed
    # mean (so out_channels stays 2).
    ab_classes: bool = False
    # The annealed mean's temperature: 1 is the distribution's mean (the least squared error),
    # towards 0 its mode (vivid, and wrong more often); the paper shows 0.38.
    ab_temperature: float = 0.38

    def __post_init__(self) -> None:
        check_positive("in_channels", self.in_channels)
        check_positive("out_channels", self.out_channels)
        if self.prefill and self.in_channels != self.out_channels + 1:
            raise ConfigError(f"prefill: needs the image plus a known-pixel channel in (in_channels = "
                             f"out_channels + 1), got {self.in_channels} -> {self.out_channels}")
        if self.ab_classes and (self.in_channels, self.out_channels) != (1, 2):
            raise ConfigError(f"ab_classes: maps L to ab (1 -> 2 channels), got {self.in_channels} -> {self.out_channels}")
        if not self.ab_temperature > 0:
            raise ConfigError(f"ab_temperature: must be > 0, got {self.ab_temperature}")
        check_positive("base_channels", self.base_channels)
        check_positive("num_downs", self.num_downs)
        check_choice("norm", self.norm, NORMS)
        check_dropout(self.dropout)

    @property
    def size_multiple(self) -> int:
        return 2**self.num_downs  # every level halves H and W; inference pads up to this

    @property
    def classifies_ab(self) -> bool:
        return self.ab_classes


def level_channels(base_channels: int, level: int) -> int:
    """Channels produced by the down conv of `level` (0 = outermost): doubling, capped at 8x."""
    return base_channels * min(2**level, 8)


class UnetSkipBlock(nn.Module):
    """One U-Net level: down conv, the deeper levels, up conv; all but the outermost add a skip.

    `model` is an nn.Sequential laid out as in the reference `UnetSkipConnectionBlock`, so the
    parameter names (`model.model.1.model.3...`) match released weights.
    """

    def __init__(
        self,
        *,
        outer_channels: int,
        inner_channels: int,
        in_channels: int,
        submodule: UnetSkipBlock | None,
        outermost: bool,
        norm: Norm,
        dropout: float,
        features: bool = False,  # outermost: end in ReLU features for a classifier, not tanh pixels
    ) -> None:
        super().__init__()
        self.outermost = outermost
        innermost = submodule is None
        bias = conv_bias(norm)
        layers: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(in_channels, inner_channels, 4, stride=2, padding=1, bias=bias))
        if not (outermost or innermost):
            layers.append(norm_layer(norm, inner_channels))
        if submodule is not None:
            layers.append(submodule)
        # Deeper levels return their input concatenated with their output: twice the channels.
        up_in = inner_channels if innermost else 2 * inner_channels
        layers += [
            nn.ReLU(),
            # The outermost up conv feeds tanh, not a norm, so it always keeps its bias.
            nn.ConvTranspose2d(
                up_in, outer_channels, 4, stride=2, padding=1, bias=bias or outermost
            ),
            (nn.ReLU() if features else nn.Tanh()) if outermost else norm_layer(norm, outer_channels),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # Skip first, then the processed path: the channel order released weights expect. (The
        # reference's in-place leaky ReLU also rewrites x, but the skip only ever feeds a ReLU,
        # and relu(lrelu(x)) == relu(x), so plain x gives the same output.)
        return torch.cat([x, self.model(x)], dim=1)


class UnetGenerator(nn.Module):
    """U-Net generator. (N, in_channels, H, W) float -> (N, out_channels, H, W) in [-1, 1].

    H and W must be multiples of `spec.size_multiple`.
    """

    def __init__(self, spec: UnetSpec) -> None:
        super().__init__()
        self.spec = spec
        # Not saved with the weights: they follow from the gamut (nets/chroma.py).
        self.register_buffer("centres", bin_centres() if spec.ab_classes else torch.zeros(0, 2), persistent=False)
        block: UnetSkipBlock | None = None
        # Build from the innermost level outwards; each block wraps the previous one.
        base = spec.base_channels
        # ab_classes: the outermost level gives base_channels features to the 1x1 classifier below
        out_channels = base if spec.ab_classes else spec.out_channels
        for level in reversed(range(spec.num_downs)):
            outermost = level == 0
            inner = level_channels(base, level)
            outer = out_channels if outermost else level_channels(base, level - 1)
            middle = block is not None and level >= 4  # 8x channels on both sides, not innermost
            block = UnetSkipBlock(
                outer_channels=outer,
                inner_channels=inner,
                in_channels=spec.in_channels if outermost else outer,
                submodule=block,
                outermost=outermost,
                norm=spec.norm,
                dropout=spec.dropout if middle else 0.0,
                features=outermost and spec.ab_classes,
            )
        self.model = block
        # Logits over the ab bins from the last features, as Zhang et al.'s 1x1 conv to Q classes,
        # at half resolution (they predict at a quarter): chroma varies slowly, and every Q-channel
        # map (logits, softmax, their gradients) costs a quarter of what it would at full size.
        self.classifier = nn.Conv2d(base, len(self.centres), 1) if spec.ab_classes else None

    def forward(self, x: torch.Tensor, with_logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The image; with_logits (ab_classes nets): (ab, the per-bin logits the loss needs, at half size)."""
        if self.spec.ab_classes:
            logits = self.classifier(F.avg_pool2d(self.model(x), 2))
            ab = annealed_mean(logits, self.centres, self.spec.ab_temperature)
            ab = F.interpolate(ab, size=x.shape[-2:], mode="bilinear", align_corners=False)
            return (ab, logits) if with_logits else ab
        if not self.spec.prefill:
            return self.model(x)
        image, known = x[:, :-1], x[:, -1:]
        fill = pull_push_fill(image, (known > 0).to(x.dtype))
        return (fill + self.model(torch.cat([fill, known], dim=1))).clamp(-1.0, 1.0)
