"""How methods and tasks plug their own settings into the config without config importing them.

A method or task owns a `Settings` dataclass (its YAML section, per-field ranges, cross-field rules);
the registries above config hand them in as `Plugins` wherever a config is read from plain data.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from translate.errors import ConfigError

if TYPE_CHECKING:
    from translate.config.schema import TrainConfig

Range = tuple[Callable[[Any], bool], str]  # (is the value allowed, what is allowed, for the message)


def finite_at_least(low: float, *, strict: bool = False) -> Callable[[Any], bool]:
    return lambda v: math.isfinite(v) and (v > low if strict else v >= low)


def within(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: low <= v < high


def count(minimum: int, want: str) -> Range:
    return (lambda v: v >= minimum), want


RATE: Range = (finite_at_least(0, strict=True), "a finite number > 0")
WEIGHT: Range = (finite_at_least(0), "a finite number >= 0")
WEIGHT_OR_OFF: Range = (finite_at_least(0), "a finite number >= 0 (0 = off)")
UNIT: Range = (within(0, 1), "in [0, 1)")
OFF: Range = count(0, "0 or more (0 = off)")


def check_ranges(obj: Any, ranges: Mapping[str, Range], prefix: str = "") -> None:
    """Each dotted field of `ranges` on its own: ConfigError naming the first bad one (with `prefix`)."""
    for name, (ok, want) in ranges.items():
        value = obj
        for part in name.split("."):
            value = getattr(value, part)
        if not ok(value):
            raise ConfigError(f"{prefix}{name}: must be {want}, got {value!r}")


class Settings:
    """Base of a method's or task's own settings dataclass.

    SECTION is its key in YAML and `--set` paths (`pix2pix.lambda_l1`, `superres.scale`); RANGES
    checks fields one by one; `check` holds rules that tie them to the rest of the config."""

    SECTION: ClassVar[str] = ""
    RANGES: ClassVar[Mapping[str, Range]] = {}

    def check(self, config: TrainConfig) -> None:
        """Raise ConfigError, saying how to fix it, for a combination this config cannot train with."""

    def without_augmentation(self) -> Settings:
        """These settings for validation pairs and `prepare`'s files: training-only augmentation off."""
        return self


class Plugin(Protocol):
    """What config needs of a registered method or task."""

    settings: type[Settings] | None

    def check_config(self, config: TrainConfig) -> None: ...


class MethodPlugin(Plugin, Protocol):
    paired: bool  # trains on aligned (input, target) pairs


class TaskPlugin(Plugin, Protocol):
    name: str
    from_photos: bool  # synthesises its inputs from target photos


@dataclass(frozen=True)
class Plugins:
    """The method and task registries (live mappings, so later registrations count) and the task
    names of older versions with the name that replaced each (0.2's `esrgan` -> `superres`)."""

    methods: Mapping[str, MethodPlugin]
    tasks: Mapping[str, TaskPlugin]
    renamed_tasks: Mapping[str, str] = field(default_factory=dict)

    def method(self, name: Any) -> MethodPlugin:
        if not isinstance(name, str) or name not in self.methods:
            raise ConfigError(f"method: unknown {name!r}; choose one of {', '.join(self.methods)}")
        return self.methods[name]

    def task(self, name: Any) -> TaskPlugin:
        if not isinstance(name, str) or name not in self.tasks:
            raise ConfigError(f"task: unknown {name!r}; choose one of {', '.join(self.tasks)}")
        return self.tasks[name]

    def check(self, config: TrainConfig) -> None:
        """The config's method and task go together, then the task's own rules (ConfigError otherwise)."""
        method, task = self.method(config.method), self.task(config.task)
        if task.from_photos and not (method.paired and config.direction == "a_to_b"):
            raise ConfigError(f"task: {task.name!r} synthesises its inputs from the target photos, so it trains "
                              f"a paired method a_to_b (e.g. pix2pix); drop --task for {config.method} / "
                              f"{config.direction}")
        method.check_config(config)
        task.check_config(config)
