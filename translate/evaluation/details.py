"""Zoomed detail crops for the evaluation page: the windows where the model and the baseline differ
most, each shown enlarged (nearest neighbour) as input | baseline | output | target side by side,
because whole photos shrunk to thumbnails hide exactly the differences a user wants to judge."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from translate.data.images import write_image
from translate.tasks.base import display_rgb

MAX_WINDOWS = 3
SHOWN_PX = 192  # about how large each crop is drawn: enlarged by a whole factor up to this
_GAP_PX = 4


def window_side(height: int, width: int) -> int:
    """Crop side in pixels: a quarter of the shorter side, kept within 8..64 so a crop stays a detail."""
    return max(1, min(min(height, width), max(8, min(64, min(height, width) // 4))))


def differing_windows(one: np.ndarray, other: np.ndarray, side: int, *,
                      limit: int = MAX_WINDOWS) -> list[tuple[int, int]]:
    """(top, left) of up to `limit` non-overlapping side x side windows with the highest mean
    |one - other| (HxWxC, any dtype), greatest first; windows where the two agree are left out."""
    difference = np.abs(one.astype(np.float32) - other.astype(np.float32)).mean(axis=2)
    # Mean over every window at once: a box filter, then keep the positions where it fits inside.
    means = cv2.boxFilter(difference, -1, (side, side), anchor=(0, 0), normalize=True,
                          borderType=cv2.BORDER_CONSTANT)
    means = means[: difference.shape[0] - side + 1, : difference.shape[1] - side + 1].copy()
    windows: list[tuple[int, int]] = []
    while len(windows) < limit and means.size:
        top, left = np.unravel_index(int(np.argmax(means)), means.shape)
        if means[top, left] <= 0:
            break
        windows.append((int(top), int(left)))
        # No later window may overlap this one: clear every top-left within one side of it.
        means[max(0, top - side + 1) : top + side, max(0, left - side + 1) : left + side] = -1.0
    return windows


def detail_crops(panels: dict[str, np.ndarray | None], scored: dict[str, np.ndarray | None],
                 out_dir: Path, stem: str) -> list[dict[str, Any]]:
    """Write one strip image per window where the scored output and baseline (or, without a baseline,
    the target) differ most; the strip shows the `panels` in `strip_kinds` order. Returns
    [{"image": path relative to out_dir, "top", "left", "size", "panels": [kind, ...]}]."""
    output, reference = scored.get("output"), scored.get("baseline")
    if reference is None:
        reference = scored.get("target")
    if output is None or reference is None or output.shape != reference.shape:
        return []
    side = window_side(*output.shape[:2])
    kinds = strip_kinds(panels)
    crops = []
    for number, (top, left) in enumerate(differing_windows(output, reference, side), start=1):
        strip = _strip([panels[k][top : top + side, left : left + side] for k in kinds], side)
        path = f"images/{stem}_detail{number}.png"
        write_image(out_dir / path, strip)
        crops.append({"image": path, "top": top, "left": left, "size": side, "panels": kinds})
    return crops


def strip_kinds(panels: dict[str, np.ndarray | None]) -> list[str]:
    """The panels a strip shows, in order; the baseline is left out where it is the input panel
    itself (super-resolution shows its input bicubically enlarged, which is the baseline)."""
    kinds = [k for k in ("input", "baseline", "output", "target") if panels.get(k) is not None]
    if "baseline" in kinds and "input" in kinds and np.array_equal(
            display_rgb(panels["input"]), display_rgb(panels["baseline"])):
        kinds.remove("baseline")
    return kinds


def _strip(crops: list[np.ndarray], side: int) -> np.ndarray:
    """Crops enlarged by one whole factor (nearest neighbour: pixels stay sharp squares), side by side."""
    zoom = max(1, SHOWN_PX // side)
    gap = np.full((side * zoom, _GAP_PX, 3), 255, np.uint8)
    tiles = []
    for crop in crops:
        tiles += [np.repeat(np.repeat(display_rgb(crop), zoom, axis=0), zoom, axis=1), gap]
    return np.concatenate(tiles[:-1], axis=1)
