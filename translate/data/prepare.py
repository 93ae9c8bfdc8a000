"""Turn a folder of photos into a paired dataset for a task recipe, and split photo folders.

`prepare` writes the paired_folders layout that training and evaluation already read:
  OUT/{train,val,test}/A/<name>.png   the synthesised net input (PNG keeps 1 and 4 channels exactly)
  OUT/{train,val,test}/B/<name>.png   the target photo, always RGB (after max_side and, for superres,
                                      cropping to a multiple of the scale)
B is the photo rather than the raw target because PNG cannot hold colorize's 2-channel ab: training
recomputes ab from B (`synth.lab_split(b)[1]`). <name> is the photo's path below `src` without its
suffix, folders joined by "__", so photos in different subfolders cannot collide.

Preparing fixes one input per photo (reproducible val/test sets, or to ship a dataset); training
straight from a photo folder (`layouts.find_photos_split` + `synth.pair_maker`) draws fresh inputs
every epoch. `split_photos` draws val exactly as find_photos_split does (then test, from the same
seeded permutation), so with test_fraction=0 equal val_fraction and seed give equal splits.
"""
from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from translate.config import SynthConfig
from translate.data.images import ImageError, read_image, to_channels, write_image
from translate.data.layouts import DatasetError, find_photos
from translate.data.synth import PAIR_MAKERS, bind_pair_maker, to_uint8
from translate.errors import ConfigError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


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


def split_photos(paths: list[Path], *, val_fraction: float = 0.1, test_fraction: float = 0.0,
                 seed: int = 0) -> dict[str, list[Path]]:
    """Deterministic split of `paths` into {"train", "val", "test"} (each sorted).

    A seeded permutation of the sorted paths takes round(n * fraction) photos for val, then for test;
    a nonzero fraction always gets at least one photo, and train must keep at least one.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name}: must be in [0, 1), got {value}")
    paths = sorted(paths)
    n = len(paths)
    counts = [max(1, round(n * f)) if f > 0 else 0 for f in (val_fraction, test_fraction)]
    if n - sum(counts) < 1:
        raise DatasetError(
            f"split: {n} photo(s) cannot fill val ({counts[0]}), test ({counts[1]}) and train (at least 1); "
            "add photos or lower val_fraction/test_fraction"
        )
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = counts
    chosen = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
    return {split: [paths[i] for i in sorted(chosen[split])] for split in SPLITS}


def prepare(task: str, src: str | os.PathLike, out: str | os.PathLike, *, synth: SynthConfig, seed: int = 0,
            val_fraction: float = 0.1, test_fraction: float = 0.1, max_side: int | None = None,
            overwrite: bool = False) -> PrepareReport:
    """Synthesise (input, photo) pairs for `task` from every photo under `src` into `out` (see module doc).

    Photos are read as RGB (grey replicated, alpha dropped, 16 bits rounded to 8) and, with max_side,
    shrunk (INTER_AREA, never enlarged) so the longer side is at most max_side. Each photo's
    randomness is seeded by (seed, its path below src), so adding photos does not change the others.
    Unreadable or unusable photos are skipped and listed in the report; the batch carries on. Existing
    output files raise DatasetError before anything is written, unless overwrite=True.
    """
    if task not in PAIR_MAKERS:
        raise ConfigError(f"task: {task!r} cannot be prepared; choose one of {', '.join(PAIR_MAKERS)}")
    if max_side is not None and max_side < 1:
        raise ConfigError(f"max_side: must be at least 1 pixel, got {max_side}")
    src, out = Path(src), Path(out)
    make_pair = bind_pair_maker(task, synth)
    photos = find_photos(src)
    if out.resolve().is_relative_to(src.resolve()):  # a rerun must not read its own outputs as photos
        photos = [p for p in photos if not p.resolve().is_relative_to(out.resolve())]
        if not photos:
            raise DatasetError(f"{src}: no photos outside the output folder {out}")
    splits = split_photos(photos, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    report = PrepareReport(task=task, out=out)

    plan: list[tuple[str, Path, str]] = []  # (split, photo, output name)
    owner: dict[str, Path] = {}
    for split in SPLITS:
        for photo in splits[split]:
            name = "__".join(photo.relative_to(src).with_suffix("").parts)
            if name in owner:
                report.skipped.append((photo, f"same output name {name!r} as {owner[name]}"))
                continue
            owner[name] = photo
            plan.append((split, photo, name))
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
            image = _load_photo(photo, task, max_side)
            net_input, target = make_pair(image, rng)
            if task == "colorize":
                target = image  # B stays the RGB photo; training recomputes ab from it
            write_image(path_a, net_input)
            wrote_a = True
            write_image(path_b, target)
        except (ImageError, ValueError, OSError, cv2.error) as e:
            if wrote_a:  # never leave a new A without its B
                path_a.unlink(missing_ok=True)
            reason = str(e).removeprefix(f"{photo}: ")
            report.skipped.append((photo, reason))
            log.warning("skipped %s: %s", photo, reason)
            continue
        report.written[split] += 1
    log.info("%s", report.summary())
    return report


def _outputs(out: Path, split: str, name: str) -> tuple[Path, Path]:
    return out / split / "A" / f"{name}.png", out / split / "B" / f"{name}.png"


def _load_photo(path: Path, task: str, max_side: int | None) -> np.ndarray:
    image = read_image(path)
    if task == "colorize" and (image.shape[2] == 1 or _is_grey(image[:, :, :3])):
        raise ImageError(f"{path}: grey image, no colour to learn from")
    image = to_uint8(to_channels(image, 3, path=path))
    height, width = image.shape[:2]
    if max_side is not None and max(height, width) > max_side:
        factor = max_side / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def _is_grey(image: np.ndarray) -> bool:
    return image.shape[2] == 3 and bool(np.all(image[:, :, 0] == image[:, :, 1])) and bool(
        np.all(image[:, :, 1] == image[:, :, 2]))
