"""Resolving a run's config: defaults < method defaults < recipe < config file < named flags < --set;
what resume may change. The method and task registries come in as `Plugins` (config imports neither)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from translate.config.dicts import leaf_paths, load_yaml, merge, nested, parse_set
from translate.config.legacy import upgrade_v02
from translate.config.plugins import Plugins
from translate.config.schema import RuntimeConfig, TrainConfig
from translate.errors import ConfigError

_PRESET_KEYS = ("generator", "discriminator")  # a string there names a preset


# Named settings (the `train` command's flags) -> the config fields each one sets.
NAMED_SETTINGS: dict[str, tuple[str, ...]] = {
    "data": ("data.root",), "epochs": ("optim.epochs",), "epochs_decay": ("optim.epochs_decay",),
    "batch_size": ("optim.batch_size",), "lr": ("optim.lr_g", "optim.lr_d"),
    "load_size": ("data.load_size",), "crop_size": ("data.crop_size",),
    "generator": ("generator",), "discriminator": ("discriminator",), "norm": ("generator.norm",),
    "base_channels": ("generator.base_channels",), "in_channels": ("generator.in_channels",),
    "out_channels": ("generator.out_channels",), "gan_loss": ("gan.loss",),
    "direction": ("direction",), "val_fraction": ("data.val_fraction",), "max_steps": ("runtime.max_steps",),
    "device": ("runtime.device",), "amp": ("runtime.amp",), "channels_last": ("runtime.channels_last",),
    "compile": ("runtime.compile",), "workers": ("data.workers",), "seed": ("runtime.seed",),
    "init_from": ("init_from",),
    "val_metric": ("runtime.val_metric",), "val_every_epochs": ("runtime.val_every_epochs",),
}

# What `train --resume` may change: runtime choices that leave the run's meaning alone. The seed
# and batch-norm synchronisation would make the resumed run differ from an uninterrupted one.
RESUMABLE = frozenset({f"runtime.{f.name}" for f in dataclasses.fields(RuntimeConfig)}
                      - {"runtime.seed", "runtime.sync_batchnorm"} | {"data.workers"})


def named_overrides(**named: Any) -> dict[str, Any]:
    """Named settings -> {dotted field path: value}, None meaning not given (lr sets lr_g and lr_d)."""
    unknown = sorted(set(named) - set(NAMED_SETTINGS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: not a named setting (valid: {', '.join(NAMED_SETTINGS)})")
    return {path: value for name, value in named.items() if value is not None for path in NAMED_SETTINGS[name]}


def resolve_config(layers: Sequence[Mapping[str, Any]], *, plugins: Plugins, config_file: str | Path | None = None,
                   overrides: Mapping[str, Any] | None = None, assignments: Sequence[str] = ()) -> TrainConfig:
    """`layers` (e.g. the method's defaults, then a recipe) < config file < `overrides` < `assignments`
    (--set KEY=VALUE, in order), on top of TrainConfig's defaults.

    `overrides` maps dotted paths to values, e.g. {"generator": "unet_128", "optim.lr_g": 1e-4};
    presets (a string for generator / discriminator) apply first, so field values refine them. A
    config file written for 0.2 (`synth:`, every method's section) is upgraded first."""
    data = TrainConfig().to_dict()
    for layer in layers:
        data = merge(data, dict(layer))
    if config_file:
        data = merge(data, upgrade_v02(load_yaml(config_file), plugins, method=data["method"], task=data["task"]))
    for path, value in sorted((overrides or {}).items(), key=lambda item: item[0] not in _PRESET_KEYS):
        data = merge(data, nested(path, value))
    for item in assignments:
        data = merge(data, parse_set([item]))
    return TrainConfig.from_dict(data, plugins)


def resume_config(saved: dict[str, Any], *, plugins: Plugins, overrides: Mapping[str, Any] | None = None,
                  assignments: Sequence[str] = ()) -> TrainConfig:
    """A run's saved config (0.2 ones upgraded) with runtime changes only (RESUMABLE); anything else
    is a ConfigError."""
    saved = upgrade_v02(saved, plugins)
    changes = [nested(path, value) for path, value in (overrides or {}).items()]
    changes += [parse_set([item]) for item in assignments]
    for change in changes:
        for path in leaf_paths(change):
            if path not in RESUMABLE:
                raise ConfigError(f"{path}: cannot change on resume (the run's checkpoint fixes architecture, "
                                  f"data and training); only runtime settings such as --max-steps, --device may")
        saved = merge(saved, change)
    return TrainConfig.from_dict(saved, plugins)
