"""Whole-image normalisation statistics for tiled inference.

Instance norm (and batch norm run on batch statistics, the pix2pix paper's test mode) normalise
each feature map with its own mean and variance. Run tile by tile, every tile would get its own
statistics and its own colour cast, and the seams would show. So a first pass over the whole
image (downscaled when huge) records every such layer's per-channel mean and variance, and the
tiled pass normalises each tile with those frozen statistics.

`install_stat_norms` swaps the affected layers for subclasses that consult a per-thread
`NormStatsContext`, so several threads can share one net: each call records into or applies
its own statistics. Outside a context the layers behave exactly like the ones they replace.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# layer index -> (mean, var), each (N, C) float32; N is 1 when one image's stats serve all tiles.
NormStats = dict[int, tuple[torch.Tensor, torch.Tensor]]


@dataclass
class _State:
    recording: bool  # True: measure and use the input's stats; False: use `stats`
    stats: NormStats = field(default_factory=dict)
    accumulator: StatsAccumulator | None = None  # also sum up the inputs' stats


class StatsAccumulator:
    """Per-layer statistics of the full-resolution image, summed up tile by tile.

    Each tile contributes only the part of the image it owns (`region`, set before running it,
    as fractions of the tile: top, bottom, left, right), so every pixel counts once whatever
    the resolution of a layer. Tile moments are merged with Chan et al.'s pairwise formula.
    """

    def __init__(self) -> None:
        self.region = (0.0, 1.0, 0.0, 1.0)
        self._moments: dict[int, tuple[float, torch.Tensor, torch.Tensor]] = {}  # count, mean, M2

    def add(self, index: int, x: torch.Tensor) -> None:
        height, width = x.shape[-2:]
        top, bottom, left, right = self.region
        part = x[:, :, round(top * height) : round(bottom * height), round(left * width) : round(right * width)]
        count = part.shape[0] * part.shape[2] * part.shape[3]
        if count == 0:
            return
        var, mean = torch.var_mean(part.float(), dim=(0, 2, 3), unbiased=False)
        mean, m2 = mean.double().cpu(), var.double().cpu() * count
        if index not in self._moments:
            self._moments[index] = (count, mean, m2)
            return
        n_a, mean_a, m2_a = self._moments[index]
        total = n_a + count
        delta = mean - mean_a
        self._moments[index] = (total, mean_a + delta * (count / total), m2_a + m2 + delta**2 * (n_a * count / total))

    def stats(self, device: torch.device | str = "cpu") -> NormStats:
        return {
            index: ((mean[None]).float().to(device), (m2[None] / count).float().to(device))
            for index, (count, mean, m2) in self._moments.items()
        }


class NormStatsContext:
    """Per-thread switch shared by the stats-aware norm layers of one net."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def state(self) -> _State | None:
        return getattr(self._local, "state", None)

    @contextmanager
    def _use(self, state: _State) -> Iterator[NormStats]:
        previous = self.state
        self._local.state = state
        try:
            yield state.stats
        finally:
            self._local.state = previous

    def recording(self) -> AbstractContextManager[NormStats]:
        """`with ctx.recording() as stats:` run the net once; `stats` then holds every layer's."""
        return self._use(_State(recording=True))

    def frozen(self, stats: NormStats, accumulator: StatsAccumulator | None = None,
               ) -> AbstractContextManager[NormStats]:
        """`with ctx.frozen(stats):` norm layers use `stats` instead of their input's statistics
        (and, given an `accumulator`, add their inputs' statistics to it)."""
        return self._use(_State(recording=False, stats=stats, accumulator=accumulator))


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and biased variance of (N, C, H, W), in float32."""
    x = x.float()
    var, mean = torch.var_mean(x, dim=(2, 3), unbiased=False)
    return mean, var


def _normalise(
    x: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    eps: float,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    scale = torch.rsqrt(var + eps)  # (N or 1, C)
    shift = -mean * scale
    if weight is not None:
        scale = scale * weight.float()
        shift = shift * weight.float() + bias.float()
    y = x.float() * scale[:, :, None, None] + shift[:, :, None, None]
    return y.to(x.dtype)


class _StatsMixin:
    """Record or apply frozen statistics when the shared context says so."""

    stats_index: int
    stats_context: NormStatsContext

    def _stats_forward(self, x: torch.Tensor, state: _State, weight, bias) -> torch.Tensor:
        if state.recording:
            mean, var = _moments(x)
            state.stats[self.stats_index] = (mean, var)
        else:
            try:
                mean, var = state.stats[self.stats_index]
            except KeyError:
                raise RuntimeError(f"frozen norm stats lack layer {self.stats_index}; record them on the same net") from None
            if state.accumulator is not None:
                state.accumulator.add(self.stats_index, x)
        return _normalise(x, mean, var, self.eps, weight, bias)


class StatsInstanceNorm(_StatsMixin, nn.InstanceNorm2d):
    """nn.InstanceNorm2d that can record or apply whole-image statistics (same state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.stats_context.state
        if state is None:
            return super().forward(x)
        return self._stats_forward(x, state, self.weight, self.bias)


class PerImageBatchNorm(_StatsMixin, nn.BatchNorm2d):
    """nn.BatchNorm2d on the statistics of each image, as the pix2pix paper tests (batch size 1).

    Per image rather than per batch, so results do not depend on how images are batched; the
    running averages are never read or updated, so the loaded weights stay untouched.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.stats_context.state
        if state is None:
            mean, var = _moments(x)
            return _normalise(x, mean, var, self.eps, self.weight, self.bias)
        return self._stats_forward(x, state, self.weight, self.bias)


def install_stat_norms(net: nn.Module, *, batch_stats: bool) -> NormStatsContext | None:
    """Swap, in place, the layers whose output depends on their input's statistics for
    stats-aware ones: every InstanceNorm2d, and every BatchNorm2d when `batch_stats` (paper test
    mode). Call it before moving the net to its device. Returns the context steering them, or
    None when the net has no such layer (batch norm on running averages, or no norm), which
    then needs no whole-image pass.
    """
    context = NormStatsContext()
    index = 0
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.InstanceNorm2d:
                new: nn.Module = StatsInstanceNorm(
                    child.num_features, eps=child.eps, affine=child.affine,
                    track_running_stats=child.track_running_stats,
                )
            elif batch_stats and type(child) is nn.BatchNorm2d:
                new = PerImageBatchNorm(child.num_features, eps=child.eps, affine=child.affine)
            else:
                continue
            new.load_state_dict(child.state_dict())
            new.train(child.training)
            new.stats_index = index
            new.stats_context = context
            index += 1
            setattr(parent, name, new)
    return context if index else None


def downscaled_size(height: int, width: int, *, max_pixels: float, multiple: int) -> tuple[int, int]:
    """Size at most `max_pixels` in area (aspect kept, multiples of `multiple`) for the stats pass."""
    if height * width <= max_pixels:
        return height, width
    factor = (max_pixels / (height * width)) ** 0.5
    return (max(multiple, int(height * factor) // multiple * multiple),
            max(multiple, int(width * factor) // multiple * multiple))


def record_stats(
    forward: Callable[[torch.Tensor], Any], context: NormStatsContext, x: torch.Tensor, *,
    max_pixels: float, multiple: int,
) -> NormStats:
    """Run `forward` (the net with its device and precision settings) once on (1, C, H, W) `x`
    (H, W multiples of `multiple`), area-downscaled to at most `max_pixels` when larger, and
    return every stats-aware layer's mean and variance.

    Downscaling only feeds the statistics, never the output. It keeps the means and the coarse
    variance; fine texture a big downscale removes lowers the recorded variances slightly.
    """
    height, width = x.shape[-2:]
    size = downscaled_size(height, width, max_pixels=max_pixels, multiple=multiple)
    if size != (height, width):
        x = F.interpolate(x.float(), size=size, mode="bilinear", antialias=True, align_corners=False).to(x.dtype)
    with context.recording() as stats:
        forward(x)
    return stats
