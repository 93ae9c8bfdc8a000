"""Transforms and datasets: A/B stay aligned, shapes and ranges, seeded randomness per (seed, epoch, index)."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from translate.data.datasets import PairedDataset, UnpairedDataset, split_aligned
from translate.data.images import ImageError, to_channels, write_image
from translate.data.layouts import DatasetError, Sample, find_paired, find_photos, find_unpaired
from translate.data.transforms import paired_transform
from translate.errors import ConfigError

TRAIN = dict(load_size=40, crop_size=32, flip=True, train=True)
EVAL = dict(load_size=40, crop_size=32, flip=True, train=False)


def _seeded(transform, seed, **images):
    transform.set_random_seed(seed)
    return transform(**images)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels_a, channels_b", [(3, 3), (1, 3), (4, 1), (3, 4)])
def test_paired_transform_keeps_a_and_b_aligned(photo, dtype, channels_a, channels_b):
    scale = 257 if dtype == np.uint16 else 1
    a = photo("astronaut", (56, 48)).astype(dtype) * scale
    if channels_a != channels_b:  # grey content, so channel 0 means the same thing in every channel count
        a = to_channels(to_channels(a, 1), 3)
    b = np.iinfo(dtype).max - a
    a, b = to_channels(a, channels_a), to_channels(b, channels_b)
    transform = paired_transform(**TRAIN)
    outputs = set()
    for seed in range(12):
        out = _seeded(transform, seed, image=a, b=b)
        real_a, real_b = out["image"].astype(int), out["b"].astype(int)
        assert real_a.shape == (32, 32, channels_a) and real_b.shape == (32, 32, channels_b)
        assert out["image"].dtype == out["b"].dtype == dtype
        # B = max - A survives the shared resize, crop and flip (up to rounding of the interpolation).
        k = min(channels_a, channels_b, 3)
        assert np.abs(real_a[..., :k] + real_b[..., :k] - np.iinfo(dtype).max).max() <= scale
        outputs.add(real_a.tobytes())
    assert len(outputs) > 6  # the crop and flip are random


def test_flip_happens_for_both_or_neither(photo):
    a = photo("coffee", 32)
    transform = paired_transform(load_size=32, crop_size=32, flip=True, train=True)  # no crop: only flip
    flipped = []
    for seed in range(20):
        out = _seeded(transform, seed, image=a, b=255 - a)
        assert np.array_equal(out["b"], 255 - out["image"])
        assert np.array_equal(out["image"], a) or np.array_equal(out["image"], a[:, ::-1])
        flipped.append(np.array_equal(out["image"], a[:, ::-1]))
    assert 0 < sum(flipped) < 20


def test_eval_transform_resizes_to_crop_size_without_randomness(photo):
    a = photo("chelsea", (60, 90))
    transform = paired_transform(**EVAL)
    outs = [_seeded(transform, seed, image=a, b=a)["image"] for seed in range(5)]
    assert all(np.array_equal(outs[0], out) for out in outs)
    np.testing.assert_array_equal(outs[0], cv2.resize(a, (32, 32), interpolation=cv2.INTER_AREA))


def test_crop_preprocess_keeps_scale(photo):
    a = photo("rocket", (60, 90))
    for seed in range(5):
        out = _seeded(paired_transform(preprocess="crop", **TRAIN), seed, image=a)["image"]
        assert out.shape == (32, 32, 3)
        windows = np.lib.stride_tricks.sliding_window_view(a, (32, 32, 3))
        matches = [(windows == x).all(axis=(-3, -2, -1)).any() for x in (out, out[:, ::-1])]
        assert any(matches)  # a pixel-exact window of the original, possibly flipped
    centre = paired_transform(preprocess="crop", **EVAL)(image=a)["image"]
    np.testing.assert_array_equal(centre, a[14:46, 29:61])


def test_none_preprocess_keeps_the_image(photo):
    a = photo("chelsea", (36, 52))
    out = paired_transform(load_size=40, crop_size=32, flip=False, train=True, preprocess="none")(image=a)["image"]
    np.testing.assert_array_equal(out, a)


def test_transform_arguments_are_checked():
    with pytest.raises(ConfigError, match="crop_size: 64 is larger than load_size 32"):
        paired_transform(load_size=32, crop_size=64, flip=True, train=True)
    with pytest.raises(ConfigError, match="preprocess: unknown 'scale_width'"):
        paired_transform(load_size=32, crop_size=32, flip=True, train=True, preprocess="scale_width")


def test_split_aligned_odd_width(photo):
    a = photo("coffee", 16)
    image = np.concatenate([a, 255 - a, np.zeros((16, 1, 3), np.uint8)], axis=1)
    a, b = split_aligned(image, "x.png")
    assert a.shape == b.shape == (16, 16, 3)
    np.testing.assert_array_equal(b, 255 - a)
    with pytest.raises(DatasetError, match=r"x\.png: too narrow"):
        split_aligned(np.zeros((4, 1, 3), np.uint8), "x.png")


def _paired(root, *, in_channels=3, out_channels=3, train=True):
    transform = paired_transform(**(TRAIN if train else EVAL))
    return PairedDataset(find_paired(root, "train"), in_channels=in_channels, out_channels=out_channels,
                         transform=transform)


def _check_item(item, in_channels, out_channels, size=32):
    assert item["a"].shape == (in_channels, size, size) and item["b"].shape == (out_channels, size, size)
    for t in (item["a"], item["b"]):
        assert t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1 and not t.isnan().any()
        assert t.max() - t.min() > 1  # a real photo spans much of the range


@pytest.mark.parametrize("layout", ["aligned", "paired_folders"])
def test_paired_dataset_items(write_paired, layout):
    root = write_paired(layout, size=(48, 40))
    if layout == "aligned":  # an odd width: the last column is dropped
        path = find_paired(root, "train")[0].a
        image = cv2.imread(str(path))
        cv2.imwrite(str(path), np.concatenate([image, np.zeros((48, 1, 3), np.uint8)], axis=1))
    dataset = _paired(root)
    assert len(dataset) == 4
    for index in range(len(dataset)):
        item = dataset[index]
        _check_item(item, 3, 3)
        assert item["path"] == str(find_paired(root, "train")[index].a)
        # B was written as 255 - A, so in [-1, 1] B = -A, through decoding, resizing and cropping.
        assert (item["a"] + item["b"]).abs().max() <= 1.01 / 127.5


def test_paired_dataset_converts_channels(write_paired):
    root = write_paired("paired_folders", splits={"train": 2}, suffix_b=".jpg")
    dataset = _paired(root, in_channels=1, out_channels=4, train=False)
    item = dataset[0]
    _check_item(item, 1, 4)
    assert (item["b"][3] == 1).all()  # opaque alpha added to an RGB file


def test_16bit_files_scale_like_8bit(write_paired, tmp_path):
    root8 = write_paired("paired_folders", root=tmp_path / "u8", splits={"train": 2})
    root16 = write_paired("paired_folders", root=tmp_path / "u16", splits={"train": 2})
    for path in sorted(root16.rglob("*.png")):
        write_image(path, cv2.imread(str(path))[:, :, ::-1].astype(np.uint16) * 257)
    items = [_paired(root, train=False)[1] for root in (root8, root16)]
    assert (items[0]["a"] - items[1]["a"]).abs().max() <= 1.01 / 127.5
    assert (items[0]["b"] - items[1]["b"]).abs().max() <= 1.01 / 127.5


def test_size_mismatch_names_both_files(write_paired, photo):
    root = write_paired("paired_folders", splits={"train": 2})
    b_path = root / "train" / "B" / "001_coffee.png"
    write_image(b_path, photo("coffee", (64, 80)))
    with pytest.raises(DatasetError) as info:
        _paired(root)[1]
    a_path = root / "train" / "A" / "001_coffee.png"
    assert str(info.value) == f"{a_path}: size 64x64 does not match {b_path} (80x64)"


def test_corrupt_file_names_the_file(write_paired):
    root = write_paired("aligned", splits={"train": 2})
    bad = root / "train" / "001_coffee.png"
    bad.write_bytes(bad.read_bytes()[:100])
    dataset = _paired(root)
    dataset[0]
    with pytest.raises(ImageError, match=f"^{re.escape(str(bad))}: cannot decode"):
        dataset[1]


def test_photo_smaller_than_crop_names_the_file(write_photos):
    root = write_photos(2, size=24, nested=False)
    dataset = PairedDataset([Sample(p) for p in find_photos(root)], in_channels=1, out_channels=3,
                            transform=paired_transform(preprocess="crop", **TRAIN), make_pair=lambda b, rng: (b, b))
    with pytest.raises(DatasetError, match=f"^{re.escape(str(find_photos(root)[0]))}: Crop size"):
        dataset[0]


def test_paired_randomness_is_seeded_per_epoch_and_index(write_paired):
    samples = find_paired(write_paired("aligned"), "train")

    def items(seed, epoch, order):
        dataset = PairedDataset(samples, in_channels=3, out_channels=3, transform=paired_transform(**TRAIN),
                                seed=seed)
        dataset.set_epoch(epoch)
        got = {i: dataset[i]["a"] for i in order}
        return [got[i] for i in range(len(samples))]

    first = items(0, 0, [0, 1, 2, 3])
    assert all(torch.equal(x, y) for x, y in zip(first, items(0, 0, [3, 1, 0, 2])))  # order does not matter
    assert not all(torch.equal(x, y) for x, y in zip(first, items(0, 1, [0, 1, 2, 3])))
    assert not all(torch.equal(x, y) for x, y in zip(first, items(1, 0, [0, 1, 2, 3])))


def _noisy_grey(photo: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A colorization-style pair: the photo's luma, brightened by a random amount -> the photo."""
    return np.clip(to_channels(photo, 1).astype(int) + rng.integers(0, 40), 0, 255).astype(np.uint8), photo


def test_make_pair_is_seeded_per_epoch(write_photos):
    samples = [Sample(p) for p in find_photos(write_photos(4))]

    def item(epoch, seed=0):
        dataset = PairedDataset(samples, in_channels=1, out_channels=3, transform=paired_transform(**TRAIN),
                                make_pair=_noisy_grey, seed=seed)
        dataset.set_epoch(epoch)
        return dataset[2]

    first = item(0)
    _check_item(first, 1, 3)
    assert first["path"] == str(samples[2].a)
    # The input is made from the augmented target: its luma, up to the random offset.
    luma = image_to_grey(first["b"])
    offset = (first["a"][0] - luma).median()
    assert 0 <= offset <= 40 / 127.5 and ((first["a"][0] - luma - offset).abs() <= 2 / 127.5).float().mean() > 0.9
    again = item(0)
    assert torch.equal(first["a"], again["a"]) and torch.equal(first["b"], again["b"])
    later = [item(epoch) for epoch in range(1, 4)]
    assert not all(torch.equal(first["a"], x["a"]) for x in later)
    assert not torch.equal(first["a"], item(0, seed=5)["a"])


def image_to_grey(t: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of an RGB tensor in [-1, 1]."""
    return 0.299 * t[0] + 0.587 * t[1] + 0.114 * t[2]


def test_make_pair_contract(write_photos, write_paired):
    photos = [Sample(p) for p in find_photos(write_photos(2))]
    same = [Sample(s.a, s.a) for s in photos]  # the other accepted spelling of "one photo"
    assert torch.equal(PairedDataset(same, in_channels=1, out_channels=3, transform=paired_transform(**TRAIN),
                                     make_pair=_noisy_grey)[1]["a"],
                       PairedDataset(photos, in_channels=1, out_channels=3, transform=paired_transform(**TRAIN),
                                     make_pair=_noisy_grey)[1]["a"])
    with pytest.raises(ValueError, match="make_pair: samples must name one photo each"):
        PairedDataset(find_paired(write_paired("paired_folders"), "train"), in_channels=1, out_channels=3,
                      transform=paired_transform(**TRAIN), make_pair=_noisy_grey)
    dataset = PairedDataset(photos, in_channels=1, out_channels=3, transform=paired_transform(**TRAIN),
                            make_pair=lambda photo, rng: (photo.astype(np.float32), photo))
    with pytest.raises(ValueError, match="make_pair: returned"):
        dataset[0]


def _unpaired(root, *, serial=False, seed=0, channels_a=3):
    paths_a, paths_b = find_unpaired(root, "train")
    return UnpairedDataset(paths_a, paths_b, channels_a=channels_a, channels_b=3, serial=serial, seed=seed,
                           transform_a=paired_transform(**TRAIN), transform_b=paired_transform(**TRAIN))


def _b_names(dataset, epoch):
    dataset.set_epoch(epoch)
    return [Path(dataset[i]["path_b"]).name for i in range(len(dataset))]


def test_unpaired_items(write_unpaired):
    dataset = _unpaired(write_unpaired("split", n_a=5, n_b=3), channels_a=1)
    assert len(dataset) == 5
    item = dataset[4]
    _check_item(item, 1, 3)
    assert item["path_a"].endswith("trainA_004.png") and item["path_b"].endswith(".png")


def test_unpaired_serial(write_unpaired):
    dataset = _unpaired(write_unpaired("split", n_a=5, n_b=3), serial=True)
    assert _b_names(dataset, 0) == _b_names(dataset, 7) == [f"trainB_{i % 3:03d}.png" for i in range(5)]


@pytest.mark.parametrize("n_a, n_b", [(3, 6), (7, 3)])
def test_unpaired_random_b_covers_b_and_is_seeded(write_unpaired, n_a, n_b):
    root = write_unpaired("flat", n_a=n_a, n_b=n_b, size=40)
    dataset = _unpaired(root)
    epochs = [_b_names(dataset, epoch) for epoch in range(4)]
    assert all(set(names) == {f"B_{i:03d}.png" for i in range(n_b)} for names in epochs)
    assert len({tuple(names) for names in epochs}) > 1  # a fresh draw each epoch
    assert epochs[2] == _b_names(_unpaired(root), 2)  # same seed, same draw
    assert [_b_names(_unpaired(root, seed=s), 0) for s in (1, 2, 3)] != [epochs[0]] * 3


def test_unpaired_domains_augment_independently(write_unpaired):
    root = write_unpaired("flat", n_a=1, n_b=1)
    dataset = _unpaired(root)
    # A and B are a photo and its negative: a shared crop would keep a == -b.
    assert not torch.allclose(dataset[0]["a"], -dataset[0]["b"], atol=0.02)


def test_unpaired_shared_transform_keeps_domains_independent(write_unpaired):
    root = write_unpaired("flat", n_a=1, n_b=1)
    shared = paired_transform(**TRAIN)
    dataset = UnpairedDataset(*find_unpaired(root, "train"), channels_a=3, channels_b=3, transform_a=shared,
                              transform_b=shared)
    assert torch.equal(dataset[0]["a"], _unpaired(root)[0]["a"])  # B's seed does not leak into A
    assert not torch.allclose(dataset[0]["a"], -dataset[0]["b"], atol=0.02)


def test_items_do_not_depend_on_worker_count(write_unpaired):
    dataset = _unpaired(write_unpaired("flat", n_a=4, n_b=4))
    dataset.set_epoch(3)
    batches = [next(iter(DataLoader(dataset, batch_size=4, num_workers=workers))) for workers in (0, 2)]
    assert torch.equal(batches[0]["a"], batches[1]["a"]) and batches[0]["path_b"] == batches[1]["path_b"]
