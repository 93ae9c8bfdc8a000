"""superres: a degraded low-resolution photo -> the photo at `scale` times the size. Inference is
the generic adapter (the generator's own upscale enlarges); evaluation compares with bicubic."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import cv2
import numpy as np

from translate.config import Settings
from translate.errors import ConfigError, ImageError
from translate.tasks.base import PairMaker, Task, display_rgb, rgb8

if TYPE_CHECKING:
    from translate.config import TrainConfig

SCALES = (1, 2, 3, 4, 8)
DOWNSCALES = ("area", "bicubic", "bilinear", "cv2_cubic", "cv2_linear")
DOWNSCALE_NAMES = {  # for reports
    "area": "box average (cv2 INTER_AREA)", "bicubic": "anti-aliased bicubic (Pillow, MATLAB imresize)",
    "bilinear": "anti-aliased bilinear (Pillow)", "cv2_cubic": "cv2 INTER_CUBIC (aliases)",
    "cv2_linear": "cv2 INTER_LINEAR (aliases)"}


@dataclass(frozen=True)
class ShrinkKernel:
    """One common way a small photo is made: a little Gaussian blur (sigma in high-res px), a resize
    by `downscale` (see `shrink`), then JPEG. Training draws sigma / quality uniformly from the
    ranges; `translate eval --shrinks` uses each range's midpoint, so its inputs are fixed."""

    downscale: str
    blur_sigma: tuple[float, float] = (0.0, 0.0)
    jpeg_quality: tuple[int, int] = (0, 0)  # (0, 0) = no JPEG

    def describe(self) -> str:
        parts = [f"Gaussian blur sigma {sum(self.blur_sigma) / 2:g} px"] if self.blur_sigma[1] > 0 else []
        parts.append(DOWNSCALE_NAMES[self.downscale])
        if self.jpeg_quality[1] > 0:
            parts.append(f"JPEG quality {sum(self.jpeg_quality) // 2}")
        return ", then ".join(parts)


# The shrinks the "mixture" degradation draws from, by name, with their draw weights. Weighted
# toward the anti-aliased kernels SR benchmarks use, so the mixture costs little there; the aliasing
# OpenCV kernels, the blur and the JPEG teach the net what not to sharpen.
SHRINK_KERNELS = {
    "bicubic": ShrinkKernel("bicubic"),
    "bilinear": ShrinkKernel("bilinear"),
    "area": ShrinkKernel("area"),
    "cv2_cubic": ShrinkKernel("cv2_cubic"),
    "cv2_linear": ShrinkKernel("cv2_linear"),
    # a soft lens or a pre-filtered export (BSRGAN's isotropic blur reaches sigma 2.8 at x4)
    "blur": ShrinkKernel("bicubic", blur_sigma=(1.0, 2.5)),
    "jpeg": ShrinkKernel("bicubic", jpeg_quality=(60, 90)),  # web and phone photos
}
MIXTURE_WEIGHTS = {"bicubic": 8.0, "bilinear": 1.0, "area": 1.0, "cv2_cubic": 2.0, "cv2_linear": 1.0,
                   "blur": 1.0, "jpeg": 1.0}


def draw_shrink(rng: np.random.Generator) -> str:
    """A kernel name from SHRINK_KERNELS, drawn with MIXTURE_WEIGHTS."""
    names = list(MIXTURE_WEIGHTS)
    weights = np.array([MIXTURE_WEIGHTS[n] for n in names])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def apply_shrink(target: np.ndarray, height: int, width: int, kernel: ShrinkKernel,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """HxWx3 uint8 -> height x width x 3 uint8 through `kernel`, its blur sigma and JPEG quality drawn
    from `rng`, or each range's midpoint when rng is None (evaluation's fixed inputs)."""
    from translate.data import synth

    low, high = kernel.blur_sigma
    sigma = (low + high) / 2 if rng is None or high <= low else rng.uniform(low, high)
    image = cv2.GaussianBlur(target, (0, 0), sigma) if sigma > 0 else target
    small = shrink(image, height, width, kernel.downscale)
    q_low, q_high = kernel.jpeg_quality
    if q_high <= 0:
        return small
    quality = (q_low + q_high) // 2 if rng is None else int(rng.integers(q_low, q_high + 1))
    return synth.jpeg(small, quality)


def superres_pair(photo: np.ndarray, rng: np.random.Generator, *, scale: int = 4, blur_sigma_max: float = 0.0,
                  noise_std_max: float = 0.0, jpeg_quality_min: int = 0, downscale: str = "area",
                  degradation: str = "classic", usm_target: bool = False,
                  kernel: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(low-res input (H//s)x(W//s)x3, target (s*(H//s))x(s*(W//s))x3): the photo's top-left part
    that divides by s, so input pixel (i, j) covers target pixels [s*i, s*i + s) exactly.

    Degradation, in order (the classic blur -> downscale -> noise -> compression model):
    Gaussian blur with sigma ~ U[0, blur_sigma_max] px; downscale by s as `downscale` says (see
    `shrink`); Gaussian noise with std ~ U[0, noise_std_max] on the 0-255 scale; JPEG at quality
    ~ U{jpeg_quality_min..95}. A zero maximum (or jpeg_quality_min = 0) switches that step off.

    degradation "mixture" replaces all of that with one of SHRINK_KERNELS per draw (weighted by
    MIXTURE_WEIGHTS, as BSRGAN / Real-ESRGAN pick degradations at random), for inputs whose shrink is
    unknown; `kernel` (a SHRINK_KERNELS name) fixes the draw's kernel instead (validation's one
    draw per kernel). degradation "realesrgan" replaces all of that with Real-ESRGAN's second-order
    model and its published ranges (`translate.data.realesrgan_degradation`). usm_target sharpens the target with
    Real-ESRGAN's unsharp mask first, and the input is degraded from the sharpened target, as there.
    """
    from translate.data import synth  # training-pair code stays off the conversion path

    if scale not in SCALES:
        raise ConfigError(f"scale: must be one of {', '.join(map(str, SCALES))}, got {scale}")
    synth.check_degradations(blur_sigma_max=blur_sigma_max, noise_std_max=noise_std_max,
                             jpeg_quality_min=jpeg_quality_min)
    photo = rgb8(photo)
    height, width = photo.shape[0] // scale, photo.shape[1] // scale
    if height < 1 or width < 1:
        raise ImageError(f"photo: {photo.shape[1]}x{photo.shape[0]} is smaller than the scale factor {scale}")
    target = np.ascontiguousarray(photo[: height * scale, : width * scale])
    if usm_target:
        from translate.data.realesrgan_degradation import unsharp_mask

        target = unsharp_mask(target)
    if degradation == "realesrgan":
        from translate.data import realesrgan_degradation as realesrgan

        return realesrgan.degrade(target, realesrgan.draw_plan(rng), rng, scale=scale), target
    if degradation == "mixture":
        return apply_shrink(target, height, width, SHRINK_KERNELS[kernel or draw_shrink(rng)], rng), target
    if degradation != "classic":
        raise ConfigError(f"degradation: must be classic, mixture or realesrgan, got {degradation!r}")
    if downscale not in DOWNSCALES:
        raise ConfigError(f"downscale: must be one of {', '.join(DOWNSCALES)}, got {downscale!r}")
    small = shrink(synth.random_blur(target, rng, blur_sigma_max), height, width, downscale)
    small = synth.random_gaussian_noise(small, rng, noise_std_max)
    small = synth.random_jpeg(small, rng, jpeg_quality_min)
    return np.ascontiguousarray(small), target


def shrink(image: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    """HxWx3 uint8 -> height x width, by `mode`:
    "area": cv2 INTER_AREA, an s x s box average for integer s;
    "bicubic": anti-aliased bicubic (Pillow's, the kernel widened by s; MATLAB's imresize, with which
    SR benchmarks make their low-resolution images, computes the same);
    "bilinear": anti-aliased bilinear (Pillow's triangle filter, widened by s);
    "cv2_cubic": cv2 INTER_CUBIC, which does not widen the kernel when shrinking: each output pixel
    weighs only the 4 x 4 source pixels around its centre, so small images keep aliasing;
    "cv2_linear": cv2 INTER_LINEAR, likewise only the 2 x 2 source pixels around each centre.
    """
    if (height, width) == image.shape[:2]:
        return image
    if mode in ("bicubic", "bilinear"):
        from PIL import Image

        pil_filter = Image.Resampling.BICUBIC if mode == "bicubic" else Image.Resampling.BILINEAR
        return np.asarray(Image.fromarray(image).resize((width, height), pil_filter))
    return cv2.resize(image, (width, height), interpolation=_CV2_SHRINKS[mode])


_CV2_SHRINKS = {"area": cv2.INTER_AREA, "cv2_cubic": cv2.INTER_CUBIC, "cv2_linear": cv2.INTER_LINEAR}


def bicubic_upscale(small: np.ndarray, scale: int) -> np.ndarray:
    """HxWxC -> (s*H)x(s*W)xC bicubic (cv2.INTER_CUBIC, saturated to the dtype): the SR baseline."""
    if scale < 1:
        raise ConfigError(f"scale: must be at least 1, got {scale}")
    height, width = small.shape[:2]
    big = cv2.resize(small, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC)
    return big[:, :, None] if big.ndim == 2 else big


@dataclass
class SuperresSettings(Settings):
    """How superres makes its low-resolution inputs from photos (YAML `superres:`; fresh each epoch)."""

    SECTION: ClassVar[str] = "superres"
    scale: int = 4  # output / input size
    blur_sigma_max: float = 0.0  # Gaussian blur sigma drawn from [0, max] (px)
    noise_std_max: float = 0.0  # Gaussian noise std (0-255 scale) drawn from [0, max]
    jpeg_quality_min: int = 0  # JPEG artefacts at quality in [min, 95]; 0 = none
    # classic: how inputs are shrunk (`shrink`): "area" box average, "bicubic" / "bilinear" anti-aliased
    # (Pillow/MATLAB; bicubic is the SR benchmarks'), "cv2_cubic" / "cv2_linear" OpenCV's, not anti-aliased
    downscale: Literal["area", "bicubic", "bilinear", "cv2_cubic", "cv2_linear"] = "area"
    # "classic" = blur, downscale, noise, JPEG with the options above; "mixture" = one of the common
    # shrinks per draw (SHRINK_KERNELS: anti-aliased or OpenCV resizes, a little blur, JPEG), for photos
    # whose shrink is unknown; "realesrgan" = Real-ESRGAN's second-order model with its published
    # ranges (translate.data.realesrgan_degradation). The four options above are classic's alone.
    degradation: Literal["classic", "mixture", "realesrgan"] = "classic"
    usm_target: bool = False  # unsharp-masked targets (Real-ESRGAN); inputs are made from them


class Superres(Task):
    name = "superres"
    description = "x4 super-resolution: degraded low-res RGB in, RGB at 4x the size out"
    baseline_description = "bicubic upscaling of the same low-resolution input"

    settings = SuperresSettings

    def check_config(self, config: TrainConfig) -> None:
        super().check_config(config)
        scale = config.task_settings.scale
        if scale != config.generator.scale:
            raise ConfigError(f"superres.scale: {scale} must equal the generator's upscale "
                              f"({config.generator.scale}); set both, e.g. --set generator.upscale=2 "
                              "--set superres.scale=2")

    def pair_maker(self, synth: SuperresSettings) -> PairMaker:
        return functools.partial(superres_pair, scale=synth.scale, blur_sigma_max=synth.blur_sigma_max,
                                 noise_std_max=synth.noise_std_max, jpeg_quality_min=synth.jpeg_quality_min,
                                 downscale=synth.downscale, degradation=synth.degradation,
                                 usm_target=synth.usm_target)

    def validation_pair_makers(self, synth: SuperresSettings) -> list[PairMaker]:
        """With the mixture, one maker per shrink kernel: validation scores every kernel alike (the
        recipe's data.val_draws 7 gives each photo one draw of each), so best.pt is not chosen on
        draws that happened to be the common anti-aliased bicubic."""
        if synth.degradation != "mixture":
            return []
        return [functools.partial(self.pair_maker(synth), kernel=name) for name in SHRINK_KERNELS]

    def baseline(self, net_input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return bicubic_upscale(net_input, target.shape[0] // net_input.shape[0])

    def display_input(self, net_input: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The small input bicubically enlarged to the output's size, so input, output and target
        compare at one scale (the first panel is then what the bicubic baseline would give)."""
        rgb = display_rgb(net_input)
        return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
