"""Flags every command takes that loosen a safety limit: `--max-parameters`, `--unverified-weights`."""
from __future__ import annotations

import argparse

from translate.integrity.bounds import DEFAULT_MAX_PARAMETERS


def _count(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 1 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of parameters >= 1")
    return int(value)


def add_safety_flags(sub: argparse._SubParsersAction) -> None:
    """Give every command the flags; each command's own flags win where a name is taken."""
    for parser in sub.choices.values():
        options = {s for action in parser._actions for s in action.option_strings}
        if "--max-parameters" not in options:
            parser.add_argument("--max-parameters", type=_count, default=DEFAULT_MAX_PARAMETERS, metavar="N",
                                help="refuse weights whose net has more parameters than N, counted before "
                                     f"anything is allocated ({DEFAULT_MAX_PARAMETERS:.0e})")
        if "--unverified-weights" not in options:
            parser.add_argument("--unverified-weights", action="store_true",
                                help="use a weights file under a known name even when its sha256 differs "
                                     "from the pinned one (your own file)")


def apply_safety_flags(args: argparse.Namespace) -> None:
    """Set this process's limits from the parsed flags."""
    from translate.integrity import bounds, pins

    bounds.set_max_parameters(getattr(args, "max_parameters", DEFAULT_MAX_PARAMETERS))
    if getattr(args, "unverified_weights", False):  # only ever loosens: the default is refusal
        pins.allow_unverified(True)
