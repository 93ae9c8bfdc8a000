"""Temporal flicker: optical flow between input frames, occlusion masks, backward warping, and the
temporal warping error of Lai et al. 2018 ("Learning Blind Video Temporal Consistency", eq. 8-9).

Frames cross this API as HxWx3 numpy arrays, uint8 RGB (or uint16, scaled to [0, 1] likewise);
flows are HxWx2 float32 (dx, dy) in pixels, mapping a pixel of the first frame to where it lies
in the second. Flow comes from OpenCV's DIS (Kroeger et al. 2016), computed on the *input* frames,
so a method cannot lower its own error by being blurry in a way that confuses the flow.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

# Forward-backward consistency check (Sundaram et al. 2010, as used by Ruder et al. 2016 and Lai et
# al. 2018): p is occluded when |w_f(p) + w_b(p + w_f(p))|^2 > 0.01 (|w_f|^2 + |w_b|^2) + 0.5.
_FB_RELATIVE = 0.01
_FB_ABSOLUTE_PX2 = 0.5


def to_unit(frame: np.ndarray) -> np.ndarray:
    """uint8/uint16 HxWxC -> float32 in [0, 1]."""
    return frame.astype(np.float32) / float(np.iinfo(frame.dtype).max)


def _gray8(frame: np.ndarray) -> np.ndarray:
    unit = to_unit(frame)
    gray = cv2.cvtColor(unit, cv2.COLOR_RGB2GRAY) if unit.ndim == 3 and unit.shape[2] == 3 else unit.reshape(unit.shape[:2])
    return np.clip(gray * 255.0 + 0.5, 0, 255).astype(np.uint8)


class FlowEstimator:
    """DIS optical flow between two frames (one OpenCV object reused; not thread-safe)."""

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> None:
        self._dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """HxWx2 float32 flow from `first` to `second` (both HxWxC uint8/uint16)."""
        return self._dis.calc(_gray8(first), _gray8(second), None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`image` (HxWxC float32) sampled at p + flow(p), bilinear: the second frame brought back to
    the first along a first->second flow. Points outside the image take the border value."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    return warped.reshape(image.shape)


def valid_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """HxW bool, True where the first frame's pixel is visible in the second: its forward flow
    lands inside the image and the backward flow there brings it back (forward-backward check)."""
    height, width = forward.shape[:2]
    back_at_target = warp(backward, forward)
    loop = forward + back_at_target
    magnitude = (forward**2).sum(-1) + (back_at_target**2).sum(-1)
    consistent = (loop**2).sum(-1) <= _FB_RELATIVE * magnitude + _FB_ABSOLUTE_PX2
    grid_x, grid_y = np.meshgrid(np.arange(width), np.arange(height))
    target_x, target_y = grid_x + forward[..., 0], grid_y + forward[..., 1]
    inside = (target_x >= 0) & (target_x <= width - 1) & (target_y >= 0) & (target_y <= height - 1)
    return consistent & inside


def pair_warping_error(output: np.ndarray, next_output: np.ndarray, forward: np.ndarray,
                       mask: np.ndarray) -> float:
    """Lai et al. eq. 8: sum over visible pixels i of ||V_t(i) - W(V_{t+1})(i)||^2 (over channels,
    values in [0, 1]) divided by the count of visible pixels; 0.0 when none is visible."""
    visible = int(mask.sum())
    if visible == 0:
        return 0.0
    squared = ((to_unit(output) - warp(to_unit(next_output), forward)) ** 2).sum(-1)
    return float(squared[mask].sum() / visible)


@dataclass
class WarpingError:
    """A running E_warp (Lai et al. eq. 9: the mean of eq. 8 over consecutive frame pairs)."""

    total: float = 0.0
    pairs: int = 0

    @property
    def value(self) -> float:
        return self.total / self.pairs if self.pairs else 0.0

    def add(self, value: float) -> None:
        self.total += value
        self.pairs += 1


class WarpingErrorMeter:
    """Streams (input frame, output frame) pairs and keeps E_warp of the outputs, with flow and
    occlusion from the inputs; holds only the previous pair, so any length fits in memory."""

    def __init__(self) -> None:
        self.flow = FlowEstimator()
        self.error = WarpingError()
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, frame: np.ndarray, output: np.ndarray) -> None:
        """One more input frame and its output (HxWxC uint8/uint16, same size as each other)."""
        if frame.shape[:2] != output.shape[:2]:
            output = cv2.resize(output, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_AREA)
        if self._previous is not None:
            previous_frame, previous_output = self._previous
            forward, backward = self.flow(previous_frame, frame), self.flow(frame, previous_frame)
            self.error.add(pair_warping_error(previous_output, output, forward, valid_mask(forward, backward)))
        self._previous = (frame, output)


def warping_error(frames: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> float:
    """E_warp of `outputs` (frame t's output at index t) with flow from `frames`; lower is steadier."""
    meter = WarpingErrorMeter()
    for frame, output in zip(frames, outputs, strict=True):
        meter.add(frame, output)
    return meter.error.value
