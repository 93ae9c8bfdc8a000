"""The VGG-style discriminator of SRGAN and ESRGAN, state-dict compatible with BasicSR's
`VGGStyleDiscriminator`.

Ledig et al. 2017 (SRGAN), figure 4: strided conv blocks with batch norm and leaky ReLU, then two
dense layers giving one real/fake logit per image. ESRGAN (Wang et al. 2018) trains with BasicSR's
version: 3x3 stride-1 and 4x4 stride-2 convs per stage, channels doubling to 8x, a 100-unit dense
layer. Its dense layers fix the input size: 128 px (five stages) or 256 px (six).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.nets.layers import check_positive

VGG_STYLE_SIZES = (128, 256)
_FINAL_SIDE = 4  # every stage halves the image; the dense layers see 4x4 features


@dataclass(frozen=True)
class VggStyleSpec:
    """VGG-style discriminator for exactly `input_size` x `input_size` images (128 or 256).

    BasicSR's names: in_channels is `num_in_ch`, base_channels `num_feat`."""

    kind: Literal["vgg_style"] = "vgg_style"
    in_channels: int = 3  # judges the output alone (SRGAN and ESRGAN are not conditional)
    base_channels: int = 64
    input_size: int = 128

    def __post_init__(self) -> None:
        check_positive("in_channels", self.in_channels)
        check_positive("base_channels", self.base_channels)
        if self.input_size not in VGG_STYLE_SIZES:
            raise ConfigError(f"input_size: must be one of {VGG_STYLE_SIZES}, got {self.input_size!r}")

    @property
    def min_size(self) -> int:
        return self.input_size

    @property
    def size_multiple(self) -> int:
        return 1

    @property
    def fixed_size(self) -> int:
        """The only input size the dense layers accept."""
        return self.input_size

    @property
    def n_stages(self) -> int:
        return (self.input_size // _FINAL_SIDE).bit_length() - 1  # 128 -> 5, 256 -> 6


def _stage_channels(base: int, stage: int) -> int:
    return base * min(2**stage, 8)


class VggStyleDiscriminator(nn.Module):
    """(N, in_channels, S, S) float, S = spec.input_size -> [logits (N, 1, 1, 1)], no sigmoid.

    Stage k holds `convK_0` (3x3, stride 1) + `bnK_0` and `convK_1` (4x4, stride 2) + `bnK_1`;
    stage 0 has no `bn0_0` and its first conv keeps its bias. Then `linear1` (to 100) and `linear2`.
    """

    def __init__(self, spec: VggStyleSpec) -> None:
        super().__init__()
        self.spec = spec
        base, channels = spec.base_channels, spec.in_channels
        for stage in range(spec.n_stages):
            out = _stage_channels(base, stage)
            setattr(self, f"conv{stage}_0", nn.Conv2d(channels, out, 3, 1, 1, bias=stage == 0))
            if stage > 0:
                setattr(self, f"bn{stage}_0", nn.BatchNorm2d(out))
            setattr(self, f"conv{stage}_1", nn.Conv2d(out, out, 4, 2, 1, bias=False))
            setattr(self, f"bn{stage}_1", nn.BatchNorm2d(out))
            channels = out
        self.linear1 = nn.Linear(channels * _FINAL_SIDE * _FINAL_SIDE, 100)
        self.linear2 = nn.Linear(100, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        size = self.spec.input_size
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(f"VGG-style discriminator: input must be {size}x{size} px, "
                             f"got {x.shape[-1]}x{x.shape[-2]}")
        feat = x
        for stage in range(self.spec.n_stages):
            feat = getattr(self, f"conv{stage}_0")(feat)
            if stage > 0:
                feat = getattr(self, f"bn{stage}_0")(feat)
            feat = F.leaky_relu(feat, 0.2)
            feat = F.leaky_relu(getattr(self, f"bn{stage}_1")(getattr(self, f"conv{stage}_1")(feat)), 0.2)
        logits = self.linear2(F.leaky_relu(self.linear1(feat.flatten(1)), 0.2))
        return [logits.view(-1, 1, 1, 1)]
