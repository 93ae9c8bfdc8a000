"""Inference: load a generator with its facts (loading, contract), run it on images of any size
(Translator, over the padding/tiling `TiledRunner` in runner), convert folders (folder), with
device/precision/memory choices (device) and tiling maths (tiling).

Never imports training or augmentation code, so embedding a Translator stays light.
"""
from __future__ import annotations

_EXPORTS = {
    "Translator": "translator", "InferenceOptions": "options", "LoadedModel": "loading", "describe_model": "loading",
    "load_model": "loading", "load_models": "loading", "ModelContract": "contract", "ModelSource": "contract",
    "ConvertReport": "folder", "convert_folder": "folder",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # Lazy: `translate.inference.tiling` must stay importable without loading torch.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"translate.inference.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'translate.inference' has no attribute {name!r}")
