"""A registered training method: its CLI name and help, the class that trains it, its settings,
the config it starts from, and its named `train` flags (translate.methods.METHODS holds them)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from translate.config import Settings, TrainConfig

if TYPE_CHECKING:
    from translate.methods.base import GanMethod


@dataclass(frozen=True)
class Flag:
    """A named `train` flag (`--lambda-l1 X`) and the config fields it sets."""

    paths: tuple[str, ...]
    type: type
    help: str


@dataclass(frozen=True)
class MethodEntry:
    """One method as the registry, config resolution and the CLI see it.

    `defaults` are the method's paper defaults as config overrides (plain data; a string names a
    net preset), applied on TrainConfig's own defaults before any recipe or flag. Calling the entry
    with a config builds the method (`METHODS[config.method](config)`)."""

    name: str
    description: str
    build: type[GanMethod]  # the class that trains it
    settings: type[Settings]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    flags: Mapping[str, Flag] = field(default_factory=dict)

    @property
    def paired(self) -> bool:
        """Whether it trains on aligned (input, target) pairs (as tasks from photos need)."""
        return self.build.paired

    def __call__(self, config: TrainConfig) -> GanMethod:
        return self.build(config)

    def check_config(self, config: TrainConfig) -> None:
        """Nothing beyond its settings' own `check` (run whenever a config is made)."""
