"""inpaint: fill the holes of a photo (a context encoder in pix2pix form, Pathak et al. 2016).

The net input is HxWx4 uint8: RGB with holes set to mid-grey, plus an alpha channel that is 255 on
known pixels and 0 on holes, so an RGBA file whose transparent pixels are the holes is already a
valid input (`mask_from_alpha`). A separate mask image becomes that alpha through `hole_mask`, the
one mask rule every entry point (convert --mask-dir, the Python API, HTTP, the editor) uses.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np
import torch

from translate.config import Settings
from translate.config.plugins import WEIGHT, Range
from translate.data.images import tensor_to_image, to_channels, to_uint8
from translate.errors import ConfigError, ImageError, TranslatorError
from translate.losses.terms import TaskLosses
from translate.tasks.base import PairMaker, Prepared, Task, check_image, display_rgb, rgb8

if TYPE_CHECKING:
    from translate.config import TrainConfig

HOLE_FILL = 128  # mid-grey: about 0 once mapped to the net's [-1, 1], so holes carry no colour
OUTLINE = (255, 0, 255)  # magenta: rare in photos, so a hole's outline stands out on any of them
_MAX_SHAPES = 64  # random_mask: strokes and boxes tried before growing the mask to its target


def hole_mask(mask: np.ndarray) -> np.ndarray:
    """The mask rule: HxW[xC] uint8/uint16 mask image -> HxW bool, True = hole.

    A pixel is a hole when its brightest colour channel is at least half the range (>= 128 of 255).
    Masks arrive as JPEGs with ringing and chroma noise of a few levels around every edge, and get
    painted in any colour: half range ignores that noise, where "any non-zero" would grow every hole
    by a noisy fringe, and the max over channels counts a red or blue brush as much as a white one.
    An alpha channel (grey+alpha, RGBA) is not part of the colour and is ignored.
    """
    mask = check_image(mask)
    colour = mask[:, :, :-1] if mask.shape[2] in (2, 4) else mask
    brightest = colour.max(axis=2)
    return brightest >= (int(np.iinfo(mask.dtype).max) + 1) // 2


def with_mask(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Image + mask image of the same size -> the RGBA input whose alpha is 0 on holes (`hole_mask`).
    The mask replaces any alpha the image had; the RGBA keeps the image's dtype."""
    image = check_image(image)
    mask = check_image(mask)
    if mask.shape[:2] != image.shape[:2]:
        raise ImageError(f"mask: size {mask.shape[1]}x{mask.shape[0]} differs from the image's "
                         f"{image.shape[1]}x{image.shape[0]}")
    colour = image[:, :, :-1] if image.shape[2] in (2, 4) else image
    rgb = to_channels(np.ascontiguousarray(colour), 3)
    alpha = np.where(hole_mask(mask), 0, np.iinfo(image.dtype).max).astype(image.dtype)[:, :, None]
    return np.concatenate([rgb, alpha], axis=2)


def mask_from_alpha(rgba: np.ndarray) -> np.ndarray:
    """HxWx4 RGBA (uint8/uint16) -> HxW uint8 hole mask: transparent (alpha below half) = 255 = hole."""
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ImageError(f"mask_from_alpha: expected HxWx4 RGBA, got shape {rgba.shape}")
    alpha = to_uint8(rgba[:, :, 3])
    return np.where(alpha < 128, 255, 0).astype(np.uint8)


def masked_input(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inpainting net input, HxWx4 uint8: RGB with holes set to HOLE_FILL, then alpha = 255 - mask
    (255 known, 0 hole). `mask` is HxW[x1], nonzero = hole (a mask made by `random_mask` or
    `mask_from_alpha`; user mask images go through `hole_mask` first)."""
    rgb = rgb8(rgb)
    if mask.ndim == 3:
        mask = mask[:, :, 0]
    if mask.shape != rgb.shape[:2]:
        raise ImageError(f"mask: size {mask.shape[1]}x{mask.shape[0]} differs from the image's "
                         f"{rgb.shape[1]}x{rgb.shape[0]}")
    hole = mask > 0
    filled = rgb.copy()
    filled[hole] = HOLE_FILL
    alpha = np.where(hole, 0, 255).astype(np.uint8)
    return np.concatenate([filled, alpha[:, :, None]], axis=2)


def inpaint_pair(photo: np.ndarray, rng: np.random.Generator, *, area_min: float = 0.05,
                 area_max: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """(masked input HxWx4, photo HxWx3) with a fresh `random_mask` per call."""
    photo = rgb8(photo)
    mask = random_mask(photo.shape[0], photo.shape[1], rng, area_min=area_min, area_max=area_max)
    return masked_input(photo, mask), photo


def random_mask(height: int, width: int, rng: np.random.Generator, *, area_min: float = 0.05,
                area_max: float = 0.4) -> np.ndarray:
    """HxW uint8 hole mask (255 = hole, 0 = known) of free-form strokes and boxes.

    The hole fraction is drawn uniformly from [area_min, area_max] and always ends inside that
    range: shapes that would overshoot area_max are rejected (and later ones shrink), and a mask
    still short of its target after the shapes grows outwards ring by ring, the last ring only partly.
    """
    if not 0.0 <= area_min <= area_max <= 1.0:
        raise ConfigError(f"hole_area_min/max: need 0 <= min <= max <= 1, got {area_min} and {area_max}")
    if height < 1 or width < 1:
        raise ImageError(f"random_mask: size must be positive, got {height}x{width}")
    total = height * width
    low, high = int(np.ceil(area_min * total)), int(np.floor(area_max * total))
    if low > high:
        raise ImageError(
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



def outline_holes(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 with OUTLINE drawn on the known pixels that touch a hole (HxW bool, 8-neighbours):
    every filled pixel stays visible, and the eye finds where the fill is."""
    grown = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    outlined = rgb.copy()
    outlined[grown & ~hole] = OUTLINE
    return outlined


@dataclass(frozen=True)
class _Inpaint:
    rgb: np.ndarray  # the input's own pixels, kept wherever there is no hole
    hole: np.ndarray  # HxW bool


class InpaintAdapter:
    """RGBA photo whose transparent pixels (alpha < half) are holes -> the filled RGB photo. Only
    hole pixels take the net's output; known pixels come back byte-identical."""

    def __init__(self, spec: Any) -> None:
        if (spec.in_channels, spec.out_channels) != (4, 3):
            raise TranslatorError(f"inpaint: the generator must map 4 channels (RGB + known mask) to 3, not "
                                  f"{spec.in_channels} -> {spec.out_channels}")

    def prepare(self, image: np.ndarray) -> Prepared:
        image = check_image(image)
        if image.shape[2] != 4:
            raise ImageError("inpaint: needs holes: an RGBA image whose transparent pixels are the holes, "
                             "or a mask image (white = hole)")
        hole = mask_from_alpha(image)
        rgb = image[:, :, :3]
        return Prepared(masked_input(rgb, hole), image.dtype, _Inpaint(rgb, hole > 0))

    def finish(self, output: torch.Tensor, prepared: Prepared, *, top: int = 0) -> np.ndarray:
        note: _Inpaint = prepared.context
        filled = tensor_to_image(output, prepared.dtype)
        rows = slice(top, top + filled.shape[0])
        return np.where(note.hole[rows, :, None], filled, note.rgb[rows])


@dataclass
class InpaintSettings(Settings):
    """Inpaint's holes and losses (YAML `inpaint:`): the pixels the input gives are copied at
    conversion, so training concentrates on the ones the net invents."""

    SECTION: ClassVar[str] = "inpaint"
    RANGES: ClassVar[dict[str, Range]] = {"hole_l1_weight": WEIGHT, "known_l1_weight": WEIGHT}
    hole_area_min: float = 0.05  # share of the image covered by holes
    hole_area_max: float = 0.4
    # The hole_l1 pixel term's weights (Liu et al. 2018: L_hole x 6 + L_valid x 1), times pix2pix.lambda_l1.
    hole_l1_weight: float = 6.0
    known_l1_weight: float = 1.0
    # D judges the filled image (known pixels pasted back) with the mask in its condition; its fake
    # label covers the holes only and G's adversarial term counts the holes only (LaMa's
    # mask_as_fake_target). false: the plain pix2pix GAN on the raw output.
    mask_discriminator: bool = True


class Inpaint(Task):
    name = "inpaint"
    description = "fill holes: RGB with mid-grey holes + alpha (known = 255) in, RGB out"
    baseline_description = "OpenCV Telea inpainting of the same holes"
    takes_mask = True
    settings = InpaintSettings

    def pair_maker(self, synth: InpaintSettings) -> PairMaker:
        return functools.partial(inpaint_pair, area_min=synth.hole_area_min, area_max=synth.hole_area_max)

    def check_config(self, config: TrainConfig) -> None:
        super().check_config(config)
        holes, losses = config.task_settings, config.method_settings
        if holes.mask_discriminator and losses.lambda_gan > 0 and config.gan.loss not in ("vanilla", "lsgan"):
            raise ConfigError(f"gan.loss: {config.gan.loss} cannot label the holes of a filled image per patch; "
                              "use vanilla or lsgan, or --set inpaint.mask_discriminator=false")

    def losses(self, settings: InpaintSettings) -> TaskLosses:
        # Hole-weighted L1, and LaMa's hole-masked GAN unless turned off.
        return TaskLosses(pixel="hole_l1", gan="hole_masked" if settings.mask_discriminator else None,
                          hole_weight=settings.hole_l1_weight, known_weight=settings.known_l1_weight)

    def known_pixels(self, net_input: torch.Tensor) -> torch.Tensor:
        return (net_input[:, 3:4] > 0).to(net_input.dtype)  # alpha: 255 (1.0) known, 0 (-1.0) hole

    def adapter(self, spec: Any) -> InpaintAdapter:
        return InpaintAdapter(spec)

    def with_mask(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return with_mask(image, mask)

    def example_input(self, photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return inpaint_pair(photo, rng)[0]

    def baseline(self, net_input: np.ndarray, target: np.ndarray) -> np.ndarray:
        # Telea (2004) fills each hole from its border inwards using only the known pixels.
        rgb = np.ascontiguousarray(to_uint8(net_input[:, :, :3]))
        return cv2.inpaint(rgb, mask_from_alpha(net_input), 3, cv2.INPAINT_TELEA)

    def display_input(self, net_input: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The photo with its holes mid-grey (a transparent hole would show the page's background)."""
        rgb = display_rgb(net_input)
        rgb[mask_from_alpha(net_input) > 0] = HOLE_FILL
        return rgb

    def display_output(self, net_input: np.ndarray, image: np.ndarray) -> np.ndarray:
        return outline_holes(display_rgb(image), mask_from_alpha(net_input) > 0)

    def eval_region(self, net_input: np.ndarray) -> np.ndarray:
        return mask_from_alpha(net_input) > 0  # known pixels are copied, so only the holes say anything
