"""The task contract: what a task owns (recipe, training pairs, inference adapter, evaluation), and
the generic image-to-image adapter most tasks convert with.

Inference data contract: `TaskAdapter.prepare` turns an HxW or HxWxC uint8/uint16 image into a
HxWxC_in integer net input (`Prepared.pixels`; `.tensor` is it in [-1, 1]) plus whatever `finish` needs; `finish` turns the net output
(C_out, s*H, s*W) in [-1, 1] (s = spec.scale) back into an image of the input's dtype, or a band of
it: output rows from `top` on (a multiple of s), which a tiled run finishes as the rows complete.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np
import torch

from translate.data.images import image_to_tensor, tensor_to_image, to_channels, to_uint8
from translate.errors import ConfigError, ImageError
from translate.losses.terms import TaskLosses

if TYPE_CHECKING:
    from translate.config import Settings, TrainConfig

# (photo HxWx3 uint8/uint16, rng) -> (net_input, target) HxWxC uint8; all randomness from rng.
PairMaker = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def rgb8(photo: np.ndarray) -> np.ndarray:
    """A pair maker's photo, HxWx3 uint8/uint16 RGB -> uint8 (every recipe's pairs are 8-bit)."""
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"photo: expected HxWx3 uint8/uint16 RGB, got shape {photo.shape} {photo.dtype}")
    return to_uint8(photo)


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

    def finish(self, output: torch.Tensor, prepared: Prepared, *, top: int = 0) -> np.ndarray: ...


def check_image(image: np.ndarray) -> np.ndarray:
    """HxW or HxWxC (C in 1..4) uint8/uint16 -> HxWxC; anything else raises ImageError."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"image: expected a numpy array, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"image: expected uint8 or uint16 pixels, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or not 1 <= image.shape[2] <= 4 or min(image.shape[:2]) < 1:
        raise ImageError(f"image: expected HxW or HxWxC with C in 1..4, got shape {image.shape}")
    return image


def display_rgb(image: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Any HxW[xC] (C 1..4) uint8/uint16 image -> HxWx3 uint8 for showing: grey replicated, alpha
    dropped, two channels shown as (c0, c1, mean); with `size` (height, width), resized to it with
    nearest neighbour, so every pixel stays visible as a block."""
    image = to_uint8(check_image(image))
    if image.shape[2] == 2:
        mean = image.mean(axis=2, keepdims=True).round().astype(np.uint8)
        image = np.concatenate([image, mean], axis=2)
    image = to_channels(image, 3) if image.shape[2] == 1 else image[:, :, :3]
    if size is not None and image.shape[:2] != tuple(size):
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class _Generic:
    squeeze: bool  # input was HxW and the output has one channel: return HxW too
    alpha: np.ndarray | None  # HxWx1, carried around the net untouched


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

    def finish(self, output: torch.Tensor, prepared: Prepared, *, top: int = 0) -> np.ndarray:
        note: _Generic = prepared.context
        image = tensor_to_image(output, prepared.dtype)
        if note.alpha is not None:
            alpha = note.alpha[top // self.scale : (top + image.shape[0]) // self.scale]
            if self.scale > 1:
                alpha = np.repeat(np.repeat(alpha, self.scale, axis=0), self.scale, axis=1)
            if image.shape[2] == 1:
                image = to_channels(image, 3)
            return np.concatenate([image, alpha], axis=2)
        if note.squeeze and image.shape[2] == 1:
            return image[:, :, 0]
        return image


class Task:
    """One task: everything that differs between colorize, inpaint, superres, ... lives on its object.

    The defaults describe a recipe task (pix2pix a_to_b on pairs synthesised from photos) that
    converts with the generic adapter and has no evaluation baseline; subclasses override the rest.
    """

    name: str = ""
    description: str = ""
    baseline_description: str | None = None  # None: this task has no classic baseline
    takes_mask: bool = False  # whether a separate mask image may come with each input
    from_photos: bool = True  # a recipe task: training pairs are synthesised from plain photos
    # Its own settings (a translate.config.Settings dataclass: synthesis, task-specific losses), at
    # `config.task_settings` and under the YAML key settings.SECTION; None: it has none.
    settings: type[Settings] | None = None

    def check_config(self, config: TrainConfig) -> None:
        """Raise ConfigError for config values this task cannot train with (beyond the rule every
        task from photos has, checked by translate.config.Plugins: a paired method, a_to_b)."""

    def pair_maker(self, settings: Settings | None) -> PairMaker | None:
        """(photo, rng) -> (net_input, target) with this task's `settings` bound; None: pairs come from files."""
        return None

    def validation_pair_makers(self, settings: Settings | None) -> list[PairMaker]:
        """Makers for the fixed validation draws, draw k of each photo by makers[k % len]: a task
        whose synthesis mixes distinct kinds of input gives one per kind, so validation scores each
        alike (superres's shrink mixture: one per kernel). Empty: every draw by pair_maker."""
        return []

    def prepared_files(self, photo: np.ndarray, net_input: np.ndarray,
                       target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The A and B images `prepare` writes for one synthesised pair of `photo` (HxWx3 uint8)."""
        return net_input, target

    def adapter(self, spec: Any) -> TaskAdapter:
        """The inference adapter for a generator built from `spec`."""
        return GenericAdapter(spec)

    def with_mask(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The model input for `image` plus a separate mask image (tasks with `takes_mask`)."""
        raise ImageError(f"mask: only inpainting models take a mask; this model's task is {self.name}")

    def example_input(self, photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A valid conversion input made from `photo` (HxWx3 uint8), e.g. for export's parity check."""
        return photo

    def eval_input(self, net_input: np.ndarray, target: np.ndarray) -> np.ndarray:
        """What evaluation feeds the model, given a prepared input (A) and its target photo (B)."""
        return net_input

    def display(self, net_input: np.ndarray, output: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
        """The task's picture of one example: [input, output, target] panels, each HxWx3 uint8 RGB at
        the target's size. `net_input` is HxWxC_in uint8/uint16 as the pair maker (or evaluation)
        makes it; `output` and `target` as the net makes them (HxWxC_out) or as conversion returns
        them (RGB). Sample grids, the run page and evaluation's page all show these panels."""
        size = target.shape[:2]
        panels = [self.display_input(net_input, size), self.display_output(net_input, output),
                  self.display_output(net_input, target)]
        return [display_rgb(panel, size) for panel in panels]

    def display_input(self, net_input: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The input panel, HxWxC uint8 (C 1 or 3) at the output's `size` (height, width): the image
        the model saw, enlarged nearest-neighbour where it is smaller."""
        return display_rgb(net_input, size)

    def display_output(self, net_input: np.ndarray, image: np.ndarray) -> np.ndarray:
        """An output-like panel (the output, the target or a baseline for `net_input`), HxWx3 uint8."""
        return display_rgb(image)

    def baseline(self, net_input: np.ndarray, target: np.ndarray) -> np.ndarray | None:
        """The classic non-learned answer for a prepared input, comparable with `target`; None if none."""
        return None

    def known_pixels(self, net_input: torch.Tensor) -> torch.Tensor | None:
        """Training: (N, 1, H, W) float, 1 where the output pixel is the input's own (conversion copies
        it) and 0 where the net fills it in, for a (N, C_in, H, W) batch in [-1, 1]; None: the net
        makes every pixel."""
        return None

    def losses(self, settings: Settings | None) -> TaskLosses:
        """What this task tells a paired method about its losses (translate.losses.terms.TaskLosses)."""
        return TaskLosses()

    def eval_region(self, net_input: np.ndarray) -> np.ndarray | None:
        """HxW bool of the pixels evaluation's PSNR counts; None: all of them."""
        return None
