"""Task adapters: the one place where a user image becomes a net input and a net output an image.

A `TaskAdapter` is built from the generator spec. `prepare` turns an HxW or HxWxC uint8/uint16
image into a (C_in, H, W) float32 tensor in [-1, 1] plus whatever `finish` needs to rebuild the
result; `finish` turns the net output (C_out, s*H, s*W) in [-1, 1] (s = spec.scale) back into an
image of the input's dtype. A new task (colorize: predict chroma and recombine it with the
full-resolution luminance; inpaint: add a mask channel) is one class plus one `TASK_ADAPTERS` entry.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from translate.data.images import image_to_tensor, tensor_to_image, to_channels


@dataclass
class Prepared:
    """A net input as HxWxC_in uint8/uint16 `pixels` (kept as integers, so a large image is not
    held as floats: tiles convert as they run), the input's dtype, and notes for `finish`."""

    pixels: np.ndarray
    dtype: np.dtype
    context: Any

    @functools.cached_property
    def tensor(self) -> torch.Tensor:
        """The whole net input, (C_in, H, W) float32 in [-1, 1]."""
        return image_to_tensor(self.pixels)


class TaskAdapter(Protocol):
    def prepare(self, image: np.ndarray) -> Prepared: ...

    def finish(self, output: torch.Tensor, prepared: Prepared) -> np.ndarray: ...


@dataclass(frozen=True)
class _Generic:
    squeeze: bool  # input was HxW and the output has one channel: return HxW too
    alpha: np.ndarray | None  # HxWx1, carried around the net untouched


def check_image(image: np.ndarray) -> np.ndarray:
    """HxW or HxWxC (C in 1..4) uint8/uint16 -> HxWxC; anything else raises ValueError."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image: expected a numpy array, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image: expected uint8 or uint16 pixels, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or not 1 <= image.shape[2] <= 4 or min(image.shape[:2]) < 1:
        raise ValueError(f"image: expected HxW or HxWxC with C in 1..4, got shape {image.shape}")
    return image


class GenericAdapter:
    """Any image to the net's channels and back, for tasks whose net maps image to image.

    Gray into a 3-channel net is replicated, RGB into a 1-channel net becomes luma (see
    `to_channels`). An alpha channel the net does not take (RGBA or gray+alpha into a 1- or
    3-channel net) goes around the net byte-identical, enlarged by pixel repetition when the
    net upscales (super-resolution, `spec.scale` > 1). A 1-channel result with alpha is written
    as RGBA, because image files have no gray+alpha layout everywhere.
    """

    def __init__(self, spec: Any) -> None:
        self.in_channels = spec.in_channels
        self.out_channels = spec.out_channels
        self.scale = spec.scale

    def prepare(self, image: np.ndarray) -> Prepared:
        squeeze = image.ndim == 2
        image = check_image(image)
        alpha = None
        channels = image.shape[2]
        if channels in (2, 4) and self.in_channels != channels:
            alpha = image[:, :, -1:]
            image = image[:, :, :-1]
        pixels = to_channels(image, self.in_channels)
        return Prepared(pixels, image.dtype, _Generic(squeeze=squeeze, alpha=alpha))

    def finish(self, output: torch.Tensor, prepared: Prepared) -> np.ndarray:
        note: _Generic = prepared.context
        image = tensor_to_image(output, prepared.dtype)
        if note.alpha is not None:
            alpha = note.alpha
            if self.scale > 1:
                alpha = np.repeat(np.repeat(alpha, self.scale, axis=0), self.scale, axis=1)
            if image.shape[2] == 1:
                image = to_channels(image, 3)
            return np.concatenate([image, alpha], axis=2)
        if note.squeeze and image.shape[2] == 1:
            return image[:, :, 0]
        return image


@dataclass(frozen=True)
class _Colorize:
    lightness: np.ndarray  # HxWx1 uint8 Lab L of the input, full resolution
    alpha: np.ndarray | None


class ColorizeAdapter:
    """Grey (or colour) photo -> colour photo. The net sees the Lab lightness L and predicts the
    chroma ab; the result puts the predicted ab on the input's own full-resolution L, so no detail
    is lost (see synth.lab_to_rgb). Alpha passes through; 16-bit input gives 16-bit output (the
    colour itself is 8-bit Lab precision)."""

    def __init__(self, spec: Any) -> None:
        if (spec.in_channels, spec.out_channels) != (1, 2):
            raise ValueError(f"colorize: the generator must map 1 channel (L) to 2 (ab), not "
                             f"{spec.in_channels} -> {spec.out_channels}")

    def prepare(self, image: np.ndarray) -> Prepared:
        from translate.data.synth import lab_split, to_uint8

        image = check_image(image)
        alpha = image[:, :, -1:] if image.shape[2] in (2, 4) else None
        rgb = to_channels(image[:, :, :-1] if alpha is not None else image, 3)
        lightness = lab_split(to_uint8(rgb))[0]
        return Prepared(lightness, image.dtype, _Colorize(lightness, alpha))

    def finish(self, output: torch.Tensor, prepared: Prepared) -> np.ndarray:
        from translate.data.synth import lab_to_rgb

        note: _Colorize = prepared.context
        rgb = lab_to_rgb(note.lightness, tensor_to_image(output, np.uint8))
        if prepared.dtype == np.uint16:
            rgb = rgb.astype(np.uint16) * 257
        return rgb if note.alpha is None else np.concatenate([rgb, note.alpha.astype(rgb.dtype)], axis=2)


@dataclass(frozen=True)
class _Inpaint:
    rgb: np.ndarray  # the input's own pixels, kept wherever there is no hole
    hole: np.ndarray  # HxW bool


class InpaintAdapter:
    """RGBA photo whose transparent pixels (alpha < half) are holes -> the filled RGB photo. The
    net sees RGB with holes greyed plus the known-pixel alpha (synth.masked_input); only hole
    pixels take the net's output, known pixels come back byte-identical. A separate mask image
    becomes the alpha channel first (`with_mask`)."""

    def __init__(self, spec: Any) -> None:
        if (spec.in_channels, spec.out_channels) != (4, 3):
            raise ValueError(f"inpaint: the generator must map 4 channels (RGB + known mask) to 3, not "
                             f"{spec.in_channels} -> {spec.out_channels}")

    def prepare(self, image: np.ndarray) -> Prepared:
        from translate.data.synth import mask_from_alpha, masked_input

        image = check_image(image)
        if image.shape[2] != 4:
            raise ValueError("inpaint: needs holes: an RGBA image whose transparent pixels are the holes, "
                             "or a mask image (white = hole)")
        hole = mask_from_alpha(image)
        rgb = image[:, :, :3]
        return Prepared(masked_input(rgb, hole), image.dtype, _Inpaint(rgb, hole > 0))

    def finish(self, output: torch.Tensor, prepared: Prepared) -> np.ndarray:
        note: _Inpaint = prepared.context
        filled = tensor_to_image(output, prepared.dtype)
        return np.where(note.hole[:, :, None], filled, note.rgb)


def with_mask(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Image + hole mask (HxW[x1], nonzero = hole, same size) -> RGBA whose alpha is 0 on holes."""
    image = to_channels(check_image(image), 3)
    mask = check_image(mask)[:, :, 0]
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask: size {mask.shape[1]}x{mask.shape[0]} differs from the image's "
                         f"{image.shape[1]}x{image.shape[0]}")
    opaque = np.iinfo(image.dtype).max
    alpha = np.where(mask > 0, 0, opaque).astype(image.dtype)[:, :, None]
    return np.concatenate([image, alpha], axis=2)


# task (TrainConfig.task) -> adapter class; superres needs nothing special (the net's scale enlarges).
TASK_ADAPTERS: dict[str, type] = {
    "custom": GenericAdapter,
    "sketch": GenericAdapter,
    "superres": GenericAdapter,
    "colorize": ColorizeAdapter,
    "inpaint": InpaintAdapter,
}


def adapter_for(task: str, spec: Any) -> TaskAdapter:
    """The adapter for `task`; a ValueError names the tasks that can be converted."""
    if task not in TASK_ADAPTERS:
        raise ValueError(f"task {task!r}: conversion is not supported yet; supported: {', '.join(TASK_ADAPTERS)}")
    return TASK_ADAPTERS[task](spec)
