"""Real-ESRGAN's U-Net discriminator with spectral norm, state-dict compatible with BasicSR's
`UNetDiscriminatorSN`.

Wang et al. 2021, "Real-ESRGAN", section 3.3 and figure 6: a U-Net gives one realness logit per
pixel (local detail feedback for the stronger degradations), with spectral normalisation
(Miyato et al. 2018) on the inner convs to keep the bigger discriminator's training stable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.nets.layers import check_positive

_DEPTH = 3  # stride-2 convs down, bilinear x2 + conv up


@dataclass(frozen=True)
class UnetDiscriminatorSpec:
    """U-Net discriminator: 3 downsamplings, 3 upsamplings with skips, 2 extra convs, 1 logit per pixel.

    BasicSR's names: in_channels is `num_in_ch`, base_channels `num_feat`, skip `skip_connection`."""

    kind: Literal["unet_discriminator"] = "unet_discriminator"
    in_channels: int = 3  # judges the output alone, as Real-ESRGAN does
    base_channels: int = 64
    skip: bool = True

    def __post_init__(self) -> None:
        check_positive("in_channels", self.in_channels)
        check_positive("base_channels", self.base_channels)
        if not isinstance(self.skip, bool):
            raise ConfigError(f"skip: must be true or false, got {self.skip!r}")

    @property
    def size_multiple(self) -> int:
        """H and W must divide by this, so each upsampled map meets its skip at the same size."""
        return 2**_DEPTH

    @property
    def fixed_size(self) -> int | None:
        return None

    @property
    def min_size(self) -> int:
        return 2**_DEPTH


def _sn_conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Conv2d:
    # torch.nn.utils.spectral_norm (not the parametrization) keeps BasicSR's weight_orig /
    # weight_u / weight_v names, so Real-ESRGAN's released discriminator weights load as they are.
    return nn.utils.spectral_norm(nn.Conv2d(cin, cout, kernel, stride, 1, bias=False))


class UnetDiscriminator(nn.Module):
    """(N, in_channels, H, W) float, H and W multiples of 8 -> [logits (N, 1, H, W)], no sigmoid.

    conv0 (plain) -> conv1..3 (4x4 stride 2, spectral norm) -> conv4..6 (bilinear x2 then 3x3,
    plus the same-size encoder map when `skip`) -> conv7, conv8 (3x3, spectral norm) -> conv9 (plain).
    """

    def __init__(self, spec: UnetDiscriminatorSpec) -> None:
        super().__init__()
        self.spec = spec
        base = spec.base_channels
        widths = [base * 2**i for i in range(_DEPTH + 1)]  # 1x, 2x, 4x, 8x
        self.conv0 = nn.Conv2d(spec.in_channels, base, 3, 1, 1)
        for i in range(1, _DEPTH + 1):
            setattr(self, f"conv{i}", _sn_conv(widths[i - 1], widths[i], 4, 2))
        for i in range(1, _DEPTH + 1):
            setattr(self, f"conv{_DEPTH + i}", _sn_conv(widths[_DEPTH - i + 1], widths[_DEPTH - i], 3, 1))
        self.conv7 = _sn_conv(base, base, 3, 1)
        self.conv8 = _sn_conv(base, base, 3, 1)
        self.conv9 = nn.Conv2d(base, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        multiple = self.spec.size_multiple
        if x.shape[-1] % multiple or x.shape[-2] % multiple:
            raise ValueError(f"U-Net discriminator: input sides must be multiples of {multiple} px, "
                             f"got {x.shape[-1]}x{x.shape[-2]}")
        skips = [F.leaky_relu(self.conv0(x), 0.2)]
        for i in range(1, _DEPTH + 1):
            skips.append(F.leaky_relu(getattr(self, f"conv{i}")(skips[-1]), 0.2))
        feat = skips.pop()
        for i in range(1, _DEPTH + 1):
            feat = F.interpolate(feat, scale_factor=2, mode="bilinear", align_corners=False)
            feat = F.leaky_relu(getattr(self, f"conv{_DEPTH + i}")(feat), 0.2)
            skip = skips.pop()
            if self.spec.skip:
                feat = feat + skip
        feat = F.leaky_relu(self.conv7(feat), 0.2)
        feat = F.leaky_relu(self.conv8(feat), 0.2)
        return [self.conv9(feat)]
