"""Folder conversion order: an image big enough to run as tiles takes many times as long as the
rest, so it goes after the small ones instead of holding them back; the order is otherwise kept."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, TypeVar

from translate.data.images import image_size

log = logging.getLogger(__name__)
Job = TypeVar("Job")


def small_first(jobs: Sequence[Job], runs_tiled: Callable[[int, int], bool],
                source: Callable[[Job], Path] = lambda job: job.src) -> list[Job]:  # type: ignore[attr-defined]
    """`jobs` with those whose source would run tiled (by its header; `runs_tiled(height, width)`)
    moved after the others; a stable partition, so each group keeps its order."""
    small: list[Any] = []
    big: list[Any] = []
    for job in jobs:
        size = image_size(source(job))  # (width, height) from the header; None when unknown
        (big if size is not None and runs_tiled(size[1], size[0]) else small).append(job)
    if big and small:
        log.info("%d large input%s converted after the %d others", len(big), "s" * (len(big) > 1), len(small))
    return small + big
