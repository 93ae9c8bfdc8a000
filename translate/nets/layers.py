"""Normalisation and padding factories shared by the network files."""
from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from translate.errors import ConfigError

Norm = Literal["batch", "instance", "none"]
Padding = Literal["reflect", "replicate", "zeros"]
NORMS: tuple[str, ...] = get_args(Norm)
PADDINGS: tuple[str, ...] = get_args(Padding)
# The pixel range a generator reads and writes: our GAN nets end in tanh ("minus_one_one"); the
# published super-resolution nets were trained on RGB in [0, 1] and leave their output unbounded,
# so inference clamps it to [0, 1] ("zero_one").
ValueRange = Literal["minus_one_one", "zero_one"]
VALUE_RANGES: tuple[str, ...] = get_args(ValueRange)
# How a model may be split into tiles: "supported" (any tiles), "discouraged" (whole while it fits
# memory; community models that need global context) or "internal" (it tiles itself: never split).
Tiling = Literal["supported", "discouraged", "internal"]


class GeneratorFacts:
    """What inference reads from every generator spec, with the defaults of our own nets: any
    input side from 0 up (padded to `size_multiple`), not only squares, tiles welcome, and all
    three precisions (every layer we build has fp16 and bf16 kernels)."""

    kind: str

    @property
    def architecture(self) -> str:
        return self.kind

    @property
    def min_side(self) -> int:
        return 0

    @property
    def square(self) -> bool:
        return False

    @property
    def tiling(self) -> Tiling:
        return "supported"

    @property
    def precisions(self) -> tuple[str, ...]:
        return ("fp32", "bf16", "fp16")


class DiscriminatorFacts:
    """The defaults of discriminators that judge crops of any size from their `min_size` up."""

    @property
    def fixed_size(self) -> int | None:
        """The only crop size it judges; None: any size from min_size up."""
        return None

    @property
    def size_multiple(self) -> int:
        return 1


class SameSizeTanhSpec(GeneratorFacts):
    """What same-size generators ending in tanh (U-Net, gated) share: pixels in [-1, 1], scale 1."""

    @property
    def value_range(self) -> ValueRange:
        return "minus_one_one"

    @property
    def scale(self) -> int:
        return 1

    @property
    def classifies_ab(self) -> bool:
        """Whether the net outputs colour-bin logits besides ab (pix2pix trains it on cross-entropy)."""
        return False


class PublishedSRSpec(GeneratorFacts):
    """What the published SR families (SRResNet, RRDBNet, SRVGG) share: pixels in [0, 1], scale = upscale."""

    upscale: int

    @property
    def size_multiple(self) -> int:
        return 1

    @property
    def scale(self) -> int:
        return self.upscale

    @property
    def value_range(self) -> ValueRange:
        return "zero_one"

    @property
    def classifies_ab(self) -> bool:
        return False


class ZeroOneNet(nn.Module):
    """A net that reads and writes [0, 1] run under our [-1, 1] contract:
    x -> 2 * clamp(net((x + 1) / 2), 0, 1) - 1, the clamp being the published inference code's."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x + 1.0) * 0.5).clamp(0.0, 1.0) * 2.0 - 1.0


def signed_range_net(net: nn.Module, value_range: ValueRange) -> nn.Module:
    """`net` mapping [-1, 1] to [-1, 1]: as it is for "minus_one_one", wrapped for "zero_one"."""
    check_choice("value_range", value_range, VALUE_RANGES)
    return net if value_range == "minus_one_one" else ZeroOneNet(net)


def norm_layer(norm: Norm, channels: int) -> nn.Module:
    """One normalisation layer; "none" is an Identity so module indices match the other norms."""
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    if norm == "instance":
        # No affine parameters and no running stats, as in the reference pix2pix/CycleGAN code:
        # the released instance-norm weights hold no norm entries at all.
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ConfigError(f"norm: unknown {norm!r}; choose one of {', '.join(NORMS)}")


def conv_bias(norm: Norm) -> bool:
    """Whether a conv followed by `norm` needs its own bias: batch norm's shift makes it redundant.

    The reference code also drops the bias for norm "none", which leaves such a net without any
    offsets; we keep it. No released reference weights use "none".
    """
    return norm != "batch"


def padding_layers(padding: Padding, amount: int) -> tuple[list[nn.Module], int]:
    """(modules to put before a conv, the conv's own zero padding) for `amount` pixels a side."""
    if padding == "reflect":
        return [nn.ReflectionPad2d(amount)], 0
    if padding == "replicate":
        return [nn.ReplicationPad2d(amount)], 0
    if padding == "zeros":
        return [], amount
    raise ConfigError(f"padding: unknown {padding!r}; choose one of {', '.join(PADDINGS)}")


def check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise a one-line ValueError when a Literal-typed spec field holds an unknown value."""
    if value not in choices:
        raise ConfigError(f"{field}: unknown {value!r}; choose one of {', '.join(choices)}")


def check_positive(field: str, value: int, minimum: int = 1) -> None:
    """Raise a one-line ValueError when an integer spec field is below `minimum`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{field}: must be an integer >= {minimum}, got {value!r}")


def check_dropout(value: float) -> None:
    """Raise a one-line ValueError unless 0 <= dropout < 1."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ConfigError(f"dropout: must be a probability in [0, 1), got {value!r}")
