"""SRResNet (SRGAN's generator), and BasicSR's modified version `MSRResNet` with its names.

Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
Network", figure 4: a 9x9 conv, residual blocks (conv, BN, PReLU, conv, BN), conv + BN with a long
skip, pixel-shuffle stages with PReLU, a 9x9 conv. No published code came with the paper, so the
"srgan" variant borrows BasicSR's names where the layers match. The "msrresnet" variant is BasicSR's
`MSRResNet` exactly (no BN, ReLU blocks, leaky ReLU 0.1, bilinear input added), so its released
weights load.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.nets.layers import PublishedSRSpec, check_choice, check_positive

Variant = Literal["srgan", "msrresnet"]
VARIANTS: tuple[str, ...] = get_args(Variant)
SRRESNET_UPSCALES = (2, 3, 4)


@dataclass(frozen=True)
class SrresnetSpec(PublishedSRSpec):
    """SRResNet: `n_blocks` residual blocks at input resolution, then pixel-shuffle to `upscale`.

    BasicSR's names: base_channels is `num_feat`, n_blocks `num_block`. x4 uses two x2 shuffle
    stages (`upconv1`, `upconv2`); x2 and x3 one stage. The "msrresnet" variant adds its
    bilinearly upsampled input to the output, so it needs in_channels == out_channels.
    """

    kind: Literal["srresnet"] = "srresnet"
    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 64
    n_blocks: int = 16
    upscale: int = 4
    variant: Variant = "srgan"

    def __post_init__(self) -> None:
        check_positive("in_channels", self.in_channels)
        check_positive("out_channels", self.out_channels)
        check_positive("base_channels", self.base_channels)
        check_positive("n_blocks", self.n_blocks, minimum=0)
        check_choice("variant", self.variant, VARIANTS)
        if self.upscale not in SRRESNET_UPSCALES:
            raise ConfigError(f"upscale: must be one of {SRRESNET_UPSCALES}, got {self.upscale!r}")
        if self.variant == "msrresnet" and self.in_channels != self.out_channels:
            raise ConfigError(
                f"in_channels: must equal out_channels ({self.out_channels}) for variant "
                f"msrresnet, which adds its upsampled input to the output; got {self.in_channels}"
            )

    @property
    def stages(self) -> list[int]:
        return [2, 2] if self.upscale == 4 else [self.upscale]  # pixel-shuffle factor per stage


class SrresnetBlock(nn.Module):
    """x + conv2(act(conv1(x))); "srgan" puts BN after each conv and uses PReLU, else ReLU."""

    def __init__(self, channels: int, *, batch_norm: bool) -> None:
        super().__init__()
        # Attribute order is state-dict order: conv1, bn1, prelu, conv2, bn2.
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(channels) if batch_norm else None
        self.prelu = nn.PReLU() if batch_norm else None
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(channels) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn1 is None:
            return x + self.conv2(F.relu(self.conv1(x)))
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class SrresnetGenerator(nn.Module):
    """SRResNet. (N, in_channels, H, W) RGB in [0, 1] -> (N, out_channels, s*H, s*W), unbounded.

    s is `spec.upscale`. Clamp to [0, 1] for images.
    """

    def __init__(self, spec: SrresnetSpec) -> None:
        super().__init__()
        self.spec = spec
        feat, srgan = spec.base_channels, spec.variant == "srgan"
        edge = 9 if srgan else 3  # the paper's 9x9 first and last convs
        self.conv_first = nn.Conv2d(spec.in_channels, feat, edge, padding=edge // 2)
        self.prelu_first = nn.PReLU() if srgan else None
        self.body = nn.Sequential(
            *(SrresnetBlock(feat, batch_norm=srgan) for _ in range(spec.n_blocks))
        )
        if srgan:  # conv + BN closing the long skip over the blocks
            self.conv_body = nn.Conv2d(feat, feat, 3, padding=1, bias=False)
            self.bn_body = nn.BatchNorm2d(feat)
        for i, factor in enumerate(spec.stages, start=1):
            # Sub-pixel convolution (Shi et al. 2016): conv to factor**2 x channels, then shuffle.
            setattr(self, f"upconv{i}", nn.Conv2d(feat, feat * factor**2, 3, padding=1))
            if srgan:
                setattr(self, f"prelu_up{i}", nn.PReLU())
        self.pixel_shuffles = nn.ModuleList(nn.PixelShuffle(f) for f in spec.stages)
        if not srgan:
            self.conv_hr = nn.Conv2d(feat, feat, 3, padding=1)
        self.conv_last = nn.Conv2d(feat, spec.out_channels, edge, padding=edge // 2)

    def _act(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """The PReLU called `name` for "srgan", BasicSR's leaky ReLU (slope 0.1) otherwise."""
        return getattr(self, name)(x) if self.spec.variant == "srgan" else F.leaky_relu(x, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self._act("prelu_first", self.conv_first(x))
        out = self.body(feat)
        if self.spec.variant == "srgan":
            out = feat + self.bn_body(self.conv_body(out))
        for i, shuffle in enumerate(self.pixel_shuffles, start=1):
            out = self._act(f"prelu_up{i}", shuffle(getattr(self, f"upconv{i}")(out)))
        if self.spec.variant == "srgan":
            return self.conv_last(out)
        out = self.conv_last(F.leaky_relu(self.conv_hr(out), 0.1))
        scale = self.spec.upscale
        return out + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
