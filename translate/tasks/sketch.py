"""sketch: line drawing (dark lines on white) -> photo, like pix2pix's edges2shoes. Training sketches
are rendered from the photos themselves: Canny edges and XDoG pencil lines."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Literal

import cv2
import numpy as np

from translate.config import Settings
from translate.tasks.base import PairMaker, Task, rgb8

from translate.errors import ConfigError

SketchStyle = Literal["canny", "xdog", "mixed"]


def canny_lines(photo: np.ndarray, *, blur_sigma: float = 1.0, spread: float = 0.33,
                line_thickness: int = 1) -> np.ndarray:
    """HxWx1 uint8 Canny edges drawn as black (0) lines on white (255).

    Thresholds follow the grey median m: (1 - spread) * m and (1 + spread) * m, so they adapt to
    exposure; the Gaussian pre-blur (sigma in px) keeps texture and noise out of the lines.
    """
    grey = cv2.cvtColor(rgb8(photo), cv2.COLOR_RGB2GRAY)
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
    grey = cv2.cvtColor(rgb8(photo), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    sharpened = (1 + p) * cv2.GaussianBlur(grey, (0, 0), sigma) - p * cv2.GaussianBlur(grey, (0, 0), k * sigma)
    tone = np.where(sharpened >= epsilon, 1.0, 1.0 + np.tanh(phi * (sharpened - epsilon)))
    lines = np.rint(np.clip(tone, 0.0, 1.0) * 255).astype(np.uint8)
    return _thicken(lines, line_thickness)[:, :, None]


def _thicken(lines: np.ndarray, line_thickness: int) -> np.ndarray:
    if line_thickness < 1:
        raise ConfigError(f"line_thickness: must be at least 1 pixel, got {line_thickness}")
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
        raise ConfigError(f"sketch_style: unknown {style!r}; choose canny, xdog or mixed")
    photo = rgb8(photo)
    if style == "mixed":
        style = "canny" if rng.random() < 0.5 else "xdog"
    if style == "canny":
        sketch = canny_lines(photo, blur_sigma=rng.uniform(0.8, 1.5), line_thickness=line_thickness)
    else:
        sketch = xdog_lines(photo, sigma=rng.uniform(0.6, 1.0), line_thickness=line_thickness)
    return sketch, photo


@dataclass
class SketchSettings(Settings):
    """How sketch renders its training sketches from photos (YAML `sketch:`)."""

    SECTION: ClassVar[str] = "sketch"
    sketch_style: SketchStyle = "mixed"
    line_thickness: int = 1  # line width in pixels


class Sketch(Task):
    name = "sketch"
    description = "line drawing -> photo: Canny/XDoG sketches (1 channel) in, RGB out"

    settings = SketchSettings

    def pair_maker(self, synth: SketchSettings) -> PairMaker:
        return functools.partial(sketch_pair, style=synth.sketch_style, line_thickness=synth.line_thickness)
