"""Loading generators: a run directory, checkpoint, published weights file (ours, or any architecture
spandrel knows) or published NAME, read once, becomes one `LoadedModel` per generator it holds."""
from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translate.checkpoint import is_translate_checkpoint, load_file, resolve_checkpoint, validate_checkpoint
from translate.direction import DIRECTIONS, Direction, direction_of, generator_name
from translate.errors import CheckpointError, TranslatorError, WeightsError, first_line
from translate.integrity.bounds import check_net_fits

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


def describe_model(model: LoadedModel) -> dict[str, Any]:
    """What was loaded, as plain values (`translate info MODEL`): how, the task and the contract."""
    from translate.inference.spandrel_bridge import net_name, spec_summary

    spec = model.spec
    how = {"reference": "published weights of translate's zoo (detected)", "spandrel": "spandrel architecture"}
    return {
        "source": str(model.source),
        "loaded_as": how.get(model.method, f"translate checkpoint ({model.method})"),
        "architecture": net_name(spec),
        "task": model.task,
        "direction": model.direction,
        "in_channels": int(spec.in_channels),
        "out_channels": int(spec.out_channels),
        "scale": int(getattr(spec, "scale", 1)),
        "size_multiple": int(spec.size_multiple),
        "min_side": int(getattr(spec, "min_side", 0)),
        "square": bool(getattr(spec, "square", False)),
        "value_range": model.value_range,
        "tiling": getattr(spec, "tiling", "supported"),
        "precisions": list(getattr(spec, "precisions", ("fp32", "bf16", "fp16"))),
        "spec": spec_summary(spec),
    }


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
    trust_torchscript: bool = False,
    extra_arches: bool = False,
) -> list[LoadedModel]:
    """Every generator of `source` from one read (a_to_b first), or only `direction`'s.

    The loader chain: a translate checkpoint; else published weights of our zoo (classic
    pix2pix/CycleGAN, CUT, the SR families; architecture detected, or the `arch` preset); else,
    with the `[zoo]` extra, any architecture spandrel detects (`extra_arches` adds
    spandrel_extra_arches'). Published weights hold one generator. Files are read without
    unpickling objects; a TorchScript file (its loading runs code) only with `trust_torchscript`.
    """
    if direction is not None and direction not in DIRECTIONS:
        raise TranslatorError(f"direction: {direction!r} must be a_to_b or b_to_a")
    path = resolve_source(source, weights_dir)
    checkpoint_path = resolve_checkpoint(path)
    obj = read_weights(checkpoint_path, trust_torchscript=trust_torchscript)
    if is_translate_checkpoint(obj) or path.is_dir():
        checkpoint = validate_checkpoint(obj, checkpoint_path)
        if arch is not None:
            raise TranslatorError(f"{path}: --arch is only for reference weights; a translate "
                                  "checkpoint carries its own architecture")
        return _checkpoint_models(checkpoint, path, direction)
    if direction is not None:
        raise TranslatorError(f"{path}: reference weights hold one generator; drop --direction")
    return [_published_model(obj, path, arch, extra_arches)]


def load_model(source: str | os.PathLike, *, direction: str | None = None, arch: str | None = None,
               weights_dir: str | os.PathLike = "weights", trust_torchscript: bool = False,
               extra_arches: bool = False) -> LoadedModel:
    """The generator of `source` for `direction` (default: a_to_b for CycleGAN, the one a
    pix2pix run trained); see `load_models`."""
    return load_models(source, direction=direction, arch=arch, weights_dir=weights_dir,
                       trust_torchscript=trust_torchscript, extra_arches=extra_arches)[0]


def is_torchscript(path: Path) -> bool:
    """Whether `path` is a TorchScript archive (a zip holding compiled code and constants.pkl)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name == "constants.pkl" or name.endswith("/constants.pkl") for name in archive.namelist())


def read_weights(path: Path, *, trust_torchscript: bool = False) -> Any:
    """A checkpoint or weights file's contents without running code: torch.load(weights_only=True),
    safetensors, or (only when trusted) a TorchScript archive's state dict."""
    if path.is_file() and path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file as load_safetensors
        except ModuleNotFoundError:
            raise TranslatorError(f"{path}: reading .safetensors needs safetensors: pip install "
                                  "'translate[zoo]'") from None
        try:
            return load_safetensors(path, device="cpu")
        except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for bad headers
            raise CheckpointError(f"{path}: not a readable safetensors file ({first_line(e)})") from e
    if path.is_file() and is_torchscript(path):
        if not trust_torchscript:
            raise TranslatorError(f"{path}: a TorchScript file; loading one runs the code stored in it, so it is "
                                  "refused unless you trust its source and pass --trust-torchscript")
        try:
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        except Exception as e:  # noqa: BLE001 - whatever the archive makes torch.jit raise
            raise CheckpointError(f"{path}: cannot load this TorchScript file ({first_line(e)})") from e
    return load_file(path)


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
            # A run that averages its generator weights (optim.ema_decay) converts with the averages.
            weights = (checkpoint.get("ema") or {}).get(name, checkpoint["nets"][name])
            check_net_fits(build_net, spec, weights, path, name)  # counted on the meta device first
            net = build_net(spec)
            net.load_state_dict(weights, strict=True)
        except KeyError:
            raise CheckpointError(f"{path}: checkpoint has weights for {name} but no spec") from None
        except (ValueError, RuntimeError) as e:
            raise CheckpointError(f"{path}: cannot rebuild {name}: {first_line(e)}") from e
        models.append(LoadedModel(net.eval(), spec, config, direction_of(name), str(config.get("task", "custom")),
                                  method, path))
    return models


def _published_model(obj: Any, path: Path, arch: str | None, extra_arches: bool) -> LoadedModel:
    """Our zoo's formats first (or the `arch` preset), then spandrel's architectures."""
    try:
        return _reference_model(obj, path, arch)
    except ValueError as ours:
        if arch is not None:
            raise TranslatorError(f"{path}: {first_line(ours)}") from ours
        from translate.inference import spandrel_bridge as zoo

        if not zoo.spandrel_available() or not isinstance(obj, Mapping):
            raise zoo.load_error(path, ours, None) from ours
        try:
            descriptor = zoo.describe_spandrel(obj, extra_arches=extra_arches)
        except Exception as theirs:  # noqa: BLE001 - a detected architecture failing to load names itself
            raise zoo.load_error(path, ours, theirs) from theirs
    net, spec, task = zoo.spandrel_model(descriptor, path)
    log.info("%s: loaded with spandrel as %s", path, spec.architecture)
    return LoadedModel(net, spec, {}, None, task, "spandrel", path, spec.value_range)


def _reference_model(obj: Any, path: Path, arch: str | None) -> LoadedModel:
    """Published weights of our zoo; ValueError when they are none of its formats."""
    from translate.nets import is_generator, spec_from_dict
    from translate.nets.reference import detect_reference_generator, load_reference_generator, unwrap_published

    state_dict = unwrap_published(obj)  # BasicSR / Real-ESRGAN: {"params_ema": sd} or {"params": sd}
    if not isinstance(state_dict, Mapping) or not state_dict or \
            not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError("neither a translate checkpoint nor a generator state dict")
    spec = spec_from_dict(arch) if arch is not None else detect_reference_generator(state_dict)
    if not is_generator(spec):
        raise ValueError(f"--arch {arch}: a discriminator, not a generator")
    net = load_reference_generator(state_dict, spec)
    # A net that enlarges is a super-resolution model whatever trained it.
    task = "superres" if int(getattr(spec, "scale", 1)) > 1 else "custom"
    return LoadedModel(net.eval(), spec, {}, None, task, "reference", path, spec.value_range)
