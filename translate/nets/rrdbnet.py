"""RRDBNet (ESRGAN, Real-ESRGAN), state-dict compatible with BasicSR's `RRDBNet`.

Wang et al. 2018, "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks", section 3.1.
Real-ESRGAN (Wang et al. 2021) runs the same trunk at x2 and x1 by pixel-unshuffling the input
first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.nets.layers import PublishedSRSpec, check_positive

RRDBNET_UPSCALES = (1, 2, 4)
# Residual scaling of ESRGAN section 3.1: each dense block and each RRDB adds 0.2 x its residual.
RESIDUAL_SCALE = 0.2
_UNSHUFFLE = {4: 1, 2: 2, 1: 4}  # upscale -> pixel-unshuffle factor before the x4 trunk


@dataclass(frozen=True)
class RrdbnetSpec(PublishedSRSpec):
    """RRDBNet: `n_blocks` residual-in-residual dense blocks, then two nearest x2 upsamplings.

    BasicSR's names: base_channels is `num_feat`, n_blocks `num_block`, grow_channels
    `num_grow_ch`, upscale `scale`. The trunk always upsamples x4; upscale 2 and 1 first fold the
    input into 4 or 16 times the channels with a pixel-unshuffle (Real-ESRGAN x2plus).
    """

    kind: Literal["rrdbnet"] = "rrdbnet"
    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 64
    n_blocks: int = 23  # ESRGAN; the anime model of Real-ESRGAN uses 6
    grow_channels: int = 32
    upscale: int = 4

    def __post_init__(self) -> None:
        check_positive("in_channels", self.in_channels)
        check_positive("out_channels", self.out_channels)
        check_positive("base_channels", self.base_channels)
        check_positive("n_blocks", self.n_blocks, minimum=0)
        check_positive("grow_channels", self.grow_channels)
        if self.upscale not in RRDBNET_UPSCALES:
            raise ConfigError(f"upscale: must be one of {RRDBNET_UPSCALES}, got {self.upscale!r}")

    @property
    def unshuffle(self) -> int:
        return _UNSHUFFLE[self.upscale]

    @property
    def size_multiple(self) -> int:
        return self.unshuffle  # the pixel-unshuffle needs H and W divisible by its factor


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs: x + 0.2 * conv5(cat(x, x1, ..., x4)) (ESRGAN fig. 4)."""

    def __init__(self, channels: int, grow_channels: int) -> None:
        super().__init__()
        for j in range(1, 6):
            out = channels if j == 5 else grow_channels
            conv = nn.Conv2d(channels + (j - 1) * grow_channels, out, 3, padding=1)
            setattr(self, f"conv{j}", conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for j in range(1, 5):
            conv = getattr(self, f"conv{j}")
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2))
        return x + RESIDUAL_SCALE * self.conv5(torch.cat(features, 1))


class RRDB(nn.Module):
    """Residual in residual dense block: x + 0.2 * rdb3(rdb2(rdb1(x)))."""

    def __init__(self, channels: int, grow_channels: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(channels, grow_channels)
        self.rdb2 = ResidualDenseBlock(channels, grow_channels)
        self.rdb3 = ResidualDenseBlock(channels, grow_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + RESIDUAL_SCALE * self.rdb3(self.rdb2(self.rdb1(x)))


class RrdbnetGenerator(nn.Module):
    """RRDBNet. (N, in_channels, H, W) RGB in [0, 1] -> (N, out_channels, s*H, s*W), unbounded.

    s is `spec.upscale`; H and W must be multiples of `spec.size_multiple`. Clamp to [0, 1] for
    images, as the published inference code does.
    """

    def __init__(self, spec: RrdbnetSpec) -> None:
        super().__init__()
        self.spec = spec
        feat = spec.base_channels
        self.conv_first = nn.Conv2d(spec.in_channels * spec.unshuffle**2, feat, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(feat, spec.grow_channels) for _ in range(spec.n_blocks)))
        self.conv_body = nn.Conv2d(feat, feat, 3, padding=1)
        self.conv_up1 = nn.Conv2d(feat, feat, 3, padding=1)
        self.conv_up2 = nn.Conv2d(feat, feat, 3, padding=1)
        self.conv_hr = nn.Conv2d(feat, feat, 3, padding=1)
        self.conv_last = nn.Conv2d(feat, spec.out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.spec.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))  # long skip over the whole trunk
        for conv in (self.conv_up1, self.conv_up2):
            # Nearest x2 then a conv: upsampling without pixel-shuffle checkerboards.
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))
