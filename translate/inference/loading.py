"""Loading generators: a run directory, checkpoint, reference `*_net_G.pth` or published NAME,
read once, becomes one `LoadedModel` per generator it holds."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translate.checkpoint import is_translate_checkpoint, load_file, resolve_checkpoint, validate_checkpoint
from translate.direction import DIRECTIONS, Direction, direction_of, generator_name
from translate.errors import CheckpointError, TranslatorError, WeightsError, first_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """One generator rebuilt from its source, with what inference and export need to know.

    `config` is the training config embedded in a translate checkpoint ({} otherwise);
    `direction` is None for a net without one (reference weights, a bare net); `method` is
    "pix2pix", "cyclegan", "reference" (published / original-code weights) or "custom".
    `value_range` is the pixel range `net` reads and writes (`translate.nets.layers.ValueRange`):
    "minus_one_one" (our GAN nets) or "zero_one" (published super-resolution nets, whose output
    is clamped); None takes the spec's. Everything that runs the net honours it from here.
    """

    net: nn.Module
    spec: Any  # a generator spec (translate.nets)
    config: Mapping[str, Any] = field(default_factory=dict)
    direction: Direction | None = None
    task: str = "custom"
    method: str = "custom"
    source: Path | None = None
    value_range: str | None = None

    def __post_init__(self) -> None:
        if self.value_range is None:
            object.__setattr__(self, "value_range", getattr(self.spec, "value_range", "minus_one_one"))

    @property
    def net_name(self) -> str:
        """"g_ab" / "g_ba" for a checkpoint's generators, "G" for a net without a direction."""
        return generator_name(self.direction) if self.direction else "G"


def resolve_source(source: str | os.PathLike, weights_dir: str | os.PathLike = "weights") -> Path:
    """A run directory, checkpoint or weights file as given; a bare NAME means weights_dir/NAME.pth."""
    path = Path(source)
    if path.exists():
        return path
    text = str(source)
    if os.sep not in text and "/" not in text and not path.suffix:
        from translate import weights

        try:
            return weights.resolve(text, weights_dir)
        except WeightsError as e:
            raise TranslatorError(str(e)) from None
    raise TranslatorError(f"{source}: no such run directory, checkpoint or weights file")


def load_models(
    source: str | os.PathLike,
    *,
    direction: str | None = None,
    arch: str | None = None,
    weights_dir: str | os.PathLike = "weights",
) -> list[LoadedModel]:
    """Every generator of `source` from one read (a_to_b first), or only `direction`'s.

    Reference weights (architecture detected, or the `arch` preset) hold one generator.
    """
    if direction is not None and direction not in DIRECTIONS:
        raise TranslatorError(f"direction: {direction!r} must be a_to_b or b_to_a")
    path = resolve_source(source, weights_dir)
    checkpoint_path = resolve_checkpoint(path)
    obj = load_file(checkpoint_path)
    if is_translate_checkpoint(obj) or path.is_dir():
        checkpoint = validate_checkpoint(obj, checkpoint_path)
        if arch is not None:
            raise TranslatorError(f"{path}: --arch is only for reference weights; a translate "
                                  "checkpoint carries its own architecture")
        return _checkpoint_models(checkpoint, path, direction)
    if direction is not None:
        raise TranslatorError(f"{path}: reference weights hold one generator; drop --direction")
    return [_reference_model(obj, path, arch)]


def load_model(source: str | os.PathLike, *, direction: str | None = None, arch: str | None = None,
               weights_dir: str | os.PathLike = "weights") -> LoadedModel:
    """The generator of `source` for `direction` (default: a_to_b for CycleGAN, the one a
    pix2pix run trained); see `load_models`."""
    return load_models(source, direction=direction, arch=arch, weights_dir=weights_dir)[0]


def _checkpoint_models(checkpoint: Mapping[str, Any], path: Path, direction: str | None) -> list[LoadedModel]:
    from translate.nets import build_net, spec_from_dict

    config = dict(checkpoint.get("config") or {})
    method = str(config.get("method", "pix2pix"))
    present = [d for d in DIRECTIONS if generator_name(d) in checkpoint["nets"]]
    if not present:
        nets = ", ".join(checkpoint["nets"]) or "none"
        raise CheckpointError(f"{path}: checkpoint holds no generator (nets: {nets})")
    if direction is not None and direction not in present:
        holds = ", ".join(f"{generator_name(d)} ({d})" for d in present)
        raise TranslatorError(f"{path}: no {direction} generator in this {method} checkpoint (it holds "
                              f"{holds}); drop --direction or pass the other one")
    models = []
    for found in [direction] if direction is not None else present:
        name = generator_name(found)
        try:
            spec = spec_from_dict(checkpoint["specs"][name])
            net = build_net(spec)
            # A run that averages its generator weights (optim.ema_decay) converts with the averages.
            weights = (checkpoint.get("ema") or {}).get(name, checkpoint["nets"][name])
            net.load_state_dict(weights, strict=True)
        except KeyError:
            raise CheckpointError(f"{path}: checkpoint has weights for {name} but no spec") from None
        except (ValueError, RuntimeError) as e:
            raise CheckpointError(f"{path}: cannot rebuild {name}: {first_line(e)}") from e
        models.append(LoadedModel(net.eval(), spec, config, direction_of(name), str(config.get("task", "custom")),
                                  method, path))
    return models


def _reference_model(obj: Any, path: Path, arch: str | None) -> LoadedModel:
    from translate.nets import is_generator, spec_from_dict
    from translate.nets.reference import detect_reference_generator, load_reference_generator, unwrap_published

    state_dict = unwrap_published(obj)  # BasicSR / Real-ESRGAN: {"params_ema": sd} or {"params": sd}
    if not isinstance(state_dict, Mapping) or not state_dict or \
            not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise TranslatorError(f"{path}: neither a translate checkpoint nor a generator state dict")
    try:
        spec = spec_from_dict(arch) if arch is not None else detect_reference_generator(state_dict)
        if not is_generator(spec):
            raise ValueError(f"--arch {arch}: a discriminator, not a generator")
        net = load_reference_generator(state_dict, spec)
    except ValueError as e:
        hint = "" if arch else "; name the architecture with --arch PRESET (see `translate info presets`)"
        raise TranslatorError(f"{path}: {first_line(e)}{hint}") from e
    # A net that enlarges is a super-resolution model whatever trained it.
    task = "superres" if int(getattr(spec, "scale", 1)) > 1 else "custom"
    return LoadedModel(net.eval(), spec, {}, None, task, "reference", path, spec.value_range)
