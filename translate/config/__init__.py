"""Training configuration: the schema (`schema`), plain-data round trips (`dicts`) and resolution (`resolve`)."""
from translate.config.dicts import load_yaml, merge, parse_set
from translate.config.resolve import NAMED_SETTINGS, RESUMABLE, named_overrides, resolve_config, resume_config
from translate.config.schema import (
    CUTConfig, CycleGANConfig, DataConfig, GanConfig, GanLoss, InpaintConfig, Method, OptimConfig, PerceptualConfig,
    Pix2PixConfig, RuntimeConfig, SynthConfig, TrainConfig, default_config,
)
from translate.errors import ConfigError

__all__ = [
    "ConfigError", "CUTConfig", "CycleGANConfig", "DataConfig", "GanConfig", "GanLoss", "InpaintConfig", "Method",
    "NAMED_SETTINGS", "OptimConfig", "PerceptualConfig", "Pix2PixConfig", "RESUMABLE", "RuntimeConfig", "SynthConfig",
    "TrainConfig", "default_config", "load_yaml", "merge", "named_overrides", "parse_set", "resolve_config", "resume_config",
]
