"""Padding, tile layout and blend windows of translate.inference.tiling (pure maths)."""
from __future__ import annotations

import numpy as np
import pytest

from translate.inference import tiling


@pytest.mark.parametrize("length", [1, 2, 3, 31, 32, 33, 255, 256, 257, 333, 517])
@pytest.mark.parametrize("multiple", [1, 4, 32, 256])
def test_pad_amounts_reach_smallest_multiple_and_stay_centred(length, multiple):
    before, after = tiling.pad_amounts(length, multiple)
    total = length + before + after
    assert total % multiple == 0
    assert total - multiple < length <= total  # the smallest such multiple
    assert 0 <= after - before <= 1


def test_padding_for_odd_image():
    pad = tiling.padding_for(333, 517, 4)
    assert (pad.top, pad.bottom, pad.left, pad.right) == (1, 2, 1, 2)
    assert tiling.padding_for(256, 256, 256) == tiling.Padding(0, 0, 0, 0)


@pytest.mark.parametrize(
    "length,tile,overlap,align",
    [(64, 64, 8, 1), (65, 64, 8, 1), (1000, 256, 32, 4), (1000, 256, 0, 4), (4096, 1024, 128, 4),
     (2048, 512, 64, 256), (520, 512, 500, 4), (777, 100, 99, 1)],
)
def test_tile_starts_cover_with_overlap_and_alignment(length, tile, overlap, align):
    length = tiling.round_up(length, align)
    starts = tiling.tile_starts(length, tile, overlap, align=align)
    size = min(tile, length)
    assert starts[0] == 0 and starts[-1] + size == length
    assert starts == sorted(set(starts))
    assert all(s % align == 0 for s in starts)
    covered = np.zeros(length, dtype=int)
    for s in starts:
        covered[s : s + size] += 1
    assert covered.min() >= 1
    for a, b in zip(starts, starts[1:]):
        assert a + size - b >= min(overlap, size - align)  # requested overlap kept (or max possible)
    # No wasted tiles: one fewer could not keep the overlap.
    if len(starts) > 1:
        max_stride = max(align, (tile - overlap) // align * align)
        assert (len(starts) - 2) * max_stride + size < length


def test_tile_starts_rejects_bad_arguments():
    with pytest.raises(ValueError, match="overlap_px"):
        tiling.tile_starts(100, 10, 10)
    with pytest.raises(ValueError, match="multiples of align"):
        tiling.tile_starts(101, 12, 2, align=4)


def test_blend_ramp_is_positive_smooth_and_complementary():
    for n in (1, 2, 7, 32, 129):
        ramp = tiling.blend_ramp(n)
        assert ramp.shape == (n,) and ramp.dtype == np.float32
        assert (ramp > 0).all() and (ramp < 1).all() and (np.diff(ramp) > 0).all()
        np.testing.assert_allclose(ramp + ramp[::-1], 1.0, atol=1e-6)


def test_window_is_partition_of_unity_for_regular_overlaps():
    # Tiles of 64 at stride 48 over 160 px: every overlap is exactly 16 px, so raw weights sum to 1.
    starts = tiling.tile_starts(160, 64, 16)
    assert starts == [0, 48, 96]
    total = np.zeros(160)
    for s in starts:
        total[s : s + 64] += tiling.window_1d(s, 64, starts)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_border_sides_keep_full_weight():
    starts = tiling.tile_starts(200, 100, 20)
    first = tiling.window_1d(starts[0], 100, starts)
    last = tiling.window_1d(starts[-1], 100, starts)
    assert first[0] == 1.0 and first[-1] < 0.01
    assert last[-1] == 1.0 and last[0] < 0.01


def test_default_overlap():
    assert tiling.default_overlap(1024) == 128
    assert tiling.default_overlap(4096) == 128
    assert tiling.default_overlap(512) == 64
    assert tiling.default_overlap(64) == 32
    assert tiling.default_overlap(32) == 16


def _processed(height, width, tile_h, tile_w, overlap, multiple):
    rows = tiling.tile_starts(height, tile_h, tiling.clamp_overlap(overlap, tile_h, multiple), align=multiple)
    cols = tiling.tile_starts(width, tile_w, tiling.clamp_overlap(overlap, tile_w, multiple), align=multiple)
    return len(rows) * len(cols) * tile_h * tile_w


@pytest.mark.parametrize("height,width,max_pixels,overlap,multiple", [
    (1024, 1024, 1_000_000, 128, 4), (2048, 2048, 1_000_000, 128, 4), (4096, 4096, 1_400_000, 128, 4),
    (2048, 2048, 2_400_000, 192, 256), (300, 5000, 200_000, 32, 4), (1024, 1024, 10_000_000, 128, 4),
])
def test_plan_tiles_fits_the_budget_and_wastes_little(height, width, max_pixels, overlap, multiple):
    tile_h, tile_w = tiling.plan_tiles(height, width, max_pixels=max_pixels, overlap_px=overlap, multiple=multiple)
    assert tile_h % multiple == 0 and tile_w % multiple == 0
    assert tile_h <= height and tile_w <= width
    assert tile_h * tile_w <= max_pixels
    processed = _processed(height, width, tile_h, tile_w, overlap, multiple)
    # No square tiling of the same budget does better.
    side = int(max_pixels**0.5) // multiple * multiple
    square = _processed(height, width, min(side, height), min(side, width), overlap, multiple)
    assert processed <= square
    if height * width <= max_pixels:
        assert (tile_h, tile_w) == (height, width)


def test_plan_tiles_just_over_budget_uses_two_tiles():
    tile_h, tile_w = tiling.plan_tiles(1024, 1024, max_pixels=1_000_000, overlap_px=128, multiple=4)
    assert _processed(1024, 1024, tile_h, tile_w, 128, 4) <= 1.2 * 1024 * 1024
    assert tiling.plan_tiles(64, 64, max_pixels=10, overlap_px=8, multiple=16) == (16, 16)


@pytest.mark.parametrize("scale", [1, 4])
@pytest.mark.parametrize("length,tile,overlap,align", [(1000, 256, 64, 4), (520, 512, 500, 4), (96, 96, 8, 4)])
def test_axis_weights_outer_products_sum_to_one(length, tile, overlap, align, scale):
    starts = tiling.tile_starts(length, tile, overlap, align=align)
    size = min(tile, length)
    weights = tiling.axis_weights(starts, size, scale=scale)
    total = np.zeros((length * scale, length * scale))
    for sy, wy in zip(starts, weights):
        for sx, wx in zip(starts, weights):
            assert (wy > 0).all()
            total[sy * scale : (sy + size) * scale, sx * scale : (sx + size) * scale] += np.outer(wy, wx)
    np.testing.assert_allclose(total, 1.0, atol=1e-5)


def test_pad_amounts_minimum_side():
    assert tiling.pad_amounts(3, 4, minimum=16) == (6, 7)
    assert tiling.pad_amounts(20, 4, minimum=16) == (0, 0)
    assert tiling.pad_amounts(5, 256, minimum=16) == (125, 126)


@pytest.mark.parametrize("length,before,after", [(10, 3, 4), (5, 0, 0), (3, 7, 2), (1, 2, 3), (2, 5, 5)])
def test_padded_index_reflects_like_repeated_reflect_padding(length, before, after):
    index = tiling.padded_index(length, before, after)
    assert len(index) == length + before + after
    assert (index[before : before + length] == np.arange(length)).all()
    if before < length and after < length:
        assert (index == np.pad(np.arange(length), (before, after), mode="reflect")).all()
    if length == 1:
        assert (index == 0).all()
    assert index.min() >= 0 and index.max() < length
