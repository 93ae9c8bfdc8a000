"""Fixed-filter anti-aliased resampling (Zhang 2019, "Making convolutional networks shift-invariant
again") as CUT uses it; the filter is a buffer named `filt`, as in CUT's released weights."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def binomial_filter(taps: int) -> torch.Tensor:
    """(taps, taps) outer product of the binomial row (1 2 1 for 3 taps, 1 3 3 1 for 4), sum 1."""
    row = torch.tensor([float(math.comb(taps - 1, k)) for k in range(taps)])
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class BlurDownsample(nn.Module):
    """Halve H and W: reflect-pad 1, depthwise [1,2,1]x[1,2,1]/16 blur with stride 2.

    (N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2)); output (i, j) is centred on input (2i, 2j).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("filt", binomial_filter(3).expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, [1, 1, 1, 1], mode="reflect")
        return F.conv2d(padded, self.filt, stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Double H and W: replicate-pad 1, depthwise transposed [1,3,3,1]x[1,3,3,1]/16 filter.

    (N, C, H, W) -> (N, C, 2H, 2W); input (i, j) spreads over outputs 2i-1 .. 2i+2 with weights
    [1, 3, 3, 1] / 4 per axis, so a constant image stays constant.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        # x stride**2: a stride-2 transposed conv spreads each input over 4 times the pixels.
        self.register_buffer("filt", (binomial_filter(4) * 4).expand(channels, 1, 4, 4).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, [1, 1, 1, 1], mode="replicate")
        out = F.conv_transpose2d(padded, self.filt, stride=2, padding=2,
                                 groups=x.shape[1])
        # The padded row/column on each side leaves one extra output pixel at each border.
        return out[:, :, 1:-1, 1:-1]
