"""The default x4 `superres` recipe against bicubic, exactly as a new user runs it.

Writes the eight scikit-image photos that `translate demo` uses, then runs the user's commands:

    translate prepare superres PHOTOS DATA --scale 4
    translate train pix2pix --task superres --data DATA --out RUN --max-steps 600
    translate convert RUN LOWRES OUT

LOWRES holds the held-out photos (prepare's seeded val and test splits: never trained on), each
downscaled x4 with anti-aliased bicubic (Pillow's; MATLAB's imresize, with which SR benchmarks make
their inputs, computes the same); OUT is scored against the photo, and so is the bicubic upscale of
the same input (cv2.INTER_CUBIC, `translate eval`'s superres baseline). Prints PSNR per photo, ours
vs bicubic, and the mean margin; then the same for inputs shrunk with cv2.INTER_CUBIC, which does
not anti-alias (a different input than the recipe trains on: shown for robustness).

    python scripts/bench_superres_recipe.py                       # fresh temporary folder
    python scripts/bench_superres_recipe.py --work /tmp/sr --set optim.lr_g=1e-3   # try a change
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCALE = 4


def _translate(*args: str) -> None:
    command = [sys.executable, "-m", "translate", *args]
    print("$ translate " + " ".join(args), flush=True)
    subprocess.run(command, check=True)


def _write_photos(folder: Path) -> None:
    from translate.data.images import write_image
    from translate.demo import PHOTOS, bundled_photo

    for name in PHOTOS:
        write_image(folder / f"{name}.png", bundled_photo(name))


def _write_lowres(held_out: list[tuple[str, Path]], lowres: Path, mode: str) -> None:
    """Each held-out photo downscaled x4 by `mode` (translate.tasks.superres.shrink) into `lowres`."""
    from translate.data.images import read_image, write_image
    from translate.tasks.superres import shrink

    for _, path in held_out:
        photo = read_image(path)
        write_image(lowres / path.name, shrink(photo, photo.shape[0] // SCALE, photo.shape[1] // SCALE, mode))


def _score(held_out: list[tuple[str, Path]], lowres: Path, out: Path, title: str) -> float:
    from translate.data.images import read_image
    from translate.metrics import psnr
    from translate.tasks.superres import bicubic_upscale

    margins = []
    print(f"\n{title}\n{'photo':<24}{'split':<7}{'ours dB':>9}{'bicubic dB':>12}{'margin':>9}")
    for split, path in held_out:
        photo = read_image(path)
        ours = read_image(out / path.name)
        bicubic = bicubic_upscale(read_image(lowres / path.name), SCALE)
        ours_db, bicubic_db = psnr(ours, photo, data_range=255), psnr(bicubic, photo, data_range=255)
        margins.append(ours_db - bicubic_db)
        print(f"{path.stem:<24}{split:<7}{ours_db:>9.2f}{bicubic_db:>12.2f}{margins[-1]:>+9.2f}")
    mean = sum(margins) / len(margins)
    print(f"mean margin over {len(margins)} held-out photo(s): {mean:+.2f} dB; "
          f"above bicubic on every photo: {all(m > 0 for m in margins)}")
    return mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="folder for photos, data, run and outputs (default: temporary)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra `train --set` overrides, to try a change to the recipe")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_superres_"))
    photos, data, run = work / "photos", work / "data", work / "run"
    _write_photos(photos)
    _translate("prepare", "superres", str(photos), str(data), "--scale", str(SCALE))
    start = time.perf_counter()
    extra = [arg for assignment in args.set for arg in ("--set", assignment)]
    _translate("train", "pix2pix", "--task", "superres", "--data", str(data), "--out", str(run),
               "--max-steps", str(args.steps), *extra)
    train_s = time.perf_counter() - start
    held_out = [(split, path) for split in ("val", "test") for path in sorted((data / split / "B").glob("*.png"))]
    titles = {"bicubic": "inputs: anti-aliased bicubic x4 downscale (Pillow; the recipe's and SR benchmarks')",
              "cv2_cubic": "inputs: cv2.INTER_CUBIC x4 downscale (aliased; not what the recipe trains on)"}
    for mode in titles:
        _write_lowres(held_out, work / f"lowres_{mode}", mode)
        _translate("convert", str(run), str(work / f"lowres_{mode}"), str(work / f"out_{mode}"))
    print(f"training: {train_s:.0f} s for {args.steps} steps; work folder: {work}")
    for mode, title in titles.items():
        _score(held_out, work / f"lowres_{mode}", work / f"out_{mode}", title)


if __name__ == "__main__":
    main()
