"""restore: old-photo restoration. A photo degraded by mild blur, shot (Poisson) and Gaussian noise
and JPEG artefacts -> the clean photo, RGB -> RGB at the same size. Inference is the generic adapter;
evaluation compares with OpenCV's non-local means denoiser."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from translate.data.images import to_channels, to_uint8
from translate.config import Settings
from translate.tasks.base import PairMaker, Task, rgb8

# Non-local means filter strength h (luminance, colour) on the 0-255 scale. On 256 px skimage photos
# with the recipe's degradations, h = 5-7 gave the best PSNR; OpenCV's example value 10 smears detail.
NLM_STRENGTH = (6.0, 6.0)


def restore_pair(photo: np.ndarray, rng: np.random.Generator, *, blur_sigma_max: float = 1.0,
                 shot_noise_max: float = 1.0, noise_std_max: float = 10.0,
                 jpeg_quality_min: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """(degraded HxWx3, photo HxWx3) uint8, same size. In the order an old print picks them up:
    lens/print blur (sigma ~ U[0, blur_sigma_max] px), grain that grows with brightness (Poisson,
    `synth.random_shot_noise`), sensor/scan noise (Gaussian, std ~ U[0, noise_std_max]), then the
    JPEG it was shared as (quality ~ U{jpeg_quality_min..95}). Each strength is drawn per call."""
    from translate.data import synth  # training-pair code stays off the conversion path

    synth.check_degradations(blur_sigma_max=blur_sigma_max, noise_std_max=noise_std_max,
                             shot_noise_max=shot_noise_max, jpeg_quality_min=jpeg_quality_min)
    photo = rgb8(photo)
    degraded = synth.random_blur(photo, rng, blur_sigma_max)
    degraded = synth.random_shot_noise(degraded, rng, shot_noise_max)
    degraded = synth.random_gaussian_noise(degraded, rng, noise_std_max)
    degraded = synth.random_jpeg(degraded, rng, jpeg_quality_min)
    return np.ascontiguousarray(degraded), photo


def denoise_nlm(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB -> uint8 RGB through cv2.fastNlMeansDenoisingColored (Buades et al. 2005): the baseline."""
    rgb = np.ascontiguousarray(to_uint8(to_channels(image, 3)))
    luminance, colour = NLM_STRENGTH
    bgr = cv2.fastNlMeansDenoisingColored(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), None, luminance, colour, 7, 21)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class RestoreSettings(Settings):
    """How restore degrades photos into its training inputs (YAML `restore:`; strengths drawn from [0, max])."""

    SECTION: ClassVar[str] = "restore"
    blur_sigma_max: float = 0.0  # Gaussian blur sigma (px)
    noise_std_max: float = 0.0  # Gaussian noise std (0-255 scale)
    shot_noise_max: float = 0.0  # Poisson noise of std sqrt(s * value)
    jpeg_quality_min: int = 0  # JPEG artefacts at quality in [min, 95]; 0 = none


class Restore(Task):
    name = "restore"
    description = "old-photo restoration: blurred, noisy, JPEG-damaged RGB in, clean RGB (same size) out"
    baseline_description = "OpenCV non-local means denoising (fastNlMeansDenoisingColored) of the same input"

    settings = RestoreSettings

    def pair_maker(self, synth: RestoreSettings) -> PairMaker:
        return functools.partial(restore_pair, blur_sigma_max=synth.blur_sigma_max,
                                 shot_noise_max=synth.shot_noise_max, noise_std_max=synth.noise_std_max,
                                 jpeg_quality_min=synth.jpeg_quality_min)

    def baseline(self, net_input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return denoise_nlm(net_input)
