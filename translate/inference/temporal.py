"""Training-free temporal stabiliser for frame-by-frame video translation.

After Bonneel et al. 2015 ("Blind Video Temporal Consistency") and Lai et al. 2018: the previous
*stabilised* output is warped along the optical flow of the *inputs* (DIS) to the current frame
and blended with the current output, where the flow is trusted:

    s_t = o_t + strength * M_t * (W(s_{t-1}) - o_t)

M_t is 0 at pixels the forward-backward check calls occluded or outside the previous frame, and
elsewhere Lai et al.'s confidence exp(-50 ||I_t - W(I_{t-1})||^2) (inputs in [0, 1]), which
falls where the warped input does not match the current input (flow failure, a cut, a light
change), so real changes pass through instead of leaving ghosts. Because s_{t-1} already holds
earlier frames, this is an exponential average along motion paths: per-frame flicker shrinks,
edges and new content stay those of the current output.
"""
from __future__ import annotations

import cv2
import numpy as np

from translate.errors import ConfigError
from translate.metrics.temporal import FlowEstimator, to_unit, valid_mask, warp

# Lai et al. 2018, section 3.2: the weight of their short-term loss, alpha = 50 for [0, 1] images.
_CONFIDENCE_ALPHA = 50.0


def _resize_to(array: np.ndarray, height: int, width: int, *, scale_values: float = 1.0) -> np.ndarray:
    """Bilinear resize of an HxWxC float array to height x width; `scale_values` multiplies it (flows)."""
    if array.shape[:2] == (height, width):
        return array
    resized = cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR).reshape(height, width, -1)
    return resized * scale_values


class TemporalStabilizer:
    """Feeds frames in order: `stabilised = stabilizer(frame, output)`.

    `frame` is the decoded input (HxWxC uint8/uint16), `output` the Translator's output for it
    (same dtype; size may be a multiple of the input's, super-resolution); the result has the
    output's shape and dtype. `strength` in [0, 1]: 0 returns outputs unchanged, 1 keeps the
    warped past wherever the flow is trusted. Holds one frame of state; not thread-safe.
    """

    def __init__(self, strength: float) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ConfigError(f"strength must be in [0, 1], got {strength}")
        self.strength = float(strength)
        self.flow = FlowEstimator(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._previous_frame: np.ndarray | None = None
        self._previous_result: np.ndarray | None = None  # float32, [0, 1], output-sized

    def __call__(self, frame: np.ndarray, output: np.ndarray) -> np.ndarray:
        current = to_unit(output).reshape(*output.shape[:2], -1)
        if self._previous_frame is None or self.strength == 0.0 or self._previous_frame.shape != frame.shape:
            result = current
        else:
            result = self._blend(frame, current)
        self._previous_frame, self._previous_result = frame, result
        top = float(np.iinfo(output.dtype).max)
        return np.clip(result * top + 0.5, 0, top).astype(output.dtype).reshape(output.shape)

    def weight(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(HxWx1 blend weight strength * M_t, HxWx2 flow current->previous) at input size."""
        previous = self._previous_frame
        to_previous, to_current = self.flow(frame, previous), self.flow(previous, frame)
        visible = valid_mask(to_previous, to_current)
        mismatch = ((to_unit(frame) - warp(to_unit(previous), to_previous)) ** 2).reshape(*frame.shape[:2], -1)
        confidence = np.exp(-_CONFIDENCE_ALPHA * mismatch.sum(-1))
        return (self.strength * visible * confidence)[..., None].astype(np.float32), to_previous

    def _blend(self, frame: np.ndarray, current: np.ndarray) -> np.ndarray:
        weight, to_previous = self.weight(frame)
        height, width = current.shape[:2]
        scale = width / frame.shape[1]
        weight = _resize_to(weight, height, width)
        to_previous = _resize_to(to_previous, height, width, scale_values=scale)
        warped = warp(self._previous_result, to_previous).reshape(current.shape)
        return current + weight * (warped - current)
