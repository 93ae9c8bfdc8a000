"""colorize: grey photo -> colour photo. The net sees the Lab lightness L and predicts the chroma ab
(Zhang et al. 2016; pix2pix's colorization); conversion puts the predicted ab back on the input's
own full-resolution L, so no detail is lost.

Lab is OpenCV's 8-bit encoding (L* scaled to 0..255, a* and b* offset by 128), so it stays uint8.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from translate.config import Settings
from translate.config.plugins import Range
from translate.data.images import tensor_to_image, to_channels, to_uint8
from translate.errors import ImageError, TranslatorError
from translate.tasks.base import GenericAdapter, PairMaker, Prepared, Task, TaskAdapter, check_image, rgb8


def lab_split(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HxWx3 RGB -> (L HxWx1, ab HxWx2), OpenCV 8-bit Lab (sRGB, D65). A grey RGB (r=g=b) has
    ab = 128; note L is not the grey value itself (grey 100 has L = 108), so convert grey inputs too."""
    lab = cv2.cvtColor(rgb8(rgb), cv2.COLOR_RGB2LAB)
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


def colorize_pair(photo: np.ndarray, rng: np.random.Generator, *,
                  exposure_min: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(L HxWx1, ab HxWx2): predict chroma from lightness. With exposure_min < 1, half the draws
    darken the photo first by a factor log-uniform in [exposure_min, 1]."""
    photo = rgb8(photo)
    if exposure_min < 1 and rng.random() < 0.5:
        factor = float(np.exp(rng.uniform(np.log(exposure_min), 0.0)))
        photo = np.rint(photo * factor).astype(np.uint8)  # factor <= 1: stays in 0..255
    return lab_split(photo)


@dataclass(frozen=True)
class _Colorize:
    lightness: np.ndarray  # HxWx1 uint8 Lab L of the input, full resolution
    alpha: np.ndarray | None


def _lightness(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """HxWxC (C in 1..4) -> (the Lab L the net sees, HxWx1 uint8; the alpha channel or None)."""
    alpha = image[:, :, -1:] if image.shape[2] in (2, 4) else None
    rgb = to_channels(image[:, :, :-1] if alpha is not None else image, 3)
    return lab_split(to_uint8(rgb))[0], alpha


def _net_lightness(net_input: np.ndarray) -> np.ndarray:
    """HxWx1 uint8 Lab L of a net input: a 1-channel input already is L (training's pairs); any other
    image (evaluation feeds the colour photo) gives its own L."""
    net_input = check_image(net_input)
    if net_input.shape[2] == 1:
        return to_uint8(net_input)
    return _lightness(net_input)[0]


class ColorizeAdapter:
    """Grey (or colour) photo -> colour photo: predicted ab on the input's own full-resolution L.
    Alpha passes through; 16-bit input gives 16-bit output (the colour itself is 8-bit Lab precision)."""

    def __init__(self, spec: Any) -> None:
        if (spec.in_channels, spec.out_channels) != (1, 2):
            raise TranslatorError(f"colorize: the generator must map 1 channel (L) to 2 (ab), not "
                                  f"{spec.in_channels} -> {spec.out_channels}")

    def prepare(self, image: np.ndarray) -> Prepared:
        image = check_image(image)
        lightness, alpha = _lightness(image)
        return Prepared(lightness, image.dtype, _Colorize(lightness, alpha))

    def finish(self, output: torch.Tensor, prepared: Prepared, *, top: int = 0) -> np.ndarray:
        note: _Colorize = prepared.context
        rows = slice(top, top + output.shape[1])
        rgb = lab_to_rgb(note.lightness[rows], tensor_to_image(output, np.uint8))
        if prepared.dtype == np.uint16:
            rgb = rgb.astype(np.uint16) * 257
        return rgb if note.alpha is None else np.concatenate([rgb, note.alpha[rows].astype(rgb.dtype)], axis=2)


@dataclass
class ColorizeSettings(Settings):
    """How colorize makes its training inputs (YAML `colorize:`)."""

    SECTION: ClassVar[str] = "colorize"
    RANGES: ClassVar[dict[str, Range]] = {"exposure_min": (lambda v: 0 < v <= 1, "in (0, 1] (1 = off)")}
    # Training only: half the draws darken the photo by a factor log-uniform in [exposure_min, 1]
    # (1 = off), so dark pixels are seen with the small chroma they really have.
    exposure_min: float = 1.0

    def without_augmentation(self) -> ColorizeSettings:
        return ColorizeSettings(exposure_min=1.0)


class Colorize(Task):
    name = "colorize"
    description = "grey -> colour: Lab lightness L (1 channel) in, chroma ab (2 channels) out"
    baseline_description = "the grey image (input lightness, no colour)"

    settings = ColorizeSettings

    def pair_maker(self, synth: ColorizeSettings) -> PairMaker:
        return functools.partial(colorize_pair, exposure_min=synth.exposure_min)

    def prepared_files(self, photo: np.ndarray, net_input: np.ndarray,
                       target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # B stays the RGB photo (PNG cannot hold 2-channel ab); training recomputes ab from it.
        if np.all(photo == photo[:, :, :1]):
            raise ImageError("grey image, no colour to learn from")
        return net_input, photo

    def adapter(self, spec: Any) -> TaskAdapter:
        if spec.kind == "spandrel" and (spec.in_channels, spec.out_channels) == (3, 3):
            return GenericAdapter(spec)  # a community colorizer doing its own Lab round trip (DDColor)
        return ColorizeAdapter(spec)

    def eval_input(self, net_input: np.ndarray, target: np.ndarray) -> np.ndarray:
        # The adapter takes L from whatever it is given; a prepared L file read as grey would be
        # converted again (grey 100 has L 108), so the model gets the colour photo and keeps its L.
        return target

    def display_input(self, net_input: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return _net_lightness(net_input)  # the grey image the net sees, not the colour photo

    def display_output(self, net_input: np.ndarray, image: np.ndarray) -> np.ndarray:
        """The colour photo: predicted (or the target's own) chroma ab on the input's L, as
        conversion rebuilds it; an image that already is a photo (RGB, at evaluation) as it is."""
        image = check_image(image)
        if image.shape[2] != 2:
            return super().display_output(net_input, image)
        return lab_to_rgb(_net_lightness(net_input), to_uint8(image))

    def baseline(self, net_input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return to_channels(to_channels(to_uint8(target), 1), 3)
