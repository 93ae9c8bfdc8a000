"""`translate weights list | fetch NAME`: the weights translate knows, where they are, and fetching them."""
from __future__ import annotations

import argparse
import sys


def _add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list known weights (feature networks, published generators); fetch them",
                       description="translate never downloads on its own. `list` shows every weights file it "
                                   "knows and where it was found; `fetch` downloads on request, checked against "
                                   "a pinned sha256 before the file appears.")
    actions = p.add_subparsers(dest="weights_action", required=True)
    listing = actions.add_parser("list", help="known weights and whether they are present")
    listing.add_argument("--weights-dir", default="weights", help="local weights folder (weights)")
    listing.set_defaults(func=_cmd_list)
    fetch = actions.add_parser("fetch", help="download weights by name (see `translate weights list`)",
                               description="Downloads into --dest (weights/). Feature networks are checked against "
                                           "their pinned sha256 (torchvision's files: the first 8 hex digits its "
                                           "file names carry, the check torch.hub makes); published generators "
                                           "must load as weights-only state dicts. Exit 1 if any failed.")
    fetch.add_argument("names", nargs="+", metavar="NAME", help="feature network or published model name")
    fetch.add_argument("--dest", default="weights", help="target folder (weights)")
    fetch.add_argument("--overwrite", action="store_true", help="download again even if present")
    fetch.set_defaults(func=_cmd_fetch)


def _cmd_list(args: argparse.Namespace) -> int:
    from translate import weights
    from translate.integrity import pins
    from translate.errors import WeightsError

    print("feature networks (losses and metrics; looked for in the weights folder, then the library's copy):")
    for name, entry in weights.FEATURE_WEIGHTS.items():
        try:
            where = weights.locate(name, weights_dir=args.weights_dir)
            where = f"{pins.status(where, entry.sha256)}: {where}"
        except WeightsError as e:
            where = "mismatch: " + str(e).split(": sha256")[0] if "pinned" in str(e) else "missing"
        print(f"  {name:12s} {entry.description}\n  {'':12s} {where}")
    print(f"published generators (`translate convert NAME`; in {args.weights_dir}/):")
    for model in weights.PUBLISHED.values():
        present = pins.status(weights.local_path(model.name, args.weights_dir), model.sha256)
        print(f"  {model.name:30s} {model.method:9s} {present:9s} {model.description}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from translate import weights
    from translate.errors import WeightsError

    unknown = [n for n in args.names if n not in weights.FEATURE_WEIGHTS and n not in weights.PUBLISHED]
    if unknown:
        raise WeightsError(f"{unknown[0]}: unknown weights (feature networks: {', '.join(weights.FEATURE_WEIGHTS)}; "
                           f"published models: see `translate weights list`)")
    failed = 0
    for name in args.names:
        try:
            if name in weights.FEATURE_WEIGHTS:
                path = weights.fetch_feature(name, args.dest, overwrite=args.overwrite)
            else:
                path = weights.fetch(name, args.dest, overwrite=args.overwrite)
        except WeightsError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {path}")
    return 1 if failed else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    _add_weights(sub)
