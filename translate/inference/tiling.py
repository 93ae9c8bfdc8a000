"""Pure padding / tiling / blending maths for converting images of any size (no torch, no I/O).

Coordinates are pixels on the *padded* image unless a name says otherwise. A generator needs
H and W to be multiples of its `size_multiple`; we reflect-pad up to that, run the net on the
whole padded image or on overlapping tiles of it, blend the tiles with a smooth window and crop
the padding back off, so the output has exactly the input size (times the net's `scale`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Padding:
    """Pixels added on each side of an image."""

    top: int
    bottom: int
    left: int
    right: int


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of `multiple` that is >= `value`."""
    if multiple < 1:
        raise ValueError(f"multiple: must be >= 1, got {multiple}")
    return -(-value // multiple) * multiple


def pad_amounts(length: int, multiple: int, *, minimum: int = 1) -> tuple[int, int]:
    """(before, after) padding that brings `length` up to a multiple of `multiple` (and to at
    least `minimum`, rounded up to the multiple: nets with reflect padding inside need their
    deepest feature maps to be more than one pixel wide).

    Split evenly (the odd pixel goes after) so the image stays centred: border effects of the
    reflect padding then fall equally on both sides instead of all on the bottom/right edge.
    """
    if length < 1:
        raise ValueError(f"length: must be >= 1, got {length}")
    total = round_up(max(length, minimum), multiple) - length
    return total // 2, total - total // 2


def padding_for(height: int, width: int, multiple: int, *, minimum: int = 1) -> Padding:
    """Padding that makes an image of `height` x `width` a multiple of `multiple` both ways."""
    top, bottom = pad_amounts(height, multiple, minimum=minimum)
    left, right = pad_amounts(width, multiple, minimum=minimum)
    return Padding(top=top, bottom=bottom, left=left, right=right)


def padded_index(length: int, before: int, after: int) -> np.ndarray:
    """Source index of every position of an axis of `length` padded by `before` / `after` with
    reflection (no edge repeat), reflected again while a pad exceeds the axis; a 1-long axis can
    only be replicated. Indexing an image with it pads it, or any window of the padded image."""
    if length < 1:
        raise ValueError(f"length: must be >= 1, got {length}")
    index = np.arange(length)
    while before or after:
        if len(index) == 1:
            return np.pad(index, (before, after), mode="edge")
        b, a = min(before, len(index) - 1), min(after, len(index) - 1)
        index = np.pad(index, (b, a), mode="reflect")
        before, after = before - b, after - a
    return index


def tile_starts(length: int, tile_size: int, overlap_px: int, *, align: int = 1) -> list[int]:
    """Start offsets of tiles of `tile_size` covering [0, length) with at least `overlap_px` overlap.

    Starts are multiples of `align` (pass the net's size multiple, so every tile sees the same
    stride-2 sampling grid as the whole image would) and spread evenly, so all overlaps are about
    the same size; the first tile starts at 0 and the last ends at `length`. `length` and
    `tile_size` must be multiples of `align`. A `length` up to `tile_size` gives one tile.
    """
    if tile_size < 1 or align < 1:
        raise ValueError(f"tile_size and align must be >= 1, got {tile_size} and {align}")
    if length % align or tile_size % align:
        raise ValueError(f"length {length} and tile_size {tile_size} must be multiples of align {align}")
    if not 0 <= overlap_px < tile_size:
        raise ValueError(f"overlap_px: must be in [0, tile_size={tile_size}), got {overlap_px}")
    if length <= tile_size:
        return [0]
    # Largest aligned stride that keeps the requested overlap; at least one alignment step.
    max_steps = max(1, (tile_size - overlap_px) // align)
    span_steps = (length - tile_size) // align
    gaps = -(-span_steps // max_steps)  # number of strides between first and last tile
    return [round(k * span_steps / gaps) * align for k in range(gaps + 1)]


def blend_ramp(length: int) -> np.ndarray:
    """Rising half-cosine (sin^2) ramp of `length` values in (0, 1), float32.

    `ramp + ramp[::-1] == 1`, so two tiles overlapping by exactly `length` pixels blend to a
    partition of unity; no value is 0, so every covered pixel keeps a positive total weight.
    """
    i = np.arange(length, dtype=np.float64)
    return (np.sin(0.5 * np.pi * (i + 0.5) / max(length, 1)) ** 2).astype(np.float32)


def window_1d(start: int, size: int, starts: list[int]) -> np.ndarray:
    """Blend weights along one axis for the tile at `start` among tiles at `starts` (all `size` long).

    Sides that touch the image border stay at weight 1 (nothing to blend with); a side shared
    with a neighbour ramps down over the actual overlap (at most half the tile, so the two
    ramps of a middle tile never meet). The low weight at tile edges hides the edge pixels,
    which see reflect padding instead of real context inside the net.
    """
    weights = np.ones(size, dtype=np.float32)
    index = starts.index(start)
    if index > 0:
        ramp = min(starts[index - 1] + size - start, size // 2)
        if ramp > 0:
            weights[:ramp] = blend_ramp(ramp)
    if index < len(starts) - 1:
        ramp = min(start + size - starts[index + 1], size // 2)
        if ramp > 0:
            weights[size - ramp :] = blend_ramp(ramp)[::-1]
    return weights


def axis_weights(starts: list[int], size: int, *, scale: int = 1) -> list[np.ndarray]:
    """Normalised blend weights along one axis: one (size*scale,) float32 array per tile start.

    Tile weights are outer products of a row and a column window, and the tiles form a full
    row x column grid, so the 2-D weight sum is the outer product of the 1-D sums: normalising
    each axis makes the 2-D weights of all tiles sum to exactly 1 at every output pixel, with no
    full-size weight buffer. `scale` is the net's output/input size ratio.
    """
    scaled = [s * scale for s in starts]
    windows = [window_1d(s, size * scale, scaled) for s in scaled]
    total = np.zeros(scaled[-1] + size * scale, dtype=np.float64)
    for s, w in zip(scaled, windows):
        total[s : s + size * scale] += w
    return [(w / total[s : s + size * scale]).astype(np.float32) for s, w in zip(scaled, windows)]


def clamp_overlap(overlap_px: int, tile_length: int, multiple: int) -> int:
    """The overlap a tile of `tile_length` can have: a stride of at least one `multiple`."""
    return max(0, min(overlap_px, tile_length - multiple))


def _tile_lengths(length: int, overlap_px: int, multiple: int) -> list[int]:
    """Decreasing tile lengths that cover `length` with 1, 2, 3, ... tiles (multiples of `multiple`)."""
    lengths: list[int] = []
    for n in range(1, length // multiple + 1):
        tile = min(length, round_up(-(-(length + (n - 1) * overlap_px) // n), multiple))
        if tile - overlap_px < multiple:
            break  # tiles would be mostly overlap
        if not lengths or tile < lengths[-1]:
            lengths.append(tile)
    return lengths or [multiple]


def plan_tiles(height: int, width: int, *, max_pixels: float, overlap_px: int, multiple: int,
               row_cost: float = 0.0) -> tuple[int, int]:
    """(tile_height, tile_width) for a padded `height` x `width` image: tiles of at most
    `max_pixels`, multiples of `multiple`, that minimise the pixels the net must process.

    `row_cost` charges every row of a tile as that many more pixels: the float band of output
    rows a tile row blends into (`RowBands`) spans the whole width, so tile_height *
    (tile_width + row_cost) <= max_pixels keeps tiles and band within one budget.
    Tiles may be rectangles: an image just over the budget becomes two tiles of half the image
    plus the overlap, not four squares. Never below `multiple` a side, whatever the budget.
    """
    rows = _tile_lengths(height, overlap_px, multiple)
    cols = _tile_lengths(width, overlap_px, multiple)

    def cost(tile_h: int, tile_w: int) -> tuple[int, int]:
        n_rows = len(tile_starts(height, tile_h, clamp_overlap(overlap_px, tile_h, multiple), align=multiple))
        n_cols = len(tile_starts(width, tile_w, clamp_overlap(overlap_px, tile_w, multiple), align=multiple))
        return n_rows * n_cols * tile_h * tile_w, n_rows * n_cols

    best: tuple[tuple[int, int], tuple[int, int]] | None = None
    for tile_h in rows:
        # For a given height, the widest tile that fits needs the fewest columns; the next
        # narrower one is tried too because rounding to `multiple` can favour it.
        fitting = [w for w in cols if tile_h * (w + row_cost) <= max_pixels][:2]
        for tile_w in fitting:
            candidate = (cost(tile_h, tile_w), (tile_h, tile_w))
            if best is None or candidate[0] < best[0]:
                best = candidate
    if best is None:
        return min(height, multiple), min(width, multiple)
    return best[1]


def default_overlap(tile_size: int) -> int:
    """Default tile overlap: an eighth of the tile, 32 to 128 px (beyond the border zone where
    reflect padding inside the net changes the output), and at most half the tile."""
    return min(max(32, min(tile_size // 8, 128)), tile_size // 2)


class RowBands:
    """The blended, cropped output of a tile grid, built one tile row at a time in a float band.

    The band holds the current tile row's output rows at full output width. Tiles add into it
    weighted (`axis_weights`; parts over the padding dropped); once a tile row is done, the rows
    above the next tile row's top can receive nothing more and are handed out finished, and the
    rest moves up. So a tiled image never has a full-size float output: one band of
    tile_height * scale rows, whatever the image height. Tiles add in row-major order onto
    zeros, as into a whole-image buffer, so every output value is bitwise the same.
    """

    def __init__(self, tops: list[int], lefts: list[int], tile: tuple[int, int], pad: Padding,
                 size: tuple[int, int], *, channels: int, scale: int = 1) -> None:
        self.tops, self.lefts, self.tile, self.pad, self.size, self.scale = tops, lefts, tile, pad, size, scale
        self.row_weights = axis_weights(tops, tile[0], scale=scale)
        self.col_weights = axis_weights(lefts, tile[1], scale=scale)
        self.band = np.zeros((channels, tile[0] * scale, size[1] * scale), dtype=np.float32)
        self.band_top = 0  # cropped input row of the band's first row
        self._handed_out = 0  # band rows (in input rows) handed out, to move up before the next add

    def add(self, row: int, col: int, output: np.ndarray) -> None:
        """Add tile (`row`, `col`)'s output, (C, tile_h*s, tile_w*s) float32 (weighted in place)."""
        self._move_up()
        s, pad = self.scale, self.pad
        top, left = self.tops[row], self.lefts[col]
        output *= self.row_weights[row][:, None] * self.col_weights[col][None, :]
        r0, r1 = max(top, pad.top), min(top + self.tile[0], pad.top + self.size[0])
        c0, c1 = max(left, pad.left), min(left + self.tile[1], pad.left + self.size[1])
        if r0 < r1 and c0 < c1:
            b0 = r0 - pad.top - self.band_top
            self.band[:, b0 * s : (b0 + r1 - r0) * s, (c0 - pad.left) * s : (c1 - pad.left) * s] += \
                output[:, (r0 - top) * s : (r1 - top) * s, (c0 - left) * s : (c1 - left) * s]

    def finish_row(self, row: int) -> tuple[int, np.ndarray]:
        """After every tile of `row` was added: (first output row, the finished output rows as a
        (C, n, W*s) view of the band, valid until the next `add`); n may be 0."""
        self._move_up()
        height = self.size[0]
        end = height if row == len(self.tops) - 1 else min(max(self.tops[row + 1] - self.pad.top, 0), height)
        done = max(end - self.band_top, 0)
        first = self.band_top * self.scale
        self._handed_out, self.band_top = done, self.band_top + done
        return first, self.band[:, : done * self.scale]

    def _move_up(self) -> None:
        """Drop the rows handed out: the rest moves to the band's top (in chunks no longer than
        the shift, so no copy overlaps its source), and the rows freed below become zeros."""
        shift = self._handed_out * self.scale
        if not shift:
            return
        rows = self.band.shape[1]
        for start in range(0, rows - shift, shift):
            stop = min(start + shift, rows - shift)
            self.band[:, start:stop] = self.band[:, start + shift : stop + shift]
        self.band[:, max(rows - shift, 0) :] = 0.0
        self._handed_out = 0
