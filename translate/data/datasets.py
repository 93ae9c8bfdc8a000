"""Datasets for paired (pix2pix) and unpaired (CycleGAN) training; items are (C, H, W) float32 in [-1, 1].

Files are decoded with read_image and converted to the requested channel count with to_channels (1->3
replicates grey, 3->1 takes luma, 4->3 drops alpha). 8- and 16-bit files both map full scale to [-1, 1].
All randomness (augmentation, synthetic inputs, unpaired B choice) is drawn from generators seeded by
(seed, epoch, index), so an item is reproducible whatever the DataLoader's worker count. Call
`set_epoch` before each epoch; with `persistent_workers=True` workers keep their own copy and miss it.

A validation dataset (`draws=K`) instead holds K fixed draws of each file, item i being draw i % K of
file i // K, seeded by (seed, VALIDATION_STREAM, file, draw): the same at every validation, whatever
the epoch, and apart from every training item's randomness.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from translate.data.images import image_to_tensor, read_image, to_channels
from translate.data.layouts import DatasetError, Sample

MakePair = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
# Where fixed validation draws take their seeds: (seed, VALIDATION_STREAM, file, draw). Training
# items use (seed, epoch, index), and no run counts this many epochs, so the two never share a seed.
VALIDATION_STREAM = 2**31 - 1


def validation_draws(requested: int, *, random: bool, n_files: int, max_items: int) -> int:
    """Draws per validation file: `requested` (data.val_draws) where something about an item is
    random (`random`: a synthesised input or a random crop), else 1 (a second draw would repeat the
    first); fewer when `n_files` x draws would pass `max_items` (data.max_val_images), so a pass
    never scores more items than that, and a big validation split costs no more than before."""
    if not random or n_files == 0:
        return 1
    return max(1, min(requested, max_items // n_files))


def _item_rng(seed: int, epoch: int, index: int, draws: int) -> tuple[int, np.random.Generator]:
    """(the file's index, the item's generator): a training item's by epoch, a validation draw's fixed."""
    if draws:
        file, draw = divmod(index, draws)
        return file, np.random.default_rng([seed, VALIDATION_STREAM, file, draw])
    return index, np.random.default_rng([seed, epoch, index])


def split_aligned(image: np.ndarray, path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Split an A|B side-by-side image into A (left) and B (right); an odd last column is dropped."""
    half = image.shape[1] // 2
    if half == 0:
        raise DatasetError(f"{path}: too narrow to hold A|B side by side (width {image.shape[1]})")
    return image[:, :half], image[:, half : 2 * half]


class PairedDataset(Dataset):
    """Pix2pix pairs: {"a": (in_channels, H, W), "b": (out_channels, H, W) float32 in [-1, 1], "path": str}.

    Without make_pair, each Sample is an A/B file pair or one aligned A|B file (b=None). With
    make_pair (task recipes), each sample names one photo, Sample(photo) or Sample(photo, photo), read
    as RGB and augmented; make_pair(photo HWC uint8/uint16, rng) -> (input, target) HW or HWC
    uint8/uint16 arrays. They may differ in size (super-resolution inputs are smaller).
    With `draws` (validation), K fixed draws of each sample (see the module's docstring); with
    `draw_pairs` as well, draw k of each sample is made by draw_pairs[k % len] instead of make_pair.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        *,
        in_channels: int,
        out_channels: int,
        transform: A.Compose,
        make_pair: MakePair | None = None,
        seed: int = 0,
        draws: int = 0,
        draw_pairs: Sequence[MakePair] = (),
    ) -> None:
        if make_pair is not None and any(s.b not in (None, s.a) for s in samples):
            raise ValueError("make_pair: samples must name one photo each, Sample(photo) or Sample(photo, photo)")
        self.samples = list(samples)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.transform = transform
        self.make_pair = make_pair
        self.seed = seed
        self.draws = draws  # 0: a training set (fresh randomness every epoch)
        self.draw_pairs = list(draw_pairs) if draws else []
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples) * max(1, self.draws)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        # An index past len() draws the same files again with fresh randomness (long epochs over
        # few files: data.samples_per_epoch), so repeated draws are not repeated crops.
        file, rng = _item_rng(self.seed, self.epoch, index, self.draws)
        sample = self.samples[file % len(self.samples)]
        self.transform.set_random_seed(int(rng.integers(2**31)))
        if self.make_pair is None:
            real_a, real_b = self._load_pair(sample)
            out = _augment(self.transform, sample.a, image=real_a, b=real_b)
            real_a, real_b = out["image"], out["b"]
        else:
            photo = _augment(self.transform, sample.a, image=_read(sample.a, 3))["image"]
            make_pair = self.make_pair
            if self.draw_pairs:
                make_pair = self.draw_pairs[index % self.draws % len(self.draw_pairs)]
            real_a, real_b = (x[:, :, None] if x.ndim == 2 else x for x in make_pair(photo, rng))
            if real_a.dtype not in (np.uint8, np.uint16) or real_b.dtype not in (np.uint8, np.uint16):
                raise ValueError(f"make_pair: returned {real_a.dtype}/{real_b.dtype} arrays for {sample.a}; "
                                 f"it must return uint8 or uint16 images")
            real_a = to_channels(real_a, self.in_channels, path=sample.a)
            real_b = to_channels(real_b, self.out_channels, path=sample.a)
        return {"a": image_to_tensor(real_a), "b": image_to_tensor(real_b), "path": str(sample.a)}

    def _load_pair(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        if sample.b is None:
            real_a, real_b = split_aligned(read_image(sample.a), sample.a)
            return (to_channels(real_a, self.in_channels, path=sample.a),
                    to_channels(real_b, self.out_channels, path=sample.a))
        real_a, real_b = _read(sample.a, self.in_channels), _read(sample.b, self.out_channels)
        if real_a.shape[:2] != real_b.shape[:2]:
            raise DatasetError(f"{sample.a}: size {_size(real_a)} does not match {sample.b} ({_size(real_b)})")
        return real_a, real_b


class UnpairedDataset(Dataset):
    """Unpaired items for CycleGAN: {"a", "b": (C, H, W) float32 in [-1, 1], "path_a", "path_b": str}.

    len = max(|A|, |B|); item i uses A[i % |A|] and, unless serial, B from a per-epoch seeded
    permutation, so each epoch visits every B image (the original picks B with replacement).
    With `draws` (validation), K fixed draws of each item (see the module's docstring).
    """

    def __init__(
        self,
        paths_a: Sequence[Path],
        paths_b: Sequence[Path],
        *,
        channels_a: int,
        channels_b: int,
        transform_a: A.Compose,
        transform_b: A.Compose,
        serial: bool = False,
        seed: int = 0,
        draws: int = 0,
    ) -> None:
        if not paths_a or not paths_b:
            raise DatasetError(f"UnpairedDataset: both domains need images, got {len(paths_a)} A, {len(paths_b)} B")
        self.paths_a = list(paths_a)
        self.paths_b = list(paths_b)
        self.channels_a = channels_a
        self.channels_b = channels_b
        self.transform_a = transform_a
        self.transform_b = transform_b
        self.serial = serial
        self.seed = seed
        self.draws = draws
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._order_b = np.random.default_rng([self.seed, epoch]).permutation(len(self.paths_b))

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b)) * max(1, self.draws)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        pair, rng = _item_rng(self.seed, self.epoch, index, self.draws)
        path_a = self.paths_a[pair % len(self.paths_a)]
        j = pair % len(self.paths_b)
        path_b = self.paths_b[j if self.serial else self._order_b[j]]
        seed_a, seed_b = rng.integers(2**31, size=2)
        # Reseed right before each call: transform_a and transform_b may be one shared object.
        self.transform_a.set_random_seed(int(seed_a))
        real_a = _augment(self.transform_a, path_a, image=_read(path_a, self.channels_a))["image"]
        self.transform_b.set_random_seed(int(seed_b))
        real_b = _augment(self.transform_b, path_b, image=_read(path_b, self.channels_b))["image"]
        return {
            "a": image_to_tensor(real_a),
            "b": image_to_tensor(real_b),
            "path_a": str(path_a),
            "path_b": str(path_b),
        }


def _read(path: Path, channels: int) -> np.ndarray:
    return to_channels(read_image(path), channels, path=path)


def _augment(transform: A.Compose, path: Path, **images: np.ndarray) -> dict[str, np.ndarray]:
    try:
        return transform(**images)
    except Exception as e:  # e.g. a photo smaller than crop_size (albumentations' CropSizeError): name the file
        raise DatasetError(f"{path}: {' '.join(str(e).split())}") from e


def _size(image: np.ndarray) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"
