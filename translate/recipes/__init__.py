"""Recipes: YAML files here, each naming a task and a method with their settings (superres.yaml is
the superres task's default recipe; srgan, esrgan and realesrgan are more superres recipes). This
package also joins the registries for config: `PLUGINS` and the config functions bound to them.

Precedence, lowest first: TrainConfig's defaults, the method's defaults (`MethodEntry.defaults`),
the recipe, `--config FILE`, named flags, `--set KEY=VALUE`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from translate.config import Plugins, TrainConfig, upgrade_v02
from translate.config import resolve_config as _resolve
from translate.config import resume_config as _resume
from translate.errors import ConfigError
from translate.methods import METHODS
from translate.tasks import RENAMED_TASKS, TASKS

__all__ = ["PLUGINS", "config_from_dict", "load_recipe", "recipe_layer", "recipe_names", "resolve_config", "resume_config"]

# Live views of the registries: a method or task registered later (METHODS["x"] = ...) counts too.
PLUGINS = Plugins(methods=METHODS, tasks=TASKS, renamed_tasks=RENAMED_TASKS)


def recipe_names() -> list[str]:
    """The packaged recipes, by name (their file names without .yaml)."""
    files = resources.files(__package__).iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def load_recipe(name: str) -> dict[str, Any]:
    """A recipe's config overrides (with its `task` and `method`); ConfigError naming the choices."""
    import yaml  # training only: conversion never reads a recipe

    if name not in recipe_names():
        raise ConfigError(f"recipe: unknown {name!r}; choose one of {', '.join(recipe_names())}")
    data = yaml.safe_load(resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("task"), str):
        raise ConfigError(f"recipes/{name}.yaml: expected a mapping of config keys with a task")
    return data


def recipe_layer(task: str | None, recipe: str | None) -> dict[str, Any]:
    """The recipe `--task` / `--recipe` pick (a task's default recipe is named after it); {} for none."""
    if recipe is None and task in RENAMED_TASKS:
        raise ConfigError(f"task: {task!r} is a recipe now; use --task {RENAMED_TASKS[task]} --recipe {task}")
    if recipe is None:
        recipe = task if task in recipe_names() else None
    if recipe is None:
        return {"task": task} if task else {}
    layer = load_recipe(recipe)
    if task and layer["task"] != task:
        raise ConfigError(f"recipe: {recipe!r} is a {layer['task']} recipe, not a {task} one; "
                          f"drop --task or use --task {layer['task']}")
    return layer


def resolve_config(method: str | None = None, *, task: str | None = None, recipe: str | None = None,
                   config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                   assignments: Sequence[str] = ()) -> TrainConfig:
    """A new run's config: the method's defaults < the recipe (`recipe`, else the task's default one)
    < `config_file` < `overrides` ({dotted path: value}) < `assignments` ("KEY=VALUE", in order).
    Without `method`, the recipe's method; ConfigError when neither names one."""
    layer = recipe_layer(task, recipe)
    wanted = layer.get("method")
    method = method or wanted
    if not method:
        raise ConfigError(f"method: name one ({', '.join(METHODS)}), or a --task with a recipe")
    if wanted and method != wanted:
        raise ConfigError(f"method: the {layer['task']} recipe trains {wanted}, not {method}; drop the method "
                          f"or the --task / --recipe")
    entry = PLUGINS.method(method)
    layers = [{"method": method}, dict(entry.defaults), {k: v for k, v in layer.items() if k != "method"}]
    return _resolve(layers, plugins=PLUGINS, config_file=config_file, overrides=overrides, assignments=assignments)


def resume_config(saved: dict[str, Any], *, overrides: Mapping[str, Any] | None = None,
                  assignments: Sequence[str] = ()) -> TrainConfig:
    """A saved run's config (0.2 ones upgraded) with runtime changes only (translate.config.RESUMABLE)."""
    return _resume(saved, plugins=PLUGINS, overrides=overrides, assignments=assignments)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """A config from plain data, e.g. a checkpoint's embedded one (0.2 ones upgraded)."""
    return TrainConfig.from_dict(upgrade_v02(data, PLUGINS), PLUGINS)
