"""Multiscale discriminator (pix2pixHD): identical PatchGANs on successively halved inputs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from translate.nets.layers import DiscriminatorFacts, Norm, check_positive
from translate.nets.patchgan import PatchGanDiscriminator, PatchGanSpec


@dataclass(frozen=True)
class MultiscaleSpec(DiscriminatorFacts):
    """`n_scales` PatchGANs; scale k sees the input average-pooled k times (pix2pixHD, sec 3.2)."""

    kind: Literal["multiscale"] = "multiscale"
    in_channels: int = 6
    base_channels: int = 64
    n_layers: int = 3
    norm: Norm = "batch"  # same defaults as PatchGanSpec, so a preset only changes n_scales
    spectral_norm: bool = False
    n_scales: int = 3

    def __post_init__(self) -> None:
        self.scale_spec()  # validates the shared PatchGAN fields
        check_positive("n_scales", self.n_scales)

    def scale_spec(self) -> PatchGanSpec:
        """The spec of the PatchGAN used at every scale."""
        return PatchGanSpec(
            in_channels=self.in_channels,
            base_channels=self.base_channels,
            n_layers=self.n_layers,
            norm=self.norm,
            spectral_norm=self.spectral_norm,
        )

    @property
    def min_size(self) -> int:
        """Smallest input H and W that still give a 1x1 output at the coarsest scale."""
        # Each pooling maps n to ceil(n / 2).
        return (self.scale_spec().min_size - 1) * 2 ** (self.n_scales - 1) + 1


class MultiscaleDiscriminator(nn.Module):
    """(N, in_channels, H, W) float -> n_scales logit maps (N, 1, h_k, w_k), finest first."""

    def __init__(self, spec: MultiscaleSpec) -> None:
        super().__init__()
        self.spec = spec
        self.scales = nn.ModuleList(
            PatchGanDiscriminator(spec.scale_spec()) for _ in range(spec.n_scales)
        )
        # Padding pixels are left out of the average so borders are not darkened.
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        logits = []
        for k, disc in enumerate(self.scales):
            if k > 0:
                x = self.downsample(x)
            logits += disc(x)
        return logits
