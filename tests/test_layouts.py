"""Dataset layouts: paired (aligned, A/B folders, A/B without splits), unpaired, photo folders, errors."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from translate.data.images import IMAGE_SUFFIXES, write_image
from translate.data.layouts import (
    LAYOUTS,
    DatasetError,
    Sample,
    find_paired,
    find_photos,
    find_photos_split,
    find_unpaired,
    has_split,
    seeded_split,
)
from translate.errors import ConfigError


def _names(paths):
    return [p.name for p in paths]


def _junk(folder):
    """Files every scan must skip: hidden files, macOS resource forks, non-image suffixes."""
    for name in (".DS_Store", "._000_astronaut.png", "notes.txt", "Thumbs.db", "x.png.tmp"):
        (folder / name).write_bytes(b"junk")


def test_layouts_are_described():
    assert set(LAYOUTS) == {"aligned", "paired_folders", "unpaired", "photos"}
    assert all(isinstance(text, str) and "\n" not in text for text in LAYOUTS.values())


def test_aligned(write_paired):
    root = write_paired("aligned", splits={"train": 4, "val": 2, "test": 1}, suffix=".jpg")
    _junk(root / "train")
    (root / "train" / "nested").mkdir()
    write_image(root / "train" / "nested" / "999_deep.jpg", np.zeros((4, 8, 3), np.uint8))
    train = find_paired(root, "train")
    assert train == [Sample(root / "train" / n) for n in
                     ["000_astronaut.jpg", "001_coffee.jpg", "002_chelsea.jpg", "003_rocket.jpg"]]
    assert all(s.b is None for s in train)
    assert _names(s.a for s in find_paired(root, "val")) == ["004_motorcycle.jpg", "005_immunohistochemistry.jpg"]
    assert len(find_paired(root, "test")) == 1


def test_aligned_ignores_val_fraction(write_paired):
    root = write_paired("aligned")
    assert find_paired(root, "train", val_fraction=0.5) == find_paired(root, "train")


def test_paired_folders_match_by_stem_across_suffixes(write_paired):
    root = write_paired("paired_folders", suffix=".png", suffix_b=".jpg")
    _junk(root / "train" / "A")
    _junk(root / "train" / "B")
    train = find_paired(root, "train")
    assert [(s.a.name, s.b.name) for s in train] == [
        ("000_astronaut.png", "000_astronaut.jpg"),
        ("001_coffee.png", "001_coffee.jpg"),
        ("002_chelsea.png", "002_chelsea.jpg"),
        ("003_rocket.png", "003_rocket.jpg"),
    ]
    assert all(s.a.parent == root / "train" / "A" and s.b.parent == root / "train" / "B" for s in train)
    assert len(find_paired(root, "val")) == 2


def test_suffix_case_is_ignored(write_paired):
    root = write_paired("paired_folders", splits={"train": 2})
    path = root / "train" / "B" / "001_coffee.png"
    path.rename(path.with_suffix(".PNG"))
    assert find_paired(root, "train")[1].b.name == "001_coffee.PNG"


def test_nosplit_val_fraction_is_a_seeded_partition(write_paired):
    root = write_paired("paired_nosplit", splits={"all": 10})
    everything = [Sample(a, b) for a, b in zip(sorted((root / "A").iterdir()), sorted((root / "B").iterdir()))]
    assert find_paired(root, "train") == everything  # val_fraction 0: all of it is train
    train = find_paired(root, "train", val_fraction=0.3, seed=1)
    val = find_paired(root, "val", val_fraction=0.3, seed=1)
    assert len(val) == 3 and len(train) == 7
    assert sorted(train + val, key=lambda s: s.a) == everything
    assert train == sorted(train, key=lambda s: s.a) and val == sorted(val, key=lambda s: s.a)
    assert find_paired(root, "val", val_fraction=0.3, seed=1) == val  # deterministic
    assert find_paired(root, "val", val_fraction=0.3, seed=2) != val  # the seed matters
    assert len(find_paired(root, "val", val_fraction=0.01)) == 1  # a nonzero fraction never gives an empty val


@pytest.mark.parametrize("split, val_fraction", [("val", 0.0), ("test", 0.2), ("training", 0.2)])
def test_nosplit_missing_split(write_paired, split, val_fraction):
    root = write_paired("paired_nosplit")
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(root))}: no '{split}' split: no split folders here"):
        find_paired(root, split, val_fraction=val_fraction)


def test_seeded_split_is_one_deterministic_partition():
    items = [f"p{i:02d}" for i in range(20)]
    splits = seeded_split(items, val_fraction=0.1, test_fraction=0.2, seed=5)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [14, 2, 4]
    assert sorted(sum(splits.values(), [])) == items  # every item exactly once
    assert all(splits[s] == sorted(splits[s]) for s in splits)  # each keeps the items' order
    assert splits == seeded_split(items, val_fraction=0.1, test_fraction=0.2, seed=5)
    assert splits != seeded_split(items, val_fraction=0.1, test_fraction=0.2, seed=6)
    # val is drawn first from the permutation, so adding a test split leaves val unchanged
    assert seeded_split(items, val_fraction=0.1, seed=5)["val"] == splits["val"]
    assert [len(v) for v in seeded_split(items[:3], val_fraction=0.01).values()] == [2, 1, 0]
    with pytest.raises(DatasetError, match="^split: 2 file\\(s\\) cannot fill val \\(1\\), test \\(1\\)"):
        seeded_split(items[:2], val_fraction=0.1, test_fraction=0.1)
    with pytest.raises(ConfigError, match="test_fraction: must be in"):
        seeded_split(items, test_fraction=1.0)


def test_nosplit_val_is_the_shared_seeded_split(write_paired):
    """Training's A/B-without-splits partition and prepare's photo split are one function."""
    root = write_paired("paired_nosplit", splits={"all": 10})
    everything = find_paired(root, "train")
    for split in ("train", "val"):
        assert find_paired(root, split, val_fraction=0.3, seed=4) == seeded_split(
            everything, val_fraction=0.3, seed=4)[split]


def test_val_fraction_range(write_paired):
    with pytest.raises(ConfigError, match="val_fraction"):
        find_paired(write_paired("paired_nosplit"), "train", val_fraction=1.0)


def test_root_missing(tmp_path):
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(tmp_path / 'nowhere'))}: dataset folder not found"):
        find_paired(tmp_path / "nowhere", "train")
    with pytest.raises(DatasetError, match="dataset folder not found"):
        find_unpaired(tmp_path / "nowhere", "train")
    with pytest.raises(DatasetError, match="dataset folder not found"):
        find_photos(tmp_path / "nowhere")


def test_split_missing_lists_splits(write_paired):
    root = write_paired("aligned", splits={"train": 1, "val": 1})
    (root / ".cache").mkdir()
    with pytest.raises(DatasetError) as info:
        find_paired(root, "test")
    assert str(info.value) == f"{root}: split 'test' not found (folders here: train, val)"


@pytest.mark.parametrize("missing", ["A", "B"])
def test_one_folder_without_the_other(write_paired, missing):
    root = write_paired("paired_folders", splits={"train": 2})
    shutil.rmtree(root / "train" / missing)
    other = "B" if missing == "A" else "A"
    expected = f"{root / 'train' / missing}: folder missing (found {root / 'train' / other} without it)"
    with pytest.raises(DatasetError, match=f"^{re.escape(expected)}$"):
        find_paired(root, "train")


@pytest.mark.parametrize("side", ["A", "B"])
def test_unmatched_stems_are_counted_and_named(write_paired, side):
    root = write_paired("paired_folders", splits={"train": 9})
    other = "B" if side == "A" else "A"
    removed = sorted(p.stem for p in (root / "train" / other).iterdir())[1:8]  # 7 images lose their partner
    for stem in removed:
        (root / "train" / other / f"{stem}.png").unlink()
    with pytest.raises(DatasetError) as info:
        find_paired(root, "train")
    assert str(info.value) == (
        f"{root / 'train' / side}: 7 image(s) without a same-stem match in {root / 'train' / other}: "
        f"{', '.join(removed[:5])}, ..."
    )


def test_duplicate_stems(write_paired, photo):
    root = write_paired("paired_folders", splits={"train": 2})
    write_image(root / "train" / "A" / "001_coffee.jpg", photo("coffee"))
    with pytest.raises(DatasetError) as info:
        find_paired(root, "train")
    assert str(info.value) == (
        f"{root / 'train' / 'A'}: 1 duplicate stem(s), cannot match by stem: 001_coffee.jpg, 001_coffee.png"
    )


def test_empty_folder_names_folder_and_suffixes(tmp_path):
    (tmp_path / "data" / "train").mkdir(parents=True)
    _junk(tmp_path / "data" / "train")
    with pytest.raises(DatasetError) as info:
        find_paired(tmp_path / "data", "train")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'data' / 'train'}: no images found (accepted: ")
    assert all(suffix in message for suffix in IMAGE_SUFFIXES) and "\n" not in message


def test_unpaired_split_layout(write_unpaired):
    root = write_unpaired("split", n_a=5, n_b=3, n_test=2)
    _junk(root / "trainA")
    a, b = find_unpaired(root, "train")
    assert _names(a) == [f"trainA_{i:03d}.png" for i in range(5)]
    assert _names(b) == [f"trainB_{i:03d}.png" for i in range(3)]
    a, b = find_unpaired(root, "test")
    assert _names(a) == ["testA_000.png", "testA_001.png"] and _names(b) == ["testB_000.png", "testB_001.png"]
    expected = f"{root}: split 'val' not found: no valA/valB folders (splits here: test, train)"
    with pytest.raises(DatasetError, match=f"^{re.escape(expected)}$"):
        find_unpaired(root, "val")
    (root / "valA").mkdir()
    (root / "valB").mkdir()
    write_image(root / "valA" / "x.png", np.zeros((4, 4, 3), np.uint8))
    write_image(root / "valB" / "y.png", np.zeros((4, 4, 3), np.uint8))
    assert [_names(d) for d in find_unpaired(root, "val")] == [["x.png"], ["y.png"]]


def test_unpaired_flat_layout(write_unpaired):
    root = write_unpaired("flat", n_a=4, n_b=6)
    a, b = find_unpaired(root, "train")
    assert len(a) == 4 and len(b) == 6 and all(p.parent == root / "B" for p in b)
    with pytest.raises(DatasetError, match=re.escape(f"{root}: no 'test' split: A/B folders have no split level")):
        find_unpaired(root, "test")


@pytest.mark.parametrize("layout, folder", [("split", "trainB"), ("split", "trainA"), ("flat", "A")])
def test_unpaired_domain_missing(write_unpaired, layout, folder):
    root = write_unpaired(layout)
    shutil.rmtree(root / folder)
    with pytest.raises(DatasetError, match=f"^{re.escape(str(root / folder))}: domain folder missing$"):
        find_unpaired(root, "train")


def test_unpaired_domain_empty(write_unpaired):
    root = write_unpaired("split")
    for path in (root / "trainB").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match=f"^{re.escape(str(root / 'trainB'))}: no images found"):
        find_unpaired(root, "train")


def test_find_photos_is_recursive_and_sorted(write_photos):
    root = write_photos(6, nested=True)
    _junk(root)
    (root / ".thumbnails").mkdir()
    write_image(root / ".thumbnails" / "t.jpg", np.zeros((4, 4, 3), np.uint8))
    photos = find_photos(root)
    assert photos == sorted(photos)
    assert [p.relative_to(root).as_posix() for p in photos] == [
        "000_astronaut.jpg", "002_chelsea.jpg", "004_motorcycle.jpg",
        "sub/001_coffee.jpg", "sub/003_rocket.jpg", "sub/005_immunohistochemistry.jpg",
    ]


def test_find_photos_empty(tmp_path):
    _junk(tmp_path)
    with pytest.raises(DatasetError, match=f"^{re.escape(str(tmp_path))}: no images found"):
        find_photos(tmp_path)


def test_find_photos_split(write_photos, tmp_path):
    flat = write_photos(8, root=tmp_path / "flat")
    everything = find_photos(flat)
    assert find_photos_split(flat, "train") == everything
    train = find_photos_split(flat, "train", val_fraction=0.25, seed=3)
    val = find_photos_split(flat, "val", val_fraction=0.25, seed=3)
    assert len(val) == 2 and sorted(train + val) == everything
    with pytest.raises(DatasetError, match="no 'val' split: no split folders here"):
        find_photos_split(flat, "val")
    split = tmp_path / "split"
    write_photos(3, root=split / "train")
    write_photos(2, root=split / "val")
    assert len(find_photos_split(split, "train", val_fraction=0.5)) == 3  # split folders win over val_fraction
    assert len(find_photos_split(split, "val")) == 2
    with pytest.raises(DatasetError, match=r"split 'test' not found \(folders here: train, val\)"):
        find_photos_split(split, "test")


def test_has_split(write_paired, write_unpaired, write_photos):
    aligned = write_paired("aligned", splits={"train": 1, "val": 1})
    assert [has_split(aligned, s) for s in ("train", "val", "test")] == [True, True, False]
    nosplit = write_paired("paired_nosplit")
    assert [has_split(nosplit, s) for s in ("train", "val", "test")] == [True, False, False]
    assert [has_split(nosplit, s, val_fraction=0.2) for s in ("train", "val", "test")] == [True, True, False]
    photos = write_photos(4)
    assert [has_split(photos, s, val_fraction=0.5) for s in ("train", "val", "test")] == [True, True, False]
    unpaired = write_unpaired("split")
    assert [has_split(unpaired, s, unpaired=True) for s in ("train", "val", "test")] == [True, False, True]
    flat = write_unpaired("flat")
    assert [has_split(flat, s, unpaired=True, val_fraction=0.5) for s in ("train", "val", "test")] == [
        True, False, False
    ]
