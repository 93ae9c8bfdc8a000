"""Inference: convert images with a trained generator (Translator, convert_folder), tiling maths.

Never imports training or augmentation code, so embedding a Translator stays light.
"""
from __future__ import annotations

__all__ = ["ConvertReport", "Translator", "convert_folder"]


def __getattr__(name: str):
    # Lazy: `translate.inference.tiling` must stay importable without loading torch.
    if name in __all__:
        from translate.inference import translator

        return getattr(translator, name)
    raise AttributeError(f"module 'translate.inference' has no attribute {name!r}")
