"""Loading generators: a run directory, checkpoint, published weights file (ours, or any architecture
spandrel knows) or published NAME (a `ModelSource`), read once, becomes one `LoadedModel` per
generator it holds, each with its `ModelContract`."""
from __future__ import annotations

import dataclasses
import logging
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translate.checkpoint import (
    LATEST, SE_SUFFIX, is_translate_checkpoint, load_file, plus_minus, resolve_checkpoint, validate_checkpoint,
)
from translate.direction import DIRECTIONS, Direction, generator_name
from translate.errors import CheckpointError, ConfigError, TranslateError, TranslatorError, WeightsError, first_line
from translate.inference.contract import ModelContract, ModelSource
from translate.integrity.bounds import check_net_fits
from translate.tasks import get_task

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LoadedModel:
    """One generator rebuilt from its source: the net (in its own `contract.value_range`), its
    contract, the training config embedded in a translate checkpoint ({} otherwise), the file
    it came from (None for a bare net) and, for a translate checkpoint, `trained`: the file read,
    its step and the validation figures the run recorded (see `checkpoint_line`)."""

    net: nn.Module
    contract: ModelContract
    config: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None
    trained: Mapping[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> Any:
        return self.contract.spec

    @property
    def direction(self) -> Direction | None:
        return self.contract.direction

    @property
    def method(self) -> str:
        return self.contract.method

    @property
    def net_name(self) -> str:
        """"g_ab" / "g_ba" for a checkpoint's generators, "G" for a net without a direction."""
        return generator_name(self.direction) if self.direction else "G"


def describe_model(model: LoadedModel) -> dict[str, Any]:
    """What was loaded, as plain values (`translate info MODEL`): where from, how, and its contract."""
    return {"source": str(model.source), "loaded_as": model.contract.loaded_as, **model.contract.to_dict()}


def _training_record(checkpoint: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """What a checkpoint says of the training behind it: its file and step, the validation row
    measured at that step (best.pt keeps it as val_metrics; latest.pt's history holds it) and the
    run's best-so-far record."""
    history = [row for row in checkpoint.get("val_history") or [] if row.get("step") == checkpoint.get("step")]
    figures = checkpoint.get("val_metrics") or (history[-1] if history else {})
    return {"file": path, "step": checkpoint.get("step"), "figures": dict(figures), "best": checkpoint.get("best")}


def checkpoint_line(model: LoadedModel) -> str:
    """One line naming the checkpoint a model was read from and why, with its validation figure:
    "model: runs/x/checkpoints/latest.pt (step 600, val psnr 25.3 ± 0.4; the run's newest weights,
    what a run directory means; best.pt: step 400, val psnr 24.1 ± 0.3)"."""
    trained = model.trained
    if not trained:
        return f"model: {model.source}"
    best, row, path = trained.get("best") or {}, trained["figures"], Path(trained["file"])
    column = best.get("column")
    facts = [f"step {trained.get('step')}"]
    if column and row.get(column) is not None:
        facts.append(f"val {column} {plus_minus(float(row[column]), row.get(column + SE_SUFFIX))}")
    if path.name == LATEST:
        facts.append("the run's newest weights, what a run directory means")
        if best.get("value") is None:
            facts.append("no best.pt: the run recorded no validation figure")
        elif best.get("step") != trained.get("step"):
            facts.append(f"best.pt: step {best['step']}, val {column} {plus_minus(best['value'], best.get('se'))}")
    return f"model: {path} ({'; '.join(facts)})"


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


def load_models(source: ModelSource | str | os.PathLike, **fields: Any) -> list[LoadedModel]:
    """Every generator of `source` from one read (a_to_b first), or only `source.direction`'s;
    `fields` are ModelSource fields, e.g. `load_models(path, direction="b_to_a")`.

    The loader chain: a translate checkpoint; else published weights of our zoo (classic
    pix2pix/CycleGAN, CUT, the SR families; architecture detected, or the `arch` preset); else,
    with the `[zoo]` extra, any architecture spandrel detects (`extra_arches` adds
    spandrel_extra_arches'). Published weights hold one generator. Files are read without
    unpickling objects; a TorchScript file (its loading runs code) only with `trust_torchscript`.
    """
    source = ModelSource.of(source, **fields)
    path = resolve_source(source.path, source.weights_dir)
    checkpoint_path = resolve_checkpoint(path)
    obj = read_weights(checkpoint_path, trust_torchscript=source.trust_torchscript)
    if is_translate_checkpoint(obj) or path.is_dir():
        checkpoint = validate_checkpoint(obj, checkpoint_path)
        if source.arch is not None:
            raise TranslatorError(f"{path}: --arch is only for reference weights; a translate "
                                  "checkpoint carries its own architecture")
        models = _checkpoint_models(checkpoint, path, source.direction)
        record = _training_record(checkpoint, checkpoint_path)
        return [dataclasses.replace(model, trained=record) for model in models]
    if source.direction is not None:
        raise TranslatorError(f"{path}: reference weights hold one generator; drop --direction")
    return [_published_model(obj, path, source)]


def load_model(source: ModelSource | str | os.PathLike, **fields: Any) -> LoadedModel:
    """The generator of `source` for its direction (default: a_to_b for CycleGAN, the one a
    pix2pix run trained); see `load_models`."""
    return load_models(source, **fields)[0]


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
    config = dict(checkpoint.get("config") or {})
    method = str(config.get("method", "pix2pix"))
    present = tuple(d for d in DIRECTIONS if generator_name(d) in checkpoint["nets"])
    if not present:
        nets = ", ".join(checkpoint["nets"]) or "none"
        raise CheckpointError(f"{path}: checkpoint holds no generator (nets: {nets})")
    if direction is not None and direction not in present:
        holds = ", ".join(f"{generator_name(d)} ({d})" for d in present)
        raise TranslatorError(f"{path}: no {direction} generator in this {method} checkpoint (it holds "
                              f"{holds}); drop --direction or pass the other one")
    try:
        task = get_task(str(config.get("task", "custom")))
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None
    models = []
    for found in [direction] if direction is not None else present:
        spec, net = _rebuild(checkpoint, generator_name(found), path)
        contract = ModelContract.for_spec(spec, task=task, method=method, direction=found, directions=present)
        models.append(LoadedModel(net=net, contract=contract, config=config, source=path))
    return models


def _rebuild(checkpoint: Mapping[str, Any], name: str, path: Path) -> tuple[Any, nn.Module]:
    """(spec, net in eval mode) of the checkpoint's generator `name`."""
    from translate.nets import build_net, spec_from_dict

    if name not in (checkpoint.get("specs") or {}):
        raise CheckpointError(f"{path}: checkpoint has weights for {name} but no spec")
    try:
        spec = spec_from_dict(checkpoint["specs"][name])
    except TranslateError as e:
        raise CheckpointError(f"{path}: cannot rebuild {name}: {first_line(e)}") from e
    # A run that averages its generator weights (optim.ema_decay) converts with the averages.
    weights = (checkpoint.get("ema") or {}).get(name, checkpoint["nets"][name])
    check_net_fits(build_net, spec, weights, path, name)  # counted on the meta device first
    try:
        net = build_net(spec)
        net.load_state_dict(weights, strict=True)
    except (TranslateError, RuntimeError) as e:  # a stored spec or weights torch refuses
        raise CheckpointError(f"{path}: cannot rebuild {name}: {first_line(e)}") from e
    return spec, net.eval()


def _published_model(obj: Any, path: Path, source: ModelSource) -> LoadedModel:
    """Our zoo's formats first (or the `arch` preset), then spandrel's architectures."""
    from translate.nets.reference import NotReferenceWeights

    try:
        return _reference_model(obj, path, source.arch)
    except NotReferenceWeights as ours:
        if source.arch is not None:
            raise TranslatorError(f"{path}: {first_line(ours)}") from ours
        return _spandrel_model(obj, path, source.extra_arches, ours)


def _spandrel_model(obj: Any, path: Path, extra_arches: bool, ours: Exception) -> LoadedModel:
    """A model any architecture spandrel knows; `ours` is why our own formats did not fit."""
    from translate.inference import spandrel_bridge as zoo

    if not zoo.spandrel_available() or not isinstance(obj, Mapping):
        raise zoo.load_error(path, ours, None) from ours
    try:
        descriptor = zoo.describe_spandrel(obj, extra_arches=extra_arches)
    except TranslatorError:
        raise
    except Exception as theirs:  # noqa: BLE001 - a detected architecture failing to load names itself
        raise zoo.load_error(path, ours, theirs) from theirs
    if descriptor is None:
        raise zoo.load_error(path, ours, "no architecture spandrel knows matches these weights")
    net, spec, task = zoo.spandrel_model(descriptor, path)
    log.info("%s: loaded with spandrel as %s", path, spec.architecture)
    contract = ModelContract.for_spec(spec, task=get_task(task), method="spandrel")
    return LoadedModel(net=net, contract=contract, source=path)


def _reference_model(obj: Any, path: Path, arch: str | None) -> LoadedModel:
    """Published weights of our zoo; NotReferenceWeights when they are none of its formats."""
    from translate.nets import PRESETS, is_generator, preset
    from translate.nets.reference import (
        NotReferenceWeights, detect_reference_generator, load_reference_generator, unwrap_published,
    )

    state_dict = unwrap_published(obj)  # BasicSR / Real-ESRGAN: {"params_ema": sd} or {"params": sd}
    if not isinstance(state_dict, Mapping) or not state_dict or \
            not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise NotReferenceWeights("neither a translate checkpoint nor a generator state dict")
    if arch is not None and arch not in PRESETS:
        raise TranslatorError(f"--arch: unknown preset {arch!r}; see `translate info presets`")
    spec = preset(arch) if arch is not None else detect_reference_generator(state_dict)
    if not is_generator(spec):
        raise TranslatorError(f"--arch {arch}: a discriminator, not a generator")
    net = load_reference_generator(state_dict, spec)
    # A net that enlarges is a super-resolution model whatever trained it.
    task = get_task("superres" if spec.scale > 1 else "custom")
    return LoadedModel(net=net.eval(), contract=ModelContract.for_spec(spec, task=task, method="reference"),
                       source=path)
