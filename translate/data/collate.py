"""Batches of training samples: torch's collation, with one line naming the files when images of a
batch differ in size (`data.preprocess=none` over a folder of mixed sizes), not torch.stack's traceback."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from translate.errors import DatasetError


def _mismatch(batch: Sequence[dict[str, Any]]) -> str | None:
    """'<file> is HxW, <file> is HxW' for the first key whose images differ in size, else None."""
    for key, value in batch[0].items():
        if not isinstance(value, torch.Tensor):
            continue
        shapes = [tuple(item[key].shape[-2:]) for item in batch]
        if len(set(shapes)) > 1:
            other = next(i for i, s in enumerate(shapes) if s != shapes[0])
            names = [str(item.get(f"path_{key}", item.get("path", f"sample {i}"))) for i, item in enumerate(batch)]
            return (f"{names[0]} is {shapes[0][0]}x{shapes[0][1]}, {names[other]} is "
                    f"{shapes[other][0]}x{shapes[other][1]}")
    return None


def collate_samples(batch: Sequence[dict[str, Any]]) -> Any:
    """torch's default collation of dataset samples; DatasetError when their images differ in size."""
    from torch.utils.data import default_collate

    mismatch = _mismatch(batch) if batch and isinstance(batch[0], dict) else None
    if mismatch:
        raise DatasetError(f"data.preprocess: images of one batch differ in size ({mismatch}); with "
                           "preprocess=none every image must have one size: resize them, use "
                           "--set data.preprocess=crop (or resize_and_crop), or batch size 1")
    return default_collate(batch)
