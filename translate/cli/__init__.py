"""Command line: demo / train / convert / prepare / eval / export / serve / plugin / info / weights. Parses
arguments, calls library code; the only code that exits. Commands live in `training.py`, `models.py`,
`serving.py`, `plugin.py` and `weights.py`."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

log = logging.getLogger("translate")


# ---------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    from translate import __version__

    parser = argparse.ArgumentParser(prog="translate", description="Image-to-image translation with GANs.")
    parser.add_argument("--version", action="version", version=f"translate {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    from translate.cli import evaluation, models, plugin, safety, serving, training, weights

    training.add_commands(sub)
    evaluation.add_commands(sub)
    models.add_commands(sub)
    serving.add_commands(sub)
    plugin.add_commands(sub)
    weights.add_commands(sub)
    safety.add_safety_flags(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Anything the user can fix prints one `error: ...` line and returns 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from translate.cli.safety import apply_safety_flags

    apply_safety_flags(args)
    return run_command(args.func, args)


def run_command(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Call `command(args)` and turn what it raises into one stderr line and an exit code.

    2: the user can fix it (`TranslateError`, or the file system refusing). 130: stopped on request,
    by Ctrl-C or by the library's `Cancelled` (a time limit, a shutdown), which is nobody's error;
    one code for both, as a shell reports for SIGINT. 141: the reader of stdout went away."""
    from translate.errors import Cancelled, TranslateError

    try:
        code = command(args)
        sys.stdout.flush()  # a reader that went away (`translate info RUN | head`) shows up here
        return code
    except TranslateError as e:
        return _fail(str(e))
    except BrokenPipeError:
        _silence_stdout()
        return 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left
    except OSError as e:  # the file system said no: permissions, a full disk, a file where a folder goes
        return _fail(_os_error_line(e))
    except Cancelled as e:
        print("cancelled: " + _one_line(str(e)), file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def _fail(message: str) -> int:
    print("error: " + _one_line(message), file=sys.stderr)
    return 2


def _os_error_line(error: OSError) -> str:
    from translate.errors import first_line

    if error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return first_line(error)


def _silence_stdout() -> None:
    """Point stdout at the null device, so that Python's flush at exit does not hit the closed pipe again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured by a test, say)
        pass


if __name__ == "__main__":
    sys.exit(main())
