"""Start-up cost of one-photo conversion: `translate convert` of a 256x256 photo vs `import torch`.

Makes a tiny checkpoint and a photo in a temporary folder, then times both commands as fresh
subprocesses, several times each, and prints the medians and their ratio (goal: <= 1.5x).
Run from the repository root: `python scripts/bench_startup.py [--repeats 7]`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_inputs(folder: Path) -> tuple[Path, Path]:
    """A tiny pix2pix-style generator checkpoint and a 256x256 RGB photo (skimage's astronaut)."""
    import numpy as np
    import torch
    from skimage import data, transform

    from translate.checkpoint import save_checkpoint
    from translate.recipes import resolve_config
    from translate.data.images import write_image
    from translate.nets import ResnetSpec, build_net, spec_to_dict

    spec = ResnetSpec(base_channels=4, n_blocks=1)
    torch.manual_seed(0)
    config = resolve_config("pix2pix", overrides={"generator": spec_to_dict(spec)})
    checkpoint = folder / "tiny.pt"
    save_checkpoint(checkpoint, {"config": config.to_dict(), "specs": {"g_ab": spec_to_dict(spec)},
                                 "nets": {"g_ab": build_net(spec).state_dict()}, "step": 0, "epoch": 0})
    photo = folder / "in.png"
    image = transform.resize(data.astronaut(), (256, 256), anti_aliasing=True)
    write_image(photo, (image * 255).round().astype(np.uint8))
    return checkpoint, photo


def median_seconds(command: list[str], repeats: int, env: dict[str, str]) -> float:
    """Median wall time of `repeats` runs of `command` (after one untimed warm-up for the file cache)."""
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint, photo = make_inputs(folder)
        torch_s = median_seconds([sys.executable, "-c", "import torch"], args.repeats, env)
        convert = [sys.executable, "-m", "translate", "convert", str(checkpoint), str(photo), str(folder / "out.png"),
                   "--device", "cpu", "--overwrite"]
        convert_s = median_seconds(convert, args.repeats, env)
    print(f"import torch:                  {torch_s:.2f} s (median of {args.repeats})")
    print(f"translate convert, one photo:  {convert_s:.2f} s (median of {args.repeats})")
    print(f"ratio:                         {convert_s / torch_s:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
