"""PatchGAN / PixelGAN discriminator (pix2pix), laid out like the reference NLayerDiscriminator."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from translate.errors import ConfigError
from translate.nets.antialias import BlurDownsample
from translate.nets.layers import NORMS, DiscriminatorFacts, Norm, check_choice, check_positive, conv_bias, norm_layer


@dataclass(frozen=True)
class PatchGanSpec(DiscriminatorFacts):
    """PatchGAN: classifies overlapping patches; n_layers=3 sees 70x70, n_layers=0 is PixelGAN."""

    kind: Literal["patchgan"] = "patchgan"
    in_channels: int = 6  # pix2pix is conditional: it judges input and output stacked (3 + 3)
    base_channels: int = 64
    n_layers: int = 3
    norm: Norm = "batch"  # pix2pix default
    spectral_norm: bool = False  # Miyato et al. 2018; usually paired with norm="none"
    # CUT's default: each stride-2 conv becomes a stride-1 conv, its activation, then a fixed
    # blur-and-subsample (Zhang 2019), as in CUT's NLayerDiscriminator.
    antialias: bool = False

    def __post_init__(self) -> None:
        check_positive("in_channels", self.in_channels)
        check_positive("base_channels", self.base_channels)
        check_positive("n_layers", self.n_layers, minimum=0)
        check_choice("norm", self.norm, NORMS)
        if not isinstance(self.spectral_norm, bool):
            raise ConfigError(f"spectral_norm: must be true or false, got {self.spectral_norm!r}")
        if not isinstance(self.antialias, bool):
            raise ConfigError(f"antialias: must be true or false, got {self.antialias!r}")
        if self.antialias and self.n_layers == 0:
            raise ConfigError("antialias: PixelGAN (n_layers=0) has no downsampling to anti-alias")

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input patch that one output logit sees."""
        if self.n_layers == 0:
            return 1
        field = 7  # the two stride-1 4x4 convs at the end
        for _ in range(self.n_layers):
            if self.antialias:  # back through a stride-2 3x3 blur, then a stride-1 4x4 conv
                field = 2 * (field - 1) + 3 + 3
            else:  # back through one stride-2 4x4 conv
                field = 2 * (field - 1) + 4
        return field

    @property
    def min_size(self) -> int:
        """Smallest input H and W that still give a 1x1 output."""
        if self.n_layers == 0:
            return 1
        if not self.antialias:
            # Each stride-2 conv floors H/2; the two stride-1 convs then need 3 pixels.
            return 3 * 2**self.n_layers
        # A 4x4 stride-1 conv takes n to n - 1; the blur takes n >= 2 (reflection needs 2) to
        # ceil(n / 2). Walk back from the 3 pixels the two final convs need.
        size = 3
        for _ in range(self.n_layers):
            size = max(2 * size - 1, 2) + 1
        return size


def patch_conv(
    spec: PatchGanSpec, cin: int, cout: int, *, kernel: int, stride: int, bias: bool
) -> nn.Module:
    """A conv padded as in the reference, spectrally normalised when the spec asks."""
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, bias=bias)
    return apply_spectral_norm(conv) if spec.spectral_norm else conv


class PatchGanDiscriminator(nn.Module):
    """PatchGAN discriminator. (N, in_channels, H, W) float -> [logits (N, 1, h, w)], no sigmoid.

    Returns a one-element list so every discriminator has the multiscale signature.
    """

    def __init__(self, spec: PatchGanSpec) -> None:
        super().__init__()
        self.spec = spec
        base, norm, bias = spec.base_channels, spec.norm, conv_bias(spec.norm)
        if spec.n_layers == 0:
            # PixelGAN (pix2pix paper, section 4.4): 1x1 convs judge every pixel on its own.
            # Unlike the reference the last conv keeps its bias: it makes logits, not norm input.
            layers: list[nn.Module] = [
                patch_conv(spec, spec.in_channels, base, kernel=1, stride=1, bias=True),
                nn.LeakyReLU(0.2),
                patch_conv(spec, base, base * 2, kernel=1, stride=1, bias=bias),
                norm_layer(norm, base * 2),
                nn.LeakyReLU(0.2),
                patch_conv(spec, base * 2, 1, kernel=1, stride=1, bias=True),
            ]
        else:
            stride = 1 if spec.antialias else 2

            def blur(channels: int) -> list[nn.Module]:
                return [BlurDownsample(channels)] if spec.antialias else []

            # First conv has no norm, so it keeps its bias.
            layers = [
                patch_conv(spec, spec.in_channels, base, kernel=4, stride=stride, bias=True),
                nn.LeakyReLU(0.2),
                *blur(base),
            ]
            channels = base
            for layer in range(1, spec.n_layers + 1):
                out = base * min(2**layer, 8)
                last = layer == spec.n_layers  # the last one keeps the resolution
                layers += [
                    patch_conv(spec, channels, out, kernel=4, stride=1 if last else stride,
                               bias=bias),
                    norm_layer(norm, out),
                    nn.LeakyReLU(0.2),
                    *([] if last else blur(out)),
                ]
                channels = out
            layers.append(patch_conv(spec, channels, 1, kernel=4, stride=1, bias=True))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.model(x)]
