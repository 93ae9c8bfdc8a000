"""Turn a folder of photos into a paired dataset for a task recipe.

`prepare` writes the paired_folders layout that training and evaluation already read:
  OUT/{train,val,test}/A/<name>.png   the synthesised net input (PNG keeps 1 and 4 channels exactly)
  OUT/{train,val,test}/B/<name>.png   the target photo, always RGB (after max_side and, for superres,
                                      cropping to a multiple of the scale)
<name> is the photo's path below `src` without its suffix, folders joined by "__", so photos in
different subfolders cannot collide.

What A and B hold is the task's (`Task.prepared_files`): colorize writes the photo as B because PNG
cannot hold its 2-channel ab, and refuses grey photos. Preparing fixes one input per photo
(reproducible val/test sets, or to ship a dataset); training straight from a photo folder
(`layouts.find_photos_split` + the task's pair maker) draws fresh inputs every epoch. Both split
with `layouts.seeded_split`, so with test_fraction=0 equal val_fraction and seed give equal splits.
"""
from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from translate.data.images import ImageError, read_image, to_channels, to_uint8, write_image
from translate.data.layouts import SPLITS, DatasetError, find_photos, seeded_split
from translate.errors import ConfigError, TranslateError

log = logging.getLogger(__name__)

# (photo HxWx3 uint8, rng) -> (net_input, target) HxWxC uint8
PairMaker = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


class PhotoTask(Protocol):
    """What `prepare` needs of a task (translate.tasks.Task is one; data imports no task)."""

    name: str

    def pair_maker(self, settings: Any) -> PairMaker | None: ...

    def prepared_files(self, photo: np.ndarray, net_input: np.ndarray,
                       target: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class PrepareReport:
    """What `prepare` did: pairs written per split, and the photos it skipped with the reason."""

    task: str
    out: Path
    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.written.values())

    def summary(self) -> str:
        counts = ", ".join(f"{split} {n}" for split, n in self.written.items())
        return f"{self.task}: wrote {self.total} pair(s) to {self.out} ({counts}); skipped {len(self.skipped)}"


def prepare(task: PhotoTask, src: str | os.PathLike, out: str | os.PathLike, *, settings: Any, seed: int = 0,
            val_fraction: float = 0.1, test_fraction: float = 0.1, max_side: int | None = None,
            overwrite: bool = False) -> PrepareReport:
    """Synthesise (input, photo) pairs for `task` from every photo under `src` into `out` (see module doc),
    with the task's `settings` (config.task_settings; training-only augmentation is switched off).

    Photos are read as RGB (grey replicated, alpha dropped, 16 bits rounded to 8) and, with max_side,
    shrunk (INTER_AREA, never enlarged) so the longer side is at most max_side. Each photo's
    randomness is seeded by (seed, its path below src), so adding photos does not change the others.
    Unreadable or unusable photos are skipped and listed in the report; the batch carries on. Existing
    output files raise DatasetError before anything is written, unless overwrite=True.
    """
    make_pair = task.pair_maker(settings.without_augmentation() if settings is not None else None)
    if make_pair is None:
        raise ConfigError(f"task: {task.name!r} cannot be prepared from photos (its pairs come from files)")
    if max_side is not None and max_side < 1:
        raise ConfigError(f"max_side: must be at least 1 pixel, got {max_side}")
    src, out = Path(src), Path(out)
    photos = find_photos(src)
    if out.resolve().is_relative_to(src.resolve()):  # a rerun must not read its own outputs as photos
        photos = [p for p in photos if not p.resolve().is_relative_to(out.resolve())]
        if not photos:
            raise DatasetError(f"{src}: no photos outside the output folder {out}")
    splits = seeded_split(sorted(photos), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                          where=src)
    report = PrepareReport(task=task.name, out=out)
    plan = _plan(splits, src, report)
    if not overwrite:
        existing = [p for split, _, name in plan for p in _outputs(out, split, name) if p.exists()]
        if existing:
            raise DatasetError(
                f"{existing[0]}: already exists ({len(existing)} output file(s) of this run exist in {out}); "
                "choose another output folder or pass --overwrite (overwrite=True) to replace them"
            )

    for split, photo, name in plan:
        path_a, path_b = _outputs(out, split, name)
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        wrote_a = False
        try:
            image = _load_photo(photo, max_side)
            net_input, target = task.prepared_files(image, *make_pair(image, rng))
            write_image(path_a, net_input)
            wrote_a = True
            write_image(path_b, target)
        except (TranslateError, OSError, cv2.error) as e:
            if wrote_a:  # never leave a new A without its B
                path_a.unlink(missing_ok=True)
            reason = str(e).removeprefix(f"{photo}: ")
            report.skipped.append((photo, reason))
            log.warning("skipped %s: %s", photo, reason)
            continue
        report.written[split] += 1
    log.info("%s", report.summary())
    return report


def _plan(splits: dict[str, list[Path]], src: Path, report: PrepareReport) -> list[tuple[str, Path, str]]:
    """(split, photo, output name) per photo; photos whose name another already took are skipped."""
    plan: list[tuple[str, Path, str]] = []
    owner: dict[str, Path] = {}
    for split in SPLITS:
        for photo in splits[split]:
            name = "__".join(photo.relative_to(src).with_suffix("").parts)
            if name in owner:
                report.skipped.append((photo, f"same output name {name!r} as {owner[name]}"))
                continue
            owner[name] = photo
            plan.append((split, photo, name))
    return plan


def _outputs(out: Path, split: str, name: str) -> tuple[Path, Path]:
    return out / split / "A" / f"{name}.png", out / split / "B" / f"{name}.png"


def _load_photo(path: Path, max_side: int | None) -> np.ndarray:
    image = to_uint8(to_channels(read_image(path), 3, path=path))
    height, width = image.shape[:2]
    if max_side is not None and max(height, width) > max_side:
        factor = max_side / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image
