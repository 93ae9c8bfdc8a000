"""Image quality figures. PSNR, SSIM (scikit-image's) and colourfulness need nothing more; the learned metrics —
LPIPS (paired), FID and KID (generated vs real image sets) — need the optional `[metrics]` extra
(lpips, torch-fidelity) and feature weights, which are located, never downloaded.

Images cross this API as HxWxC numpy arrays: uint8 RGB for the learned metrics; uint8 (data_range
255) or floats in [0, 1] (data_range 1) for PSNR/SSIM. Nothing here imports lpips or torch-fidelity
until a learned metric is computed.
"""
from __future__ import annotations

from translate.metrics.pixel import SSIM_MIN_SIDE, colourfulness, psnr, ssim
from translate.metrics.protocol import (
    DEFAULT_PROTOCOL,
    LEARNED_METRICS,
    PROTOCOLS,
    MetricWeights,
    Protocol,
    get_protocol,
    why_unavailable,
)

__all__ = ["SSIM_MIN_SIDE", "colourfulness", "psnr", "ssim", "DEFAULT_PROTOCOL", "LEARNED_METRICS", "PROTOCOLS", "MetricWeights",
           "Protocol", "get_protocol", "why_unavailable", "fid_kid", "lpips_distances", "InceptionNet", "LpipsNet",
           "frechet_distance", "kernel_inception_distance", "scores_from_features"]

_LAZY = {"fid_kid": "distribution", "InceptionNet": "distribution", "frechet_distance": "distribution",
         "kernel_inception_distance": "distribution", "scores_from_features": "distribution",
         "lpips_distances": "perceptual", "LpipsNet": "perceptual"}


def __getattr__(name: str):
    # The learned metrics pull in torch; `from translate.metrics import psnr` should not.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"translate.metrics.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'translate.metrics' has no attribute {name!r}")
