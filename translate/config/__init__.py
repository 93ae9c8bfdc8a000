"""Training configuration: the schema (`schema`), how methods and tasks plug their settings in
(`plugins`), plain-data round trips (`dicts`), resolution (`resolve`) and 0.2 configs (`legacy`)."""
from translate.config.dicts import load_yaml, merge, parse_set
from translate.config.legacy import upgrade_v02
from translate.config.plugins import Plugin, Plugins, Settings
from translate.config.resolve import NAMED_SETTINGS, RESUMABLE, named_overrides, resolve_config, resume_config
from translate.config.schema import (
    DataConfig, GanConfig, GanLoss, OptimConfig, PerceptualConfig, RuntimeConfig, TrainConfig,
)
from translate.errors import ConfigError

__all__ = [
    "ConfigError", "DataConfig", "GanConfig", "GanLoss", "NAMED_SETTINGS", "OptimConfig", "PerceptualConfig",
    "Plugin", "Plugins", "RESUMABLE", "RuntimeConfig", "Settings", "TrainConfig", "load_yaml", "merge",
    "named_overrides", "parse_set", "resolve_config", "resume_config", "upgrade_v02",
]
