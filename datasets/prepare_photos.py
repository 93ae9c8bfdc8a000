#!/usr/bin/env python3
"""Turn a folder of your own photos into a paired dataset for a task recipe (translate.data.prepare).

    python datasets/prepare_photos.py colorize ~/Pictures data/colorize --max-side 512
    python datasets/prepare_photos.py superres ~/Pictures data/sr2 --set synth.scale=2 --set synth.jpeg_quality_min=0

The synthesis options are the recipe's `synth` section (translate/tasks/TASK.yaml) with any
`--set synth.KEY=VALUE` applied, so the pairs match what `translate train --task TASK` would draw
on the fly. Writes OUT/{train,val,test}/{A,B}/<name>.png; skipped photos are listed at the end.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from translate.config import ConfigError, resolve_config
from translate.data.layouts import DatasetError
from translate.data.prepare import prepare
from translate.tasks import recipe_tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=recipe_tasks())
    parser.add_argument("src", type=Path, help="folder of photos (searched recursively)")
    parser.add_argument("out", type=Path, help="output dataset root")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--max-side", type=int, help="shrink photos so the longer side is at most this (px)")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs of an earlier run")
    parser.add_argument("--set", action="append", default=[], metavar="synth.KEY=VALUE")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        synth = resolve_config("pix2pix", task=args.task, assignments=args.set).synth
        report = prepare(args.task, args.src, args.out, synth=synth, seed=args.seed,
                         val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                         max_side=args.max_side, overwrite=args.overwrite)
    except (ConfigError, DatasetError, FileExistsError, ValueError) as e:
        print(f"prepare_photos.py: {e}", file=sys.stderr)
        return 1
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(report.summary())
    return 1 if report.skipped or report.total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
