"""PSNR and SSIM (scikit-image's) and the colourfulness figure, shared by validation and evaluation.

Inputs are HxWxC arrays of the same shape and dtype family: uint8 (data_range 255) or floats in
[0, 1] (data_range 1). The learned metrics (FID, KID, LPIPS) are not here: they need weights.
"""
from __future__ import annotations

import numpy as np

# SSIM's default 7x7 Gaussian window needs both sides at least this long.
SSIM_MIN_SIDE = 7


def psnr(output: np.ndarray, target: np.ndarray, *, data_range: float, region: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB; with `region` (HxW bool) only those pixels count.
    Identical images give +inf, as scikit-image does."""
    from skimage.metrics import peak_signal_noise_ratio

    if region is None:
        with np.errstate(divide="ignore"):
            return float(peak_signal_noise_ratio(target, output, data_range=data_range))
    diff = output.astype(np.float64) - target.astype(np.float64)
    mse = float((diff**2)[region].mean()) if region.any() else 0.0
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def ssim(output: np.ndarray, target: np.ndarray, *, data_range: float) -> float:
    """Structural similarity over all channels; NaN for images smaller than SSIM's window."""
    from skimage.metrics import structural_similarity

    if min(output.shape[:2]) < SSIM_MIN_SIDE:
        return float("nan")
    return float(structural_similarity(target, output, channel_axis=2, data_range=data_range))


def colourfulness(image: np.ndarray) -> float:
    """Hasler & Suesstrunk's colourfulness M of an HxWx3 RGB image ("Measuring colourfulness in natural
    images", 2003, eq. 3), on the 0-255 scale whatever the dtype (uint8, uint16, or floats in [0, 1]).

    With rg = R - G and yb = (R + G) / 2 - B per pixel, and mean / standard deviation over the image:
        M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)
    0 for any grey image; the paper's scale calls 15 "slightly", 33 "moderately", 59 "quite"
    colourful. Colorization reports it so that a grey answer cannot win on PSNR unnoticed.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"colourfulness: expected HxWx3 RGB, got shape {image.shape}")
    scale = 255.0 / (np.iinfo(image.dtype).max if np.issubdtype(image.dtype, np.integer) else 1.0)
    red, green, blue = (image[:, :, i].astype(np.float64) * scale for i in range(3))
    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mean = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(spread + 0.3 * mean)
