"""Runtime choices for a Translator: device, precision, tiling, mode, memory budget."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from translate.errors import TranslatorError

MODES: tuple[str, ...] = ("eval", "paper")


@dataclass(frozen=True)
class InferenceOptions:
    """Runtime choices for a Translator (never architecture, which comes with the model).

    device: auto, cpu, cuda, cuda:1 ...; precision: auto (fp16 on CUDA, bf16 on CPUs with native
    bf16, else fp32), fp32, bf16, fp16; tile_size / overlap_px: run images larger than tile_size
    as overlapping tiles (default: whole when the image fits `memory_budget_bytes`, default from
    the free memory); mode: eval (deterministic) or paper (the pix2pix paper's test-time batch
    statistics and dropout); channels_last: None picks what is faster for the net and device.
    """

    device: str | torch.device = "auto"
    precision: str = "auto"
    tile_size: int | None = None
    overlap_px: int | None = None
    mode: str = "eval"
    channels_last: bool | None = None
    memory_budget_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise TranslatorError(f"mode: {self.mode!r} must be one of {', '.join(MODES)}")
        if self.tile_size is not None and self.tile_size < 1:
            raise TranslatorError(f"tile_size: must be at least 1, got {self.tile_size}")
        if self.overlap_px is not None and self.overlap_px < 0:
            raise TranslatorError(f"overlap_px: must be >= 0, got {self.overlap_px}")
        if self.memory_budget_bytes is not None and self.memory_budget_bytes < 1:
            raise TranslatorError(f"memory_budget_bytes: must be at least 1, got {self.memory_budget_bytes}")

    def replace(self, **changes: Any) -> InferenceOptions:
        """A copy with `changes` (field names of this class)."""
        return dataclasses.replace(self, **changes)
