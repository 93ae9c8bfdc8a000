"""Sanity bounds on sizes a user gives (`--tile-size`, `--max-megapixels`): a number no image can
reach, or infinity, is refused by name instead of being taken literally or silently turning a
limit off."""
from __future__ import annotations

import math

from translate.errors import TranslatorError

# The largest side any image translate reads can have (PNG, TIFF and WebP headers allow more; our
# pixel limits do not), so a tile larger than this is always a typo.
MAX_TILE_SIDE = 1 << 16


def check_tile_size(tile_size: int | None) -> None:
    """TranslatorError unless `tile_size` is None or a side an image can have."""
    if tile_size is not None and tile_size > MAX_TILE_SIDE:
        raise TranslatorError(f"tile_size: {tile_size:.4g} px is larger than any image can be (at most "
                              f"{MAX_TILE_SIDE}); leave it out to tile by the memory budget")


def check_megapixels(value: float, flag: str = "--max-megapixels") -> None:
    """TranslatorError unless `value` is a positive, finite number of megapixels."""
    if not (value > 0 and math.isfinite(value)):
        raise TranslatorError(f"{flag}: must be a positive, finite number of megapixels, got {value}; "
                              "a larger finite limit lets bigger images through")
