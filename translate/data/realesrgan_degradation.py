"""Real-ESRGAN's second-order degradation model (Wang et al. 2021, "Real-ESRGAN: Training Real-World
Blind Super-Resolution with Pure Synthetic Data", section 3): pure numpy/SciPy/OpenCV, no torch.

A photo goes twice through blur -> random resize -> Gaussian or Poisson noise -> JPEG, then through
a final resize to 1/scale with a sinc (ringing) filter and JPEG in random order. Every strength is
drawn first (`draw_plan`, a `DegradationPlan` that says what was drawn), then applied (`degrade`);
the noise itself comes from the same generator, so one seeded `np.random.Generator` gives one
result. Defaults are the published training options (`RealESRGANRanges`).

Data contract: images are HxWx3 uint8 RGB in and out; in between they are float32 in [0, 1].
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from scipy import special

from translate.data import synth

KernelKind = Literal["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
KERNEL_KINDS: tuple[KernelKind, ...] = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                                        "plateau_aniso")
KERNEL_SIZES = tuple(range(7, 22, 2))  # odd sizes 7..21, drawn uniformly for every kernel
RESIZE_MODES = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


@dataclass(frozen=True)
class StageRanges:
    """What one degradation order draws from (the Real-ESRGAN x4plus training options)."""

    blur_prob: float  # chance the stage blurs at all
    kernel_probs: tuple[float, ...]  # per KERNEL_KINDS entry
    sinc_prob: float  # chance the blur is a sinc instead of one of KERNEL_KINDS
    blur_sigma: tuple[float, float]  # px, for both axes of anisotropic kernels
    betag: tuple[float, float]  # generalized Gaussian shape
    betap: tuple[float, float]  # plateau shape
    resize_probs: tuple[float, float, float]  # up, down, keep
    resize_range: tuple[float, float]  # factor when down: [low, 1]; when up: [1, high]
    gaussian_noise_prob: float  # else Poisson noise
    noise_sigma: tuple[float, float]  # Gaussian noise std on the 0-255 scale
    poisson_scale: tuple[float, float]
    gray_noise_prob: float  # the same noise on all three channels
    jpeg_quality: tuple[int, int]


@dataclass(frozen=True)
class RealESRGANRanges:
    """Both orders plus the final sinc (options/train_realesrgan_x4plus.yml of the reference code)."""

    first: StageRanges = StageRanges(
        blur_prob=1.0, kernel_probs=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03), sinc_prob=0.1, blur_sigma=(0.2, 3.0),
        betag=(0.5, 4.0), betap=(1.0, 2.0), resize_probs=(0.2, 0.7, 0.1), resize_range=(0.15, 1.5),
        gaussian_noise_prob=0.5, noise_sigma=(1.0, 30.0), poisson_scale=(0.05, 3.0), gray_noise_prob=0.4,
        jpeg_quality=(30, 95))
    second: StageRanges = StageRanges(
        blur_prob=0.8, kernel_probs=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03), sinc_prob=0.1, blur_sigma=(0.2, 1.5),
        betag=(0.5, 4.0), betap=(1.0, 2.0), resize_probs=(0.3, 0.4, 0.3), resize_range=(0.3, 1.2),
        gaussian_noise_prob=0.5, noise_sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5), gray_noise_prob=0.4,
        jpeg_quality=(30, 95))
    final_sinc_prob: float = 0.8


# ---------------------------------------------------------------------------- kernels
def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """size x size grid of C^T Sigma^-1 C at offsets C from the centre, Sigma = R diag(sx^2, sy^2) R^T."""
    offsets = np.arange(size, dtype=np.float64) - size // 2
    xx, yy = np.meshgrid(offsets, offsets)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    inverse = np.linalg.inv(rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T)
    return inverse[0, 0] * xx * xx + (inverse[0, 1] + inverse[1, 0]) * xx * yy + inverse[1, 1] * yy * yy


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """k(C) proportional to exp(-C^T Sigma^-1 C / 2), normalised to sum 1 (isotropic: sigma_x = sigma_y)."""
    kernel = np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta))
    return kernel / kernel.sum()


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """k(C) proportional to exp(-(C^T Sigma^-1 C)^beta / 2) (paper eq. 2 with the reference code's
    exponent: beta = 1 is the Gaussian, larger beta flatter tops and sharper edges)."""
    kernel = np.exp(-0.5 * np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta))
    return kernel / kernel.sum()


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """k(C) proportional to 1 / (1 + (C^T Sigma^-1 C)^beta): a flat top with heavy tails."""
    kernel = 1.0 / (1.0 + np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta))
    return kernel / kernel.sum()


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Circularly symmetric ideal low-pass (2-D sinc) with cutoff omega_c in radians (pi = Nyquist):
    k(r) = omega_c J1(omega_c r) / (2 pi r), k(0) = omega_c^2 / (4 pi) (its limit), normalised to sum 1.
    Models the ringing and overshoot that sharpening and band-limited resampling leave."""
    offsets = np.arange(size, dtype=np.float64) - size // 2
    radius = np.hypot(*np.meshgrid(offsets, offsets))
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = cutoff * special.j1(cutoff * radius) / (2 * np.pi * radius)
    kernel[size // 2, size // 2] = cutoff**2 / (4 * np.pi)
    return kernel / kernel.sum()


def _draw_beta(rng: np.random.Generator, beta_range: tuple[float, float]) -> float:
    # As the reference draws it: half the time below 1, half the time above (assumes low <= 1 <= high).
    return float(rng.uniform(beta_range[0], 1.0) if rng.uniform() < 0.5 else rng.uniform(1.0, beta_range[1]))


def _draw_sinc(rng: np.random.Generator, size: int) -> np.ndarray:
    # Small kernels cannot hold a low cutoff's wide lobes: the reference keeps them above pi/3.
    low = np.pi / 3 if size < 13 else np.pi / 5
    return sinc_kernel(size, float(rng.uniform(low, np.pi)))


def draw_blur_kernel(rng: np.random.Generator, ranges: StageRanges) -> np.ndarray:
    """One blur kernel as a stage draws it: size from KERNEL_SIZES; a sinc with `sinc_prob`, else a
    kind from KERNEL_KINDS; sigmas from `blur_sigma`, a rotation in [-pi, pi] when anisotropic."""
    size = int(rng.choice(KERNEL_SIZES))
    if rng.uniform() < ranges.sinc_prob:
        return _draw_sinc(rng, size)
    kind = KERNEL_KINDS[int(rng.choice(len(KERNEL_KINDS), p=ranges.kernel_probs))]
    sigma_x = float(rng.uniform(*ranges.blur_sigma))
    sigma_y, theta = sigma_x, 0.0
    if kind.endswith("aniso"):
        sigma_y, theta = float(rng.uniform(*ranges.blur_sigma)), float(rng.uniform(-np.pi, np.pi))
    if kind.startswith("generalized"):
        return generalized_gaussian_kernel(size, sigma_x, sigma_y, theta, _draw_beta(rng, ranges.betag))
    if kind.startswith("plateau"):
        return plateau_kernel(size, sigma_x, sigma_y, theta, _draw_beta(rng, ranges.betap))
    return gaussian_kernel(size, sigma_x, sigma_y, theta)


# ---------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Noise:
    kind: Literal["gaussian", "poisson"]
    strength: float  # Gaussian: std on the 0-255 scale; Poisson: the noise's scale factor
    gray: bool  # one noise image for all channels (luminance noise) instead of one per channel


@dataclass(frozen=True)
class Stage:
    kernel: np.ndarray | None  # None: this stage does not blur
    resize_factor: float  # of the current size (first stage) or of the output size (second stage)
    resize_mode: str  # a RESIZE_MODES key
    noise: Noise
    jpeg_quality: int


@dataclass(frozen=True)
class DegradationPlan:
    """Everything drawn for one image; `degrade` applies it."""

    first: Stage
    second: Stage
    final_sinc: np.ndarray | None  # None: no final sinc filter
    final_mode: str  # a RESIZE_MODES key, for the resize to the output size
    final_jpeg_quality: int
    sinc_before_jpeg: bool  # [resize + sinc] then JPEG, or JPEG then [resize + sinc]


def _draw_stage(rng: np.random.Generator, ranges: StageRanges) -> Stage:
    kernel = draw_blur_kernel(rng, ranges) if rng.uniform() < ranges.blur_prob else None
    direction = int(rng.choice(3, p=ranges.resize_probs))  # up, down, keep
    factor = (float(rng.uniform(1.0, ranges.resize_range[1])), float(rng.uniform(ranges.resize_range[0], 1.0)),
              1.0)[direction]
    mode = str(rng.choice(list(RESIZE_MODES)))
    gaussian = rng.uniform() < ranges.gaussian_noise_prob
    strength = float(rng.uniform(*(ranges.noise_sigma if gaussian else ranges.poisson_scale)))
    noise = Noise("gaussian" if gaussian else "poisson", strength, gray=bool(rng.uniform() < ranges.gray_noise_prob))
    quality = int(rng.integers(ranges.jpeg_quality[0], ranges.jpeg_quality[1] + 1))
    return Stage(kernel, factor, mode, noise, quality)


def draw_plan(rng: np.random.Generator, ranges: RealESRGANRanges = RealESRGANRanges()) -> DegradationPlan:
    """Draw both orders' blur, resize, noise and JPEG, and the final sinc, resize mode, JPEG and order."""
    first, second = _draw_stage(rng, ranges.first), _draw_stage(rng, ranges.second)
    final_sinc = None
    if rng.uniform() < ranges.final_sinc_prob:  # the reference's final sinc: cutoff in [pi/3, pi] at every size
        final_sinc = sinc_kernel(int(rng.choice(KERNEL_SIZES)), float(rng.uniform(np.pi / 3, np.pi)))
    final_mode = str(rng.choice(list(RESIZE_MODES)))
    quality = int(rng.integers(ranges.second.jpeg_quality[0], ranges.second.jpeg_quality[1] + 1))
    return DegradationPlan(first, second, final_sinc, final_mode, quality, sinc_before_jpeg=bool(rng.uniform() < 0.5))


# ---------------------------------------------------------------------------- applying it
def _filter(image: np.ndarray, kernel: np.ndarray | None) -> np.ndarray:
    # Every kernel here is point-symmetric, so OpenCV's correlation is the convolution; reflect-101
    # borders as the reference's reflect padding.
    return image if kernel is None else cv2.filter2D(image, -1, kernel.astype(np.float32),
                                                     borderType=cv2.BORDER_REFLECT_101)


def _resize(image: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    size = (max(1, width), max(1, height))
    if size == (image.shape[1], image.shape[0]):
        return image
    return cv2.resize(image, size, interpolation=RESIZE_MODES[mode])


def add_noise(image: np.ndarray, noise: Noise, rng: np.random.Generator) -> np.ndarray:
    """Gaussian: N(0, (sigma/255)^2) per pixel. Poisson: the photon-count noise of the image with as
    many levels as it has distinct 8-bit values (next power of two), times `strength`."""
    height, width = image.shape[:2]
    if noise.kind == "gaussian":
        shape = (height, width, 1) if noise.gray else image.shape
        delta = rng.standard_normal(shape).astype(np.float32) * (noise.strength / 255.0)
    else:
        source = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None] if noise.gray else image
        source = np.clip(np.rint(source * 255.0), 0, 255) / 255.0
        levels = 2.0 ** math.ceil(math.log2(max(len(np.unique(source)), 1)))
        delta = ((rng.poisson(source * levels) / levels - source) * noise.strength).astype(np.float32)
    return np.clip(image + delta, 0.0, 1.0)  # a grey delta (HxWx1) broadcasts to all three channels


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    # JPEG stores 8-bit samples: the image is rounded here, as the reference's JPEG quantises it.
    as_bytes = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return synth.jpeg(as_bytes, quality).astype(np.float32) / 255.0


def _stage(image: np.ndarray, stage: Stage, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    image = _filter(image, stage.kernel)
    image = _resize(image, int(size[0] * stage.resize_factor), int(size[1] * stage.resize_factor), stage.resize_mode)
    image = add_noise(image, stage.noise, rng)
    return _jpeg(image, stage.jpeg_quality)


def degrade(photo: np.ndarray, plan: DegradationPlan, rng: np.random.Generator, *, scale: int) -> np.ndarray:
    """HxWx3 uint8 -> (H//scale)x(W//scale)x3 uint8 through `plan`; noise samples come from `rng`.

    The first order resizes relative to the photo, the second relative to the output size (H//scale),
    and the final resize lands exactly on the output size, as in the reference.
    """
    height, width = photo.shape[0] // scale, photo.shape[1] // scale
    image = photo.astype(np.float32) / 255.0
    image = _stage(image, plan.first, photo.shape[:2], rng)
    image = _stage(image, plan.second, (height, width), rng)
    if plan.sinc_before_jpeg:
        image = _jpeg(_filter(_resize(image, height, width, plan.final_mode), plan.final_sinc), plan.final_jpeg_quality)
    else:
        image = _filter(_resize(_jpeg(image, plan.final_jpeg_quality), height, width, plan.final_mode), plan.final_sinc)
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def unsharp_mask(image: np.ndarray, *, weight: float = 0.5, radius: int = 51, threshold: int = 10) -> np.ndarray:
    """Real-ESRGAN's sharpened targets (USM): I + weight (I - G*I) where |I - G*I| exceeds threshold
    (0-255 scale), blended in through a blurred mask so no edge of the mask shows. HxWx3 uint8."""
    image = image.astype(np.float32) / 255.0
    blurred = cv2.GaussianBlur(image, (radius, radius), 0)
    residual = image - blurred
    mask = cv2.GaussianBlur((np.abs(residual) * 255.0 > threshold).astype(np.float32), (radius, radius), 0)
    sharp = np.clip(image + weight * residual, 0.0, 1.0)
    return np.clip(np.rint((mask * sharp + (1.0 - mask) * image) * 255.0), 0, 255).astype(np.uint8)
