"""Task recipes: YAML overrides on top of a method's defaults, one packaged file per task.

Precedence (see `translate.config.resolve_config`): method defaults < recipe < --config file <
named flags < --set. Each recipe sets `task`, which makes training synthesise its pairs from
plain photos with `translate.data.synth.pair_maker`.
"""
from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from translate.errors import ConfigError

RECIPES: dict[str, str] = {
    "colorize": "grey -> colour: Lab lightness L (1 channel) in, chroma ab (2 channels) out",
    "sketch": "line drawing -> photo: Canny/XDoG sketches (1 channel) in, RGB out",
    "inpaint": "fill holes: RGB with mid-grey holes + alpha (known = 255) in, RGB out",
    "superres": "x4 super-resolution: degraded low-res RGB in, RGB at 4x the size out",
}


def load_recipe(task: str) -> dict[str, Any]:
    """The recipe's overrides as a nested dict, read from the packaged `<task>.yaml`."""
    if task not in RECIPES:
        raise ConfigError(f"task: unknown recipe {task!r}; choose one of {', '.join(RECIPES)} (or custom)")
    name = f"{task}.yaml"
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"recipes/{name}: expected a mapping of config keys at the top level")
    return data
