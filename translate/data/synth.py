"""Photo degradations that task pair makers compose (translate/tasks/): pure numpy/OpenCV, no torch.

Data contract: images are HxWxC uint8; each `random_*` step draws its strength from the
`np.random.Generator` passed in, so a seeded generator gives the same result and every call draws
fresh randomness. A zero maximum (or jpeg_quality_min = 0) switches a step off without drawing.
"""
from __future__ import annotations

import cv2
import numpy as np

from translate.errors import ConfigError, ImageError


def check_degradations(*, blur_sigma_max: float = 0.0, noise_std_max: float = 0.0, shot_noise_max: float = 0.0,
                       jpeg_quality_min: int = 0) -> None:
    """Raise ConfigError naming the synth option that is out of range."""
    if not 0 <= jpeg_quality_min <= 95:
        raise ConfigError(f"jpeg_quality_min: must be in [0, 95] (0 = no JPEG), got {jpeg_quality_min}")
    for name, value in (("blur_sigma_max", blur_sigma_max), ("noise_std_max", noise_std_max),
                        ("shot_noise_max", shot_noise_max)):
        if not value >= 0:
            raise ConfigError(f"{name}: must be >= 0, got {value}")


def random_blur(image: np.ndarray, rng: np.random.Generator, sigma_max: float) -> np.ndarray:
    """Gaussian blur with sigma ~ U[0, sigma_max] px."""
    if sigma_max <= 0:
        return image
    sigma = rng.uniform(0.0, sigma_max)
    if sigma <= 0.05:  # below this the 3-tap kernel is the identity anyway
        return image
    return cv2.GaussianBlur(image, (0, 0), sigma)


def random_gaussian_noise(image: np.ndarray, rng: np.random.Generator, std_max: float) -> np.ndarray:
    """Additive Gaussian noise (sensor read noise, film grain) with std ~ U[0, std_max] on the 0-255 scale."""
    if std_max <= 0:
        return image
    std = rng.uniform(0.0, std_max)
    noisy = image.astype(np.float32) + rng.normal(0.0, std, image.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def random_shot_noise(image: np.ndarray, rng: np.random.Generator, strength_max: float) -> np.ndarray:
    """Poisson (shot) noise: a pixel of value v becomes s * Poisson(v / s) with s ~ U[0, strength_max],
    so its std is sqrt(s * v): brighter pixels are noisier, as photon counting makes them."""
    if strength_max <= 0:
        return image
    strength = rng.uniform(0.0, strength_max)
    if strength <= 1e-3:
        return image
    noisy = rng.poisson(image.astype(np.float64) / strength) * strength
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def random_jpeg(image: np.ndarray, rng: np.random.Generator, quality_min: int) -> np.ndarray:
    """HxWx3 RGB through JPEG at quality ~ U{quality_min..95} (block and ringing artefacts)."""
    if quality_min <= 0:
        return image
    return jpeg(image, int(rng.integers(quality_min, 96)))


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """HxWx3 uint8 RGB through OpenCV's JPEG encoder and decoder at `quality` (1-100)."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError("synth: OpenCV could not JPEG-encode the degraded image")
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
