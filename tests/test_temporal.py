"""Temporal warping error (Lai et al. 2018) against a re-statement of its equations, and the stabiliser."""
from __future__ import annotations

import numpy as np
import pytest

from translate.inference.temporal import TemporalStabilizer
from translate.metrics.temporal import FlowEstimator, pair_warping_error, valid_mask, warping_error


def bilinear(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """image (HxWxC) at (x, y), coordinates clamped to the image (border replicated)."""
    height, width = image.shape[:2]
    x, y = min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
    fx, fy = x - x0, y - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def paper_pair_error(v_t: np.ndarray, v_next: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> float:
    """Lai et al. 2018 eq. 8, pixel by pixel: E = 1 / sum(M) * sum_i M_i ||V_t(i) - W(V_t+1)(i)||^2, frames in
    [0, 1], W warping by the t -> t+1 flow, M_i = 1 unless the forward-backward check (Sundaram et al. 2010:
    |w_f + w_b(p + w_f)|^2 > 0.01 (|w_f|^2 + |w_b(p + w_f)|^2) + 0.5) or leaving the frame says occluded."""
    height, width = v_t.shape[:2]
    total, visible = 0.0, 0
    for y in range(height):
        for x in range(width):
            u, v = forward[y, x]
            tx, ty = x + u, y + v
            if not (0 <= tx <= width - 1 and 0 <= ty <= height - 1):
                continue
            back = bilinear(backward, tx, ty)
            if (u + back[0]) ** 2 + (v + back[1]) ** 2 > 0.01 * (u * u + v * v + back @ back) + 0.5:
                continue
            total += float(((v_t[y, x] - bilinear(v_next, tx, ty)) ** 2).sum())
            visible += 1
    return total / visible


@pytest.fixture
def sequence(photo) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Three 40x48 frames panning over a photo by (2, 1) px per frame, and outputs that flicker."""
    big = photo("astronaut", (60, 72))
    frames = [np.ascontiguousarray(big[8 - t : 48 - t, 12 - 2 * t : 60 - 2 * t]) for t in range(3)]
    rng = np.random.default_rng(0)
    outputs = [np.clip(f.astype(np.int16) + rng.integers(-20, 21, f.shape) + 15 * t, 0, 255).astype(np.uint8)
               for t, f in enumerate(frames)]
    return frames, outputs


def test_pair_error_matches_the_paper_equation(sequence):
    frames, outputs = sequence
    flow = FlowEstimator()
    forward, backward = flow(frames[0], frames[1]), flow(frames[1], frames[0])
    ours = pair_warping_error(outputs[0], outputs[1], forward, valid_mask(forward, backward))
    reference = paper_pair_error(outputs[0] / 255.0, outputs[1] / 255.0, forward, backward)
    assert ours == pytest.approx(reference, rel=1e-4)
    assert ours > pair_warping_error(frames[0], frames[1], forward, valid_mask(forward, backward))


def test_video_error_is_the_mean_over_consecutive_pairs(sequence):
    frames, outputs = sequence
    flow = FlowEstimator()
    pairs = []
    for t in range(2):
        forward, backward = flow(frames[t], frames[t + 1]), flow(frames[t + 1], frames[t])
        pairs.append(paper_pair_error(outputs[t] / 255.0, outputs[t + 1] / 255.0, forward, backward))
    assert warping_error(frames, outputs) == pytest.approx(np.mean(pairs), rel=1e-4)


def test_stabiliser_cuts_flicker_and_strength_zero_changes_nothing(photo):
    rng = np.random.default_rng(1)
    big = photo("chelsea", (72, 96))
    frames = [np.ascontiguousarray(big[8:56, 16 - t : 80 - t]) for t in range(8)]  # a slow pan
    noisy = [np.clip(f + rng.normal(0, 8, f.shape), 0, 255).astype(np.uint8) for f in frames]
    off, on = TemporalStabilizer(0.0), TemporalStabilizer(0.8)
    assert all(np.array_equal(off(f, o), o) for f, o in zip(frames, noisy))
    steady = [on(f, o) for f, o in zip(frames, noisy)]
    assert warping_error(frames, steady) < 0.7 * warping_error(frames, noisy)


def test_stabiliser_follows_a_super_resolved_output_size(photo):
    frames = [photo("coffee", (32, 40))] * 2
    stabiliser = TemporalStabilizer(0.5)
    outputs = [stabiliser(f, np.repeat(np.repeat(f, 2, 0), 2, 1)) for f in frames]
    assert outputs[1].shape == (64, 80, 3) and outputs[1].dtype == np.uint8
