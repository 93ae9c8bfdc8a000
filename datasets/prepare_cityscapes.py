#!/usr/bin/env python3
"""Build the pix2pix Cityscapes set (street photo <-> colour label map) from the official download.

Cityscapes' licence forbids redistribution, so register at https://www.cityscapes-dataset.com,
download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, unzip both, then:

    python datasets/prepare_cityscapes.py --gtfine gtFine --leftimg8bit leftImg8bit --out data/pix2pix/cityscapes

Writes the paired_folders layout: OUT/{train,test}/A/<city>_<seq>_<frame>.png (photo) and .../B/
(label colours), matched by that stem. As in the reference pix2pix set, A is the photo (train
labels -> photo with --direction b_to_a), Cityscapes' val split becomes "test" (it is the test set
of the papers), and images are resized to 256x256 (the aspect ratio is squashed from 2:1, which the
published numbers assume; pass --size 512x256 to keep it). Label maps are resized with
nearest-neighbour so every pixel keeps an exact class colour. Existing outputs are never overwritten.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from translate.data.images import ImageError, read_image, to_channels, write_image

SPLITS = {"train": "train", "val": "test"}  # Cityscapes split -> ours


def pairs(gtfine: Path, leftimg8bit: Path, split: str) -> list[tuple[str, Path, Path]]:
    """(stem, photo, label colour map) for one Cityscapes split, matched by city_seq_frame."""
    labels = {p.name.removesuffix("_gtFine_color.png"): p for p in (gtfine / split).glob("*/*_gtFine_color.png")}
    photos = {p.name.removesuffix("_leftImg8bit.png"): p for p in (leftimg8bit / split).glob("*/*_leftImg8bit.png")}
    if not labels or not photos:
        raise FileNotFoundError(
            f"{gtfine / split} or {leftimg8bit / split}: no *_gtFine_color.png / *_leftImg8bit.png files "
            "(point --gtfine and --leftimg8bit at the unzipped gtFine and leftImg8bit folders)"
        )
    unmatched = sorted(set(labels) ^ set(photos))
    if unmatched:
        raise FileNotFoundError(
            f"{leftimg8bit / split}: {len(unmatched)} frame(s) lack a photo or label, e.g. {unmatched[0]}"
        )
    return [(stem, photos[stem], labels[stem]) for stem in sorted(photos)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gtfine", type=Path, required=True, help="the unzipped gtFine folder")
    parser.add_argument("--leftimg8bit", type=Path, required=True, help="the unzipped leftImg8bit folder")
    parser.add_argument("--out", type=Path, required=True, help="output dataset root")
    parser.add_argument("--size", default="256x256", help="output WIDTHxHEIGHT (default 256x256, as in pix2pix)")
    args = parser.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size: expected WIDTHxHEIGHT such as 256x256, got {args.size!r}")
    bad: list[str] = []
    written = 0
    for theirs, ours in SPLITS.items():
        try:
            found = pairs(args.gtfine, args.leftimg8bit, theirs)
        except FileNotFoundError as e:
            print(f"prepare_cityscapes.py: {e}", file=sys.stderr)
            return 1
        for stem, photo_path, label_path in found:
            out_a, out_b = (args.out / ours / side / f"{stem}.png" for side in ("A", "B"))
            if out_a.exists() or out_b.exists():
                print(f"prepare_cityscapes.py: {out_a.parent.parent}: already holds {stem}; "
                      "use an empty --out", file=sys.stderr)
                return 1
            try:
                photo = to_channels(read_image(photo_path), 3, path=photo_path)
                label = to_channels(read_image(label_path), 3, path=label_path)
                write_image(out_a, cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA))
                write_image(out_b, cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST))
            except ImageError as e:
                out_a.unlink(missing_ok=True)
                bad.append(str(e))
                continue
            written += 1
        print(f"{ours}: {len(found)} frame(s) from Cityscapes {theirs}")
    for line in bad:
        print(f"skipped {line}", file=sys.stderr)
    print(f"{args.out}: wrote {written} pair(s), skipped {len(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
