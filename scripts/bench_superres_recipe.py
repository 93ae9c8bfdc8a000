"""The default x4 `superres` recipe against bicubic, per shrink, exactly as a new user runs it.

Writes the eight scikit-image photos that `translate demo` uses, then runs the user's commands:

    translate prepare superres PHOTOS DATA --scale 4
    translate train pix2pix --task superres --data DATA --out RUN --max-steps 600
    translate eval RUN HELDOUT --split test --shrinks all --metrics none

HELDOUT/test/B holds the held-out photos (prepare's seeded val and test splits: never trained on).
`eval --shrinks all` makes the low-resolution inputs from them with each kernel of the recipe's shrink
mixture (anti-aliased bicubic as SR benchmarks make them, bilinear, area, OpenCV's non-anti-aliased
INTER_CUBIC and INTER_LINEAR, a little blur, JPEG) and prints PSNR ours vs bicubic upscaling
(cv2.INTER_CUBIC, eval's superres baseline) per kernel: the README's table.

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


def _held_out(data: Path, heldout: Path) -> int:
    """Copy prepare's val and test target photos (never trained on) into HELDOUT/test/B; their count."""
    import shutil

    folder = heldout / "test" / "B"
    folder.mkdir(parents=True, exist_ok=True)
    photos = [path for split in ("val", "test") for path in sorted((data / split / "B").glob("*.png"))]
    for path in photos:
        shutil.copy(path, folder / path.name)
    return len(photos)


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
    count = _held_out(data, work / "heldout")
    print(f"training: {train_s:.0f} s for {args.steps} steps; {count} held-out photo(s); work folder: {work}",
          flush=True)
    _translate("eval", str(run), str(work / "heldout"), "--split", "test", "--shrinks", "all", "--metrics", "none",
               "--out", str(work / "eval"))


if __name__ == "__main__":
    main()
