"""Find dataset files on disk: paired (aligned A|B or A/B folders), unpaired domains, and photo folders.

Images are the files directly inside each folder (not recursive, so matching A to B by file stem is
unambiguous), except find_photos, which walks a tree. Hidden files (".name") and suffixes outside
IMAGE_SUFFIXES are skipped; every list is sorted so runs are reproducible.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from translate.errors import ConfigError, DatasetError
from translate.data.images import IMAGE_SUFFIXES
from translate.files import walk_files

LAYOUTS: dict[str, str] = {
    "aligned": "ROOT/{train,val,test}/*.jpg, each A|B side by side (A = left half)",
    "paired_folders": "ROOT/{split}/A/x.png + ROOT/{split}/B/x.jpg matched by file stem "
    "(or ROOT/A + ROOT/B split by val_fraction)",
    "unpaired": "ROOT/trainA + ROOT/trainB (testA/testB, valA/valB), or ROOT/A + ROOT/B (all train)",
    "photos": "ROOT/**/*.jpg, or ROOT/{train,val}/**: targets only, a recipe synthesises each input",
}


@dataclass(frozen=True)
class Sample:
    """One training pair: `a` and `b` files, or b=None when `a` holds A|B side by side (A = left half)."""

    a: Path
    b: Path | None = None


def find_paired(
    root: str | os.PathLike, split: str, *, val_fraction: float = 0.0, seed: int = 0
) -> list[Sample]:
    """Samples of `split` in an aligned or paired_folders layout, detected from the folders present.

    val_fraction applies only to ROOT/A + ROOT/B (no split level): a seeded shuffle puts that fraction
    in "val" and the rest in "train"; there is no "test". Layouts with split folders ignore it.
    """
    root = _existing_dir(root)
    if (root / "A").is_dir() or (root / "B").is_dir():
        return _partition(_match_stems(root / "A", root / "B"), root, split, val_fraction, seed)
    split_dir = _split_dir(root, split)
    if (split_dir / "A").is_dir() or (split_dir / "B").is_dir():
        return _match_stems(split_dir / "A", split_dir / "B")
    return [Sample(path) for path in _images_in(split_dir)]


def find_unpaired(root: str | os.PathLike, split: str) -> tuple[list[Path], list[Path]]:
    """Images of domains A and B for `split`: ROOT/{split}A + ROOT/{split}B, or ROOT/A + ROOT/B as "train"."""
    root = _existing_dir(root)
    if (root / "A").is_dir() or (root / "B").is_dir():
        if split != "train":
            raise DatasetError(f"{root}: no {split!r} split: A/B folders have no split level (all are 'train')")
        dirs = root / "A", root / "B"
    else:
        dirs = root / f"{split}A", root / f"{split}B"
        if not dirs[0].is_dir() and not dirs[1].is_dir():
            names = {p.name for p in root.iterdir() if p.is_dir()}
            splits = sorted(n[:-1] for n in names if n.endswith("A") and n[:-1] + "B" in names)
            raise DatasetError(
                f"{root}: split {split!r} not found: no {split}A/{split}B folders "
                f"(splits here: {', '.join(splits) or 'none'})"
            )
    for folder in dirs:
        if not folder.is_dir():
            raise DatasetError(f"{folder}: domain folder missing")
    return _images_in(dirs[0]), _images_in(dirs[1])


def is_unpaired_split(root: str | os.PathLike, split: str) -> bool:
    """Whether ROOT holds the unpaired layout's {split}A or {split}B folder (ROOT/A + ROOT/B reads as paired)."""
    root = Path(root)
    return (root / f"{split}A").is_dir() or (root / f"{split}B").is_dir()


def find_photos_split(
    root: str | os.PathLike, split: str, *, val_fraction: float = 0.0, seed: int = 0
) -> list[Path]:
    """Photos of `split` for recipes: find_photos(ROOT/split) when ROOT has split folders, otherwise
    every photo under ROOT partitioned by val_fraction as in find_paired.
    """
    root = _existing_dir(root)
    if _has_split_folders(root):
        return find_photos(_split_dir(root, split))
    return _partition(find_photos(root), root, split, val_fraction, seed)


def find_targets(
    root: str | os.PathLike, split: str, *, val_fraction: float = 0.0, seed: int = 0
) -> list[Path]:
    """Target photos of `split` for task recipes: the B images of a paired A/B layout (as written by
    `translate prepare`), otherwise the photos of find_photos_split."""
    root = _existing_dir(root)
    split_dir = root if (root / "B").is_dir() else root / split
    if (split_dir / "B").is_dir():
        return [sample.b for sample in find_paired(root, split, val_fraction=val_fraction, seed=seed) if sample.b]
    return find_photos_split(root, split, val_fraction=val_fraction, seed=seed)


def has_split(root: str | os.PathLike, split: str, *, val_fraction: float = 0.0, unpaired: bool = False) -> bool:
    """Whether the layout at `root` has `split` (judged by folders; find_* then checks the files).

    Paired and photo folders without split folders have "train", and "val" when val_fraction > 0.
    """
    root = _existing_dir(root)
    flat = (root / "A").is_dir() or (root / "B").is_dir()
    if unpaired:
        return split == "train" if flat else (root / f"{split}A").is_dir() or (root / f"{split}B").is_dir()
    if flat or not _has_split_folders(root):
        return split == "train" or (split == "val" and val_fraction > 0)
    return (root / split).is_dir()


def find_photos(root: str | os.PathLike) -> list[Path]:
    """Every image under `root`, recursively, sorted; hidden files and folders are skipped."""
    root = _existing_dir(root)
    photos = sorted(path for path in walk_files(root) if _is_image(path))
    if not photos:
        raise DatasetError(f"{root}: no images found in this folder tree (accepted: {_accepted()})")
    return photos


def _existing_dir(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder {'is not a folder' if root.exists() else 'not found'}")
    return root


def _has_split_folders(root: Path) -> bool:
    return any((root / split).is_dir() for split in ("train", "val", "test"))


def _split_dir(root: Path, split: str) -> Path:
    if not (root / split).is_dir():
        splits = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise DatasetError(f"{root}: split {split!r} not found (folders here: {', '.join(splits) or 'none'})")
    return root / split


SPLITS = ("train", "val", "test")


def seeded_split(items: list, *, val_fraction: float = 0.0, test_fraction: float = 0.0, seed: int = 0,
                 where: str | os.PathLike = "split") -> dict[str, list]:
    """The one train/val/test split: {"train", "val", "test"} lists, each in the order of `items`.

    A seeded permutation of len(items) takes round(n * fraction) items for val, then for test; a
    nonzero fraction always gets at least one item, and train must keep at least one. Pass items in
    a fixed (sorted) order: the same items, fractions and seed then give the same split everywhere
    (training from a photo folder and `translate prepare` agree). `where` names the folder in errors.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name}: must be in [0, 1), got {value}")
    n = len(items)
    n_val, n_test = (max(1, round(n * f)) if f > 0 else 0 for f in (val_fraction, test_fraction))
    if n - n_val - n_test < 1:
        raise DatasetError(
            f"{where}: {n} file(s) cannot fill val ({n_val}), test ({n_test}) and train (at least 1); "
            "add files or lower val_fraction/test_fraction"
        )
    order = np.random.default_rng(seed).permutation(n)
    chosen = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
    return {split: [items[i] for i in sorted(chosen[split])] for split in SPLITS}


def _partition(items: list, root: Path, split: str, val_fraction: float, seed: int) -> list:
    """`split` of a folder without split folders: seeded_split's train or val."""
    if split not in ("train", "val") or (split == "val" and val_fraction == 0):
        raise DatasetError(
            f"{root}: no {split!r} split: no split folders here "
            "(set val_fraction > 0 for 'val'; 'train' gets the rest)"
        )
    return seeded_split(items, val_fraction=val_fraction, seed=seed, where=root)[split]


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def _accepted() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))


def _images_in(folder: Path) -> list[Path]:
    images = sorted(path for path in folder.iterdir() if _is_image(path))
    if not images:
        raise DatasetError(f"{folder}: no images found (accepted: {_accepted()})")
    return images


def _by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        other = "B" if folder.name == "A" else "A"
        raise DatasetError(f"{folder}: folder missing (found {folder.parent / other} without it)")
    by_stem: dict[str, list[Path]] = {}
    for path in _images_in(folder):
        by_stem.setdefault(path.stem, []).append(path)
    duplicates = [paths for paths in by_stem.values() if len(paths) > 1]
    if duplicates:
        names = "; ".join(", ".join(p.name for p in paths) for paths in duplicates[:5])
        raise DatasetError(f"{folder}: {len(duplicates)} duplicate stem(s), cannot match by stem: {names}")
    return {stem: paths[0] for stem, paths in by_stem.items()}


def _match_stems(dir_a: Path, dir_b: Path) -> list[Sample]:
    a, b = _by_stem(dir_a), _by_stem(dir_b)
    for here, there, folder, other in ((a, b, dir_a, dir_b), (b, a, dir_b, dir_a)):
        unmatched = sorted(set(here) - set(there))
        if unmatched:
            raise DatasetError(
                f"{folder}: {len(unmatched)} image(s) without a same-stem match in {other}: "
                f"{', '.join(unmatched[:5])}{', ...' if len(unmatched) > 5 else ''}"
            )
    return [Sample(a[stem], b[stem]) for stem in sorted(a)]
