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

import copy
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

    def frozen(self, stats: NormStats) -> AbstractContextManager[NormStats]:
        """`with ctx.frozen(stats):` norm layers use `stats` instead of their input's statistics."""
        return self._use(_State(recording=False, stats=stats))


# Both helpers run on F.batch_norm over an (1, N*C, H, W) view, as F.instance_norm does: its
# native kernel is 10-20x faster on CPU than var_mean plus elementwise maths, and takes bf16
# inputs with float32 statistics.
def _per_sample(t: torch.Tensor | None, n: int) -> torch.Tensor | None:
    return None if t is None else t.float().repeat(n)


def _norm_measure(x: torch.Tensor, eps: float, weight: torch.Tensor | None, bias: torch.Tensor | None,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalise (N, C, H, W) with each sample's own statistics; also return them as (N, C)
    float32 mean and biased variance."""
    n, c, height, width = x.shape
    mean = torch.zeros(n * c, dtype=torch.float32, device=x.device)
    var = torch.ones(n * c, dtype=torch.float32, device=x.device)
    # momentum 1 makes the "running" buffers the batch statistics (the variance unbiased).
    y = F.batch_norm(x.reshape(1, n * c, height, width), mean, var, _per_sample(weight, n),
                     _per_sample(bias, n), True, 1.0, eps)
    count = height * width
    if count > 1:
        var *= (count - 1) / count
    return y.view(n, c, height, width), mean.view(n, c), var.view(n, c)


def _norm_apply(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, eps: float,
                weight: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    """Normalise (N, C, H, W) with given (1 or N, C) statistics."""
    n, c, height, width = x.shape
    if mean.shape[0] == 1:  # one image's statistics for every tile in the batch
        return F.batch_norm(x, mean[0], var[0], None if weight is None else weight.float(),
                            None if bias is None else bias.float(), False, 0.0, eps)
    y = F.batch_norm(x.reshape(1, n * c, height, width), mean.reshape(-1), var.reshape(-1),
                     _per_sample(weight, n), _per_sample(bias, n), False, 0.0, eps)
    return y.view(n, c, height, width)


class _StatsMixin:
    """Record or apply frozen statistics when the shared context says so."""

    stats_index: int
    stats_context: NormStatsContext

    def _stats_forward(self, x: torch.Tensor, state: _State, weight, bias) -> torch.Tensor:
        if state.recording:
            y, mean, var = _norm_measure(x, self.eps, weight, bias)
            state.stats[self.stats_index] = (mean, var)
            return y
        try:
            mean, var = state.stats[self.stats_index]
        except KeyError:
            raise RuntimeError(f"frozen norm stats lack layer {self.stats_index}; record them on this net") from None
        return _norm_apply(x, mean, var, self.eps, weight, bias)


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
            return _norm_measure(x, self.eps, self.weight, self.bias)[0]
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


class PlainPerImageBatchNorm(nn.Module):
    """PerImageBatchNorm as plain tensor maths, without the thread-local context (which export
    cannot keep): each image normalised with its own statistics, then the affine parameters."""

    def __init__(self, source: nn.BatchNorm2d) -> None:
        super().__init__()
        self.eps = float(source.eps)
        weight = source.weight if source.affine else torch.ones(source.num_features)
        bias = source.bias if source.affine else torch.zeros(source.num_features)
        self.register_buffer("weight", weight.detach().float().clone())
        self.register_buffer("bias", bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=(2, 3), unbiased=False, keepdim=True)
        scale = torch.rsqrt(var + self.eps) * self.weight[None, :, None, None]
        return x * scale + (self.bias[None, :, None, None] - mean * scale)


def _plain(layer: nn.Module) -> nn.Module | None:
    """The plain layer computing what a stats-aware `layer` computes outside a context; None for others."""
    if isinstance(layer, PerImageBatchNorm):
        return PlainPerImageBatchNorm(layer)
    if not isinstance(layer, StatsInstanceNorm):
        return None
    plain = nn.InstanceNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
                              track_running_stats=layer.track_running_stats)
    plain.load_state_dict(layer.state_dict())
    return plain.to(next(iter(layer.state_dict().values()), torch.empty(0)).device)


def plain_copy(net: nn.Module) -> nn.Module:
    """A deep copy of `net` whose stats-aware layers are plain ones again (same weights, modes and
    results outside a context), e.g. for export, which cannot keep a thread-local context; `net`
    is untouched."""
    contexts = {id(m.stats_context): None for m in net.modules() if isinstance(m, _StatsMixin)}
    copied = copy.deepcopy(net, memo=contexts)  # the copies get no context rather than a copy of it
    for parent in list(copied.modules()):
        for name, child in list(parent.named_children()):
            plain = _plain(child)
            if plain is not None:
                plain.train(child.training)
                setattr(parent, name, plain)
    return copied


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
