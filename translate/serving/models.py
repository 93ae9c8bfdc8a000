"""The models one service serves: loading several sources under names, and what `GET /models` and
`GET /model` say about each. A served model is its name -> {direction: Translator}."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from translate.direction import DIRECTIONS
from translate.errors import TranslatorError
from translate.inference.loading import load_models
from translate.inference.options import InferenceOptions
from translate.inference.translator import Translator

Served = dict[str, dict[str, Translator]]  # model name -> direction -> Translator
# What --models-dir picks up: run directories (they hold checkpoints/) and model files.
MODEL_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin")


def load_translators(source: str | os.PathLike, options: InferenceOptions | None = None, *,
                     direction: str | None = None, arch: str | None = None,
                     weights_dir: str | os.PathLike = "weights", trust_torchscript: bool = False,
                     extra_arches: bool = False) -> dict[str, Translator]:
    """direction -> Translator for every generator in `source` (both for CycleGAN), read once, or
    only `direction`'s; published weights (ours or spandrel's) give one, under "a_to_b"."""
    models = load_models(source, direction=direction, arch=arch, weights_dir=weights_dir,
                         trust_torchscript=trust_torchscript, extra_arches=extra_arches)
    return {model.direction or "a_to_b": Translator(model, options) for model in models}


def model_name(source: str | os.PathLike | None) -> str:
    """The name a source is served under: a run directory's name, a file's stem, a NAME as given."""
    if not source:
        return "model"
    path = Path(source)
    return path.name if path.is_dir() else path.stem or str(source)


def sources_in(folder: str | os.PathLike) -> list[Path]:
    """The run directories and model files directly inside `folder`, sorted by name (--models-dir)."""
    root = Path(folder)
    if not root.is_dir():
        raise TranslatorError(f"--models-dir: {folder} is not a folder")
    found = sorted(p for p in root.iterdir() if (p.is_dir() and (p / "checkpoints").is_dir())
                   or (p.is_file() and p.suffix.lower() in MODEL_SUFFIXES))
    if not found:
        raise TranslatorError(f"--models-dir: {folder} holds no run directory (with checkpoints/) and no "
                              f"model file ({', '.join(MODEL_SUFFIXES)})")
    return found


def load_served(sources: Sequence[str | os.PathLike], options: InferenceOptions | None = None,
                **source_options: Any) -> Served:
    """Every source loaded (as `load_translators`) under its `model_name`; two sources of one
    name are an error, since a client could not tell them apart."""
    if not sources:
        raise TranslatorError("serve: name at least one model (run directory, checkpoint, weights file) "
                              "or --models-dir DIR")
    served: Served = {}
    for source in sources:
        name = model_name(source)
        if name in served:
            raise TranslatorError(f"{source}: a model named {name!r} is already served; serve one of "
                                  f"them from a folder or file of another name")
        served[name] = load_translators(source, options, **source_options)
    return served


def as_served(models: Translator | Mapping[str, Any]) -> Served:
    """Normalise `create_app`'s argument: a Translator, a direction -> Translator mapping (one
    model), or a name -> {direction: Translator} mapping (several)."""
    if isinstance(models, Translator):
        return {model_name(models.model.source): {models.model.direction or "a_to_b": models}}
    items = dict(models)
    if items and all(isinstance(value, Translator) for value in items.values()):
        first = next(iter(items.values()))
        items = {model_name(first.model.source): items}
    served = {str(name): dict(translators) for name, translators in items.items()}
    for name, translators in served.items():
        if not translators or any(d not in DIRECTIONS or not isinstance(t, Translator)
                                  for d, t in translators.items()):
            raise ValueError(f"models: {name!r} must map directions among {DIRECTIONS} to Translators")
    if not served:
        raise ValueError("models: expected at least one Translator")
    return served


def model_entry(name: str, translators: Mapping[str, Translator]) -> dict[str, Any]:
    """One model's entry in GET /models: its name, contract (task, method, channels, scale, size
    rules), directions and whether it takes a mask. The one place that says what a served model
    is; no path of the server's file system (the source) goes out."""
    facts = next(iter(translators.values())).contract.to_dict()
    facts.pop("direction")  # a served model answers in each of `directions`
    return {"name": name, **facts, "directions": list(translators)}


def model_info(translators: Mapping[str, Translator], limits: Mapping[str, Any],
               output_formats: Iterable[str], input_types: Iterable[str]) -> dict[str, Any]:
    """GET /model: the default translator's contract, the directions, formats and limits. The
    training config stays out: it names the trainer's folders, and a consumer needs none of it."""
    from translate.export.write import model_contract

    default_direction = next(iter(translators))
    default = translators[default_direction]
    contract = model_contract(default, config={})
    contract.pop("config")
    if contract.get("direction") is None:  # a net without one: "directions" says what there is
        contract.pop("direction", None)
    return {
        **contract,
        "directions": list(translators),
        "default_direction": default_direction,
        "output_formats": list(output_formats),
        "input_types": list(input_types),
        "takes_mask": default.contract.takes_mask,  # whether POST /translate accepts a mask
        # max_pixels bounds the output: input pixels times scale**2 for super-resolution nets.
        "limits": dict(limits),
        "device": str(default.device),
        "precision": default.precision,
    }
