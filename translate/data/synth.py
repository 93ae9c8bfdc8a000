"""Task recipes' training pairs synthesised from plain photos: pure numpy/OpenCV, no torch.

Data contract: a *photo* is HxWx3 RGB, uint8 or uint16 (16-bit photos are rounded to 8 bits first,
since every recipe's input and target are 8-bit). Pair makers take (photo, rng) and return
(net_input, target) as HxWxC uint8; all randomness comes from the `np.random.Generator` passed in,
so a seeded generator gives the same pair and every call draws fresh randomness.

| task     | net input                                | target                           |
|----------|------------------------------------------|----------------------------------|
| colorize | Lab L, HxWx1                             | Lab ab, HxWx2                    |
| sketch   | dark lines on white, HxWx1               | photo, HxWx3                     |
| inpaint  | photo, holes mid-grey, + alpha, HxWx4    | photo, HxWx3                     |
| superres | degraded photo, (H//s)x(W//s)x3          | photo cropped to multiples of s  |

Lab is OpenCV's 8-bit encoding (L* scaled to 0..255, a* and b* offset by 128), so it stays uint8.
The inpaint input's 4th channel is an alpha channel: 255 = known pixel, 0 = hole, so an RGBA file
whose transparent pixels are the holes is already a valid input (see `mask_from_alpha`).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from translate.data.images import to_uint8  # noqa: F401 (photos are 8-bit here)

if TYPE_CHECKING:
    from translate.config import SynthConfig, TrainConfig

PairMaker = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
SketchStyle = Literal["canny", "xdog", "mixed"]

HOLE_FILL = 128  # mid-grey: about 0 once mapped to the net's [-1, 1], so holes carry no colour
_MAX_SHAPES = 64  # random_mask: strokes and boxes tried before growing the mask to its target


def _rgb8(photo: np.ndarray) -> np.ndarray:
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"photo: expected HxWx3 uint8/uint16 RGB, got shape {photo.shape} {photo.dtype}")
    return to_uint8(photo)


# --- colorize ---------------------------------------------------------------------------------

def lab_split(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HxWx3 RGB -> (L HxWx1, ab HxWx2), OpenCV 8-bit Lab (sRGB, D65). A grey RGB (r=g=b) has
    ab = 128; note L is not the grey value itself (grey 100 has L = 108), so convert grey inputs too."""
    lab = cv2.cvtColor(_rgb8(rgb), cv2.COLOR_RGB2LAB)
    return np.ascontiguousarray(lab[:, :, :1]), np.ascontiguousarray(lab[:, :, 1:])


def lab_to_rgb(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """(L HxW[x1], ab hxwx2) uint8 -> HxWx3 uint8 RGB. ab may be smaller (a net run on a downscaled
    copy): it is resized bicubically to L's size, while L keeps every pixel of its detail."""
    if lightness.ndim == 3:
        lightness = lightness[:, :, 0]
    if lightness.ndim != 2 or ab.ndim != 3 or ab.shape[2] != 2:
        raise ValueError(f"lab_to_rgb: expected L HxW[x1] and ab hxwx2, got {lightness.shape} and {ab.shape}")
    lightness, ab = to_uint8(lightness), to_uint8(ab)
    height, width = lightness.shape
    if ab.shape[:2] != (height, width):
        ab = cv2.resize(ab, (width, height), interpolation=cv2.INTER_CUBIC)  # saturates to 0..255
    lab = np.concatenate([lightness[:, :, None], ab], axis=2)
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def colorize_pair(photo: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(L HxWx1, ab HxWx2): predict chroma from lightness (Zhang et al. 2016; pix2pix's colorization).
    Deterministic: rng is only there for the common pair-maker signature."""
    return lab_split(photo)


# --- sketch -----------------------------------------------------------------------------------

def canny_lines(photo: np.ndarray, *, blur_sigma: float = 1.0, spread: float = 0.33,
                line_thickness: int = 1) -> np.ndarray:
    """HxWx1 uint8 Canny edges drawn as black (0) lines on white (255).

    Thresholds follow the grey median m: (1 - spread) * m and (1 + spread) * m, so they adapt to
    exposure; the Gaussian pre-blur (sigma in px) keeps texture and noise out of the lines.
    """
    grey = cv2.cvtColor(_rgb8(photo), cv2.COLOR_RGB2GRAY)
    if blur_sigma > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), blur_sigma)
    median = float(np.median(grey))
    low, high = max(0.0, (1 - spread) * median), min(255.0, (1 + spread) * median)
    lines = 255 - cv2.Canny(grey, low, high, L2gradient=True)
    return _thicken(lines, line_thickness)[:, :, None]


def xdog_lines(photo: np.ndarray, *, sigma: float = 0.8, k: float = 1.6, p: float = 20.0,
               epsilon: float = 0.0, phi: float = 10.0, line_thickness: int = 1) -> np.ndarray:
    """HxWx1 uint8 XDoG sketch (Winnemöller, Kyprianidis & Olsen 2012): soft dark lines on white.

    On grey I in [0, 1]: S = (1 + p) G_sigma(I) - p G_{k sigma}(I) (eq. 7, the sharpened image), then
    T(u) = 1 if u >= epsilon else 1 + tanh(phi (u - epsilon)) (eq. 5). S equals I on flat areas, so
    epsilon = 0 keeps every flat tone white and only the dark side of edges becomes lines: a pencil
    drawing rather than the paper's tone-threshold looks (epsilon ~ 0.5-0.8). p = 20 sets the edge
    emphasis, k = 1.6 is Marr-Hildreth's DoG ratio, phi = 10 gives soft, anti-aliased strokes.
    """
    grey = cv2.cvtColor(_rgb8(photo), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    sharpened = (1 + p) * cv2.GaussianBlur(grey, (0, 0), sigma) - p * cv2.GaussianBlur(grey, (0, 0), k * sigma)
    tone = np.where(sharpened >= epsilon, 1.0, 1.0 + np.tanh(phi * (sharpened - epsilon)))
    lines = np.rint(np.clip(tone, 0.0, 1.0) * 255).astype(np.uint8)
    return _thicken(lines, line_thickness)[:, :, None]


def _thicken(lines: np.ndarray, line_thickness: int) -> np.ndarray:
    if line_thickness < 1:
        raise ValueError(f"line_thickness: must be at least 1 pixel, got {line_thickness}")
    if line_thickness == 1:
        return lines
    # Dark lines on white: erosion (a min filter) widens them to about line_thickness pixels.
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (line_thickness, line_thickness))
    return cv2.erode(lines, kernel)


def sketch_pair(photo: np.ndarray, rng: np.random.Generator, *, style: SketchStyle = "mixed",
                line_thickness: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(sketch HxWx1, photo HxWx3). "mixed" picks Canny or XDoG per call; the blur scale is jittered
    a little so the net learns from sketches of varying detail rather than one exact renderer."""
    if style not in ("canny", "xdog", "mixed"):
        raise ValueError(f"sketch_style: unknown {style!r}; choose canny, xdog or mixed")
    photo = _rgb8(photo)
    if style == "mixed":
        style = "canny" if rng.random() < 0.5 else "xdog"
    if style == "canny":
        sketch = canny_lines(photo, blur_sigma=rng.uniform(0.8, 1.5), line_thickness=line_thickness)
    else:
        sketch = xdog_lines(photo, sigma=rng.uniform(0.6, 1.0), line_thickness=line_thickness)
    return sketch, photo


# --- inpaint ----------------------------------------------------------------------------------

def random_mask(height: int, width: int, rng: np.random.Generator, *, area_min: float = 0.05,
                area_max: float = 0.4) -> np.ndarray:
    """HxW uint8 hole mask (255 = hole, 0 = known) of free-form strokes and boxes.

    The hole fraction is drawn uniformly from [area_min, area_max] and always ends inside that
    range: shapes that would overshoot area_max are rejected (and later ones shrink), and a mask
    still short of its target after the shapes grows outwards ring by ring, the last ring only partly.
    """
    if not 0.0 <= area_min <= area_max <= 1.0:
        raise ValueError(f"hole_area_min/max: need 0 <= min <= max <= 1, got {area_min} and {area_max}")
    if height < 1 or width < 1:
        raise ValueError(f"random_mask: size must be positive, got {height}x{width}")
    total = height * width
    low, high = int(np.ceil(area_min * total)), int(np.floor(area_max * total))
    if low > high:
        raise ValueError(
            f"hole_area_min/max: no whole pixel count of a {height}x{width} image lies in "
            f"[{area_min}, {area_max}]; widen the range"
        )
    target = min(max(int(round(rng.uniform(area_min, area_max) * total)), low), high)
    mask = np.zeros((height, width), np.uint8)
    covered = 0
    size = 1.0  # shape scale; halves after each rejected shape
    for _ in range(_MAX_SHAPES):
        if covered >= target:
            break
        candidate = mask.copy()
        if rng.random() < 0.7:
            _draw_stroke(candidate, rng, size)
        else:
            _draw_box(candidate, rng, size)
        count = int(np.count_nonzero(candidate))
        if count > high:
            size /= 2
            continue
        mask, covered = candidate, count
    return _grow_to(mask, covered, target, rng)


def _draw_stroke(mask: np.ndarray, rng: np.random.Generator, size: float) -> None:
    """A thick random polyline with round joints, like a brush stroke."""
    height, width = mask.shape
    side = min(height, width)
    thickness = max(1, int(round(rng.uniform(0.03, 0.12) * side * size)))
    point = np.array([rng.uniform(0, width), rng.uniform(0, height)])
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(1, 6))):
        angle += rng.uniform(-np.pi / 2, np.pi / 2)
        length = rng.uniform(0.1, 0.4) * side * size
        end = np.clip(point + length * np.array([np.cos(angle), np.sin(angle)]), 0, [width - 1, height - 1])
        cv2.line(mask, tuple(int(v) for v in point), tuple(int(v) for v in end), 255, thickness)
        cv2.circle(mask, tuple(int(v) for v in end), thickness // 2, 255, -1)
        point = end


def _draw_box(mask: np.ndarray, rng: np.random.Generator, size: float) -> None:
    height, width = mask.shape
    box_h = max(1, int(round(rng.uniform(0.1, 0.4) * height * size)))
    box_w = max(1, int(round(rng.uniform(0.1, 0.4) * width * size)))
    top, left = int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1))
    mask[top : top + box_h, left : left + box_w] = 255


def _grow_to(mask: np.ndarray, covered: int, target: int, rng: np.random.Generator) -> np.ndarray:
    """Dilate the mask until it holds `target` pixels, adding only part of the final ring."""
    if covered >= target:
        return mask
    if covered == 0:
        mask[int(rng.integers(mask.shape[0])), int(rng.integers(mask.shape[1]))] = 255
        covered = 1
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    while covered < target:
        grown = cv2.dilate(mask, kernel)
        ring = np.flatnonzero(grown.ravel() != mask.ravel())
        need = target - covered
        if len(ring) > need:
            ring = rng.choice(ring, size=need, replace=False)
        mask.ravel()[ring] = 255
        covered += len(ring)
    return mask


def mask_from_alpha(rgba: np.ndarray) -> np.ndarray:
    """HxWx4 RGBA (uint8/uint16) -> HxW uint8 hole mask: transparent (alpha below half) = 255 = hole."""
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"mask_from_alpha: expected HxWx4 RGBA, got shape {rgba.shape}")
    alpha = to_uint8(rgba[:, :, 3])
    return np.where(alpha < 128, 255, 0).astype(np.uint8)


def masked_input(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inpainting net input, HxWx4 uint8: RGB with holes set to HOLE_FILL, then alpha = 255 - mask
    (255 known, 0 hole). `mask` is HxW[x1], nonzero = hole."""
    rgb = _rgb8(rgb)
    if mask.ndim == 3:
        mask = mask[:, :, 0]
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask: size {mask.shape[1]}x{mask.shape[0]} differs from the image's "
                         f"{rgb.shape[1]}x{rgb.shape[0]}")
    hole = mask > 0
    filled = rgb.copy()
    filled[hole] = HOLE_FILL
    alpha = np.where(hole, 0, 255).astype(np.uint8)
    return np.concatenate([filled, alpha[:, :, None]], axis=2)


def inpaint_pair(photo: np.ndarray, rng: np.random.Generator, *, area_min: float = 0.05,
                 area_max: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """(masked input HxWx4, photo HxWx3) with a fresh `random_mask` per call."""
    photo = _rgb8(photo)
    mask = random_mask(photo.shape[0], photo.shape[1], rng, area_min=area_min, area_max=area_max)
    return masked_input(photo, mask), photo


# --- superres ---------------------------------------------------------------------------------

def superres_pair(photo: np.ndarray, rng: np.random.Generator, *, scale: int = 4, blur_sigma_max: float = 0.0,
                  noise_std_max: float = 0.0, jpeg_quality_min: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(low-res input (H//s)x(W//s)x3, target (s*(H//s))x(s*(W//s))x3): the photo's top-left part
    that divides by s, so input pixel (i, j) covers target pixels [s*i, s*i + s) exactly.

    Degradation, in order (the classic blur -> downscale -> noise -> compression model):
    Gaussian blur with sigma ~ U[0, blur_sigma_max] px; downscale by s with INTER_AREA (an s x s box
    average for integer s: anti-aliased, unlike cv2's INTER_CUBIC, which only samples when shrinking;
    MATLAB's anti-aliased bicubic used by SR benchmarks is slightly sharper); Gaussian noise with std
    ~ U[0, noise_std_max] on the 0-255 scale; JPEG at quality ~ U{jpeg_quality_min..95}. A zero
    maximum (or jpeg_quality_min = 0) switches that step off.
    """
    if scale not in (1, 2, 3, 4, 8):
        raise ValueError(f"scale: must be 1, 2, 3, 4 or 8, got {scale}")
    if not 0 <= jpeg_quality_min <= 95:
        raise ValueError(f"jpeg_quality_min: must be in [0, 95] (0 = no JPEG), got {jpeg_quality_min}")
    if blur_sigma_max < 0 or noise_std_max < 0:
        raise ValueError(f"blur_sigma_max/noise_std_max: must be >= 0, got {blur_sigma_max} and {noise_std_max}")
    photo = _rgb8(photo)
    height, width = photo.shape[0] // scale, photo.shape[1] // scale
    if height < 1 or width < 1:
        raise ValueError(f"photo: {photo.shape[1]}x{photo.shape[0]} is smaller than the scale factor {scale}")
    target = np.ascontiguousarray(photo[: height * scale, : width * scale])
    small = target
    if blur_sigma_max > 0:
        sigma = rng.uniform(0.0, blur_sigma_max)
        if sigma > 0.05:  # below this the 3-tap kernel is the identity anyway
            small = cv2.GaussianBlur(small, (0, 0), sigma)
    if scale > 1:
        small = cv2.resize(small, (width, height), interpolation=cv2.INTER_AREA)
    if noise_std_max > 0:
        std = rng.uniform(0.0, noise_std_max)
        noisy = small.astype(np.float32) + rng.normal(0.0, std, small.shape).astype(np.float32)
        small = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if jpeg_quality_min > 0:
        quality = int(rng.integers(jpeg_quality_min, 96))
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("superres: OpenCV could not JPEG-encode the degraded image")
        small = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(small), target


def bicubic_upscale(small: np.ndarray, scale: int) -> np.ndarray:
    """HxWxC -> (s*H)x(s*W)xC bicubic (cv2.INTER_CUBIC, saturated to the dtype): the SR baseline."""
    if scale < 1:
        raise ValueError(f"scale: must be at least 1, got {scale}")
    height, width = small.shape[:2]
    big = cv2.resize(small, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC)
    return big[:, :, None] if big.ndim == 2 else big


# --- registry ---------------------------------------------------------------------------------

# task -> pair maker(photo, rng, **synth options); pair_maker binds the options from a config.
PAIR_MAKERS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "colorize": colorize_pair,
    "sketch": sketch_pair,
    "inpaint": inpaint_pair,
    "superres": superres_pair,
}


def bind_pair_maker(task: str, synth: SynthConfig) -> PairMaker:
    """(photo, rng) -> (net_input, target) for `task` with the `synth` options bound (see pair_maker)."""
    if task == "colorize":
        return colorize_pair
    if task == "sketch":
        return functools.partial(sketch_pair, style=synth.sketch_style, line_thickness=synth.line_thickness)
    if task == "inpaint":
        return functools.partial(inpaint_pair, area_min=synth.hole_area_min, area_max=synth.hole_area_max)
    if task == "superres":
        return functools.partial(
            superres_pair,
            scale=synth.scale,
            blur_sigma_max=synth.blur_sigma_max,
            noise_std_max=synth.noise_std_max,
            jpeg_quality_min=synth.jpeg_quality_min,
        )
    raise ValueError(f"task: {task!r} has no synthetic pairs; choose one of {', '.join(PAIR_MAKERS)}")


def pair_maker(config: TrainConfig) -> PairMaker:
    """(photo, rng) -> (net_input, target) for `config.task` with `config.synth` bound. TrainConfig
    has already checked that super-resolution's scale agrees with the generator and the crop size."""
    return bind_pair_maker(config.task, config.synth)
