"""Community models through spandrel (the optional extra `translate[zoo]`): the last link of the
loader chain, after our checkpoints and our zoo's published formats.

spandrel (MIT) detects ~40 architectures from a state dict and describes each model: scale,
channels, size requirements, tiling hint, fp16/bf16 support, purpose. `spandrel_model` turns that
description into a net and a spec carrying every fact of our `ModelContract`; the net runs through
the descriptor's own call function (noise-level maps, colour-space round trips) in [0, 1],
clamped, like spandrel's `__call__`.
`spandrel_extra_arches` (it carries non-commercial architectures) is used only when asked for.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import TranslatorError, first_line
from translate.nets.layers import Tiling

INSTALL_HINT = "pip install 'translate[zoo]'"
# spandrel's purpose -> our task; "SR" at scale 1 (1x models) restores, it does not enlarge.
_TASK_OF_PURPOSE = {"SR": "superres", "Restoration": "restore", "Inpainting": "inpaint"}
_COLORIZERS = frozenset({"DDColor"})  # RGB in, RGB out: the call function does the Lab round trip


@dataclass(frozen=True)
class ForeignSpec:
    """What translate needs to know about a spandrel model (never enough to rebuild it).

    in_channels counts the hole channel of masked (inpainting) models: they take our inpaint
    input, RGB + alpha (0 = hole). size_multiple, min_side and square are spandrel's size
    requirements; tiling its hint; precisions what it runs in ("fp32" always).
    """

    kind: Literal["spandrel"] = "spandrel"
    architecture: str = ""
    purpose: str = "SR"
    in_channels: int = 3
    out_channels: int = 3
    scale: int = 1
    size_multiple: int = 1
    min_side: int = 0
    square: bool = False
    tiling: Tiling = "supported"
    precisions: tuple[str, ...] = ("fp32",)
    masked: bool = False
    tags: tuple[str, ...] = ()

    @property
    def value_range(self) -> str:
        return "zero_one"  # spandrel's call contract: RGB in [0, 1] in, clamped [0, 1] out


class ForeignNet(nn.Module):
    """A spandrel model as a net of our contract, in [0, 1]: (N, C_in, H, W) -> (N, C_out, s*H, s*W).

    H and W already meet the size multiple and minimum (the Translator pads); a model that needs
    square inputs gets its input padded to a square here and the output cropped back, as spandrel
    does. Masked models take RGB + alpha (< 0.5 = hole) and get spandrel's mask (1 = hole).
    """

    def __init__(self, model: nn.Module, call: Callable[..., torch.Tensor], spec: ForeignSpec) -> None:
        super().__init__()
        self.model = model
        self.call = call
        self.spec = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.spec.square and height != width:
            side = max(height, width)
            x = F.pad(x, (0, side - width, 0, side - height), mode="replicate")
        if self.spec.masked:
            hole = (x[:, -1:] < 0.5).to(x.dtype)
            out = self.call(self.model, x[:, :-1], hole)
        else:
            out = self.call(self.model, x)
        scale = self.spec.scale
        return out[..., : height * scale, : width * scale]


def _registry(extra_arches: bool) -> Any:
    """spandrel's registry, plus spandrel_extra_arches' architectures when asked (never globally)."""
    try:
        import spandrel
    except ModuleNotFoundError:
        raise TranslatorError(f"loading community models needs spandrel: {INSTALL_HINT}") from None
    if not extra_arches:
        return spandrel.MAIN_REGISTRY
    try:
        import spandrel_extra_arches
    except ModuleNotFoundError:
        raise TranslatorError("--extra-arches needs spandrel_extra_arches: pip install spandrel_extra_arches "
                              "(some of its architectures are for non-commercial use only)") from None
    registry = spandrel.MAIN_REGISTRY.copy()
    registry.add(*spandrel_extra_arches.EXTRA_REGISTRY, ignore_duplicates=True)
    return registry


def spandrel_available() -> bool:
    """Whether the optional spandrel bridge is installed."""
    try:
        import spandrel  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def describe_spandrel(obj: Mapping[str, Any], *, extra_arches: bool = False) -> Any | None:
    """spandrel's descriptor for the state dict `obj` (wrappers such as {"params_ema": sd} are
    unwrapped by spandrel); None when no architecture matches. A matched architecture that
    fails to load raises whatever spandrel raises."""
    import spandrel

    registry = _registry(extra_arches)
    try:
        return registry.load(spandrel.canonicalize_state_dict(dict(obj)))
    except spandrel.UnsupportedModelError:
        return None


def spandrel_model(descriptor: Any, path: Path | None) -> tuple[nn.Module, ForeignSpec, str]:
    """(net in [0, 1], spec, task) for a spandrel descriptor; face models are refused."""
    import spandrel

    arch = str(descriptor.architecture.id)
    if descriptor.purpose == "FaceSR":
        raise TranslatorError(f"{path}: {arch} restores aligned face crops (a face detector and aligner must "
                              "cut them out first); translate does not detect or align faces, so it does not run it")
    masked = isinstance(descriptor, spandrel.MaskedImageModelDescriptor)
    requirements = descriptor.size_requirements
    spec = ForeignSpec(
        architecture=arch,
        purpose=str(descriptor.purpose),
        in_channels=int(descriptor.input_channels) + (1 if masked else 0),
        out_channels=int(descriptor.output_channels),
        scale=int(descriptor.scale),
        size_multiple=int(requirements.multiple_of),
        min_side=int(requirements.minimum),
        square=bool(requirements.square),
        tiling=descriptor.tiling.name.lower(),
        precisions=("fp32",) + (("bf16",) if descriptor.supports_bfloat16 else ())
        + (("fp16",) if descriptor.supports_half else ()),
        masked=masked,
        tags=tuple(str(tag) for tag in descriptor.tags),
    )
    # The descriptor's own call function (spandrel 0.4 keeps it as `_call_fn`; the extra pins the
    # minor version) rather than the bare module: some models need a noise map or a Lab round trip.
    call = getattr(descriptor, "_call_fn", None)
    if call is None:
        raise TranslatorError(f"{path}: this spandrel version hides its call function; {INSTALL_HINT}")
    return ForeignNet(descriptor.model.float().eval(), call, spec), spec, _task(spec)


def _task(spec: ForeignSpec) -> str:
    if spec.architecture in _COLORIZERS:
        return "colorize"
    if spec.purpose == "SR" and spec.scale == 1:
        return "restore"
    return _TASK_OF_PURPOSE.get(spec.purpose, "custom")


def load_error(path: Path, ours: Exception, theirs: Exception | str | None) -> TranslatorError:
    """The one-line error when neither our formats nor spandrel (None: not installed; else why it
    refused) load a file."""
    if theirs is None:
        return TranslatorError(f"{path}: {first_line(ours)}; name the architecture with --arch PRESET (see "
                               f"`translate info presets`), or for community architectures (SwinIR, HAT, "
                               f"LaMa, ...) {INSTALL_HINT}")
    return TranslatorError(f"{path}: not a translate checkpoint, nor weights our zoo or spandrel recognises "
                           f"({first_line(ours)}; spandrel: {theirs if isinstance(theirs, str) else first_line(theirs)}); for one of our architectures "
                           "pass --arch PRESET")
