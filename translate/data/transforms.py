"""Training augmentation (albumentations): resize, random crop and flip, identical for A and B of a pair.

Inputs are HWC uint8 or uint16 with 1-4 channels; outputs keep dtype and channels. Randomness comes from
the Compose's own generator, which the datasets reseed per item (`set_random_seed`), so augmentation
depends only on (seed, epoch, index) and not on DataLoader workers.
"""
from __future__ import annotations

from typing import Literal

import albumentations as A

from translate.errors import ConfigError

Preprocess = Literal["resize_and_crop", "crop", "none"]
PREPROCESS: dict[str, str] = {
    "resize_and_crop": "resize to load_size square, random crop_size crop (pix2pix); eval resizes to crop_size",
    "crop": "random crop_size crop at native scale (large photos, at least crop_size); eval crops the centre",
    "none": "no resizing or cropping (all images must already share one size that the net accepts)",
}


def paired_transform(
    *, load_size: int, crop_size: int, flip: bool, train: bool, preprocess: Preprocess = "resize_and_crop"
) -> A.Compose:
    """Same geometry for both images, called as `t(image=a, b=b)`; A and B may differ in dtype and channels."""
    return A.Compose(_steps(load_size, crop_size, flip, train, preprocess), additional_targets={"b": "image"})


def _steps(load_size: int, crop_size: int, flip: bool, train: bool, preprocess: str) -> list[A.BasicTransform]:
    if preprocess not in PREPROCESS:
        raise ConfigError(f"preprocess: unknown {preprocess!r} (choose from {', '.join(PREPROCESS)})")
    if preprocess == "resize_and_crop" and crop_size > load_size:
        raise ConfigError(f"crop_size: {crop_size} is larger than load_size {load_size}; raise load_size")
    # INTER_AREA when shrinking avoids aliasing on large photos; bilinear when enlarging.
    steps: list[A.BasicTransform] = []
    if preprocess == "resize_and_crop":
        size = load_size if train else crop_size
        steps.append(A.Resize(size, size, area_for_downscale="image"))
    if preprocess != "none" and (train or preprocess == "crop"):
        crop = A.RandomCrop if train else A.CenterCrop
        steps.append(crop(crop_size, crop_size))
    if train and flip:
        steps.append(A.HorizontalFlip(p=0.5))
    return steps
