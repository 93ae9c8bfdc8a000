"""Download published pix2pix/CycleGAN generators into weights/ for `translate convert NAME`.

Usage: python scripts/fetch_weights.py horse2zebra [style_monet ...] [--dest weights] [--overwrite]
       python scripts/fetch_weights.py --list
"""
from __future__ import annotations

import argparse
import sys

from translate import weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download published generator weights.")
    parser.add_argument("names", nargs="*", help="published model names (see --list)")
    parser.add_argument("--list", action="store_true", help="list the published models")
    parser.add_argument("--dest", default=str(weights.DEFAULT_DIR), help="target folder (weights)")
    parser.add_argument("--overwrite", action="store_true", help="download again even if present")
    args = parser.parse_args(argv)
    if args.list or not args.names:
        for model in weights.PUBLISHED.values():
            print(f"{model.name:30s} {model.method:9s} {model.description}")
        return 0 if args.list else 2
    failed = 0
    for name in args.names:
        try:
            path = weights.fetch(name, args.dest, overwrite=args.overwrite)
        except weights.WeightsError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
