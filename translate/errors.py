"""Everything a user can cause: one base class, which the CLI catches once and prints as one line.

Each message is one line that names the file, field or flag and the problem (and, where there is
one, the fix). Subclasses say which part of the toolkit refused; callers that only want to know
"was this the user's doing?" catch `TranslateError`. It is its own base, not a `ValueError`, so
that catching our errors never also swallows a bug (a `ValueError` from a broken contract inside
the package or from a library). `Cancelled` is not a `TranslateError`: work stopped on request is
nobody's mistake. This module imports nothing, so every layer (`nets/` included) may raise these.
"""
from __future__ import annotations


class TranslateError(Exception):
    """A problem the user can fix: bad input, file, flag or setting. str(e) is one line."""


class ConfigError(TranslateError):
    """A config value or key is wrong; the message names its dotted path."""


class DatasetError(TranslateError):
    """A dataset folder or file that does not fit its layout; names the path and the problem."""


class ImageError(TranslateError):
    """An image file that cannot be read, written or converted; str(e) is '<path>: <problem>'."""


class CheckpointError(TranslateError):
    """A checkpoint is missing, truncated, foreign or too new; the message names the file."""


class TranslatorError(TranslateError):
    """A model source, inference option or direction that cannot be used; names the culprit."""


class ExportError(TranslateError):
    """An export that cannot be written or that failed its parity check; names the file."""


class WeightsError(TranslateError):
    """Published weights that are unknown, missing or fail their checksum; says how to get them."""


class DistributedError(TranslateError):
    """Ranks of a torchrun job that disagree (config, data) or cannot work together."""


class Cancelled(Exception):
    """Work stopped because its caller asked (a client left, a time limit passed, a shutdown).

    Not a `TranslateError`: nothing the user gave was wrong. The CLI prints it as one
    `cancelled: ...` line and exits 130, as for Ctrl-C."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of another library's message (or the exception's type name), for
    quoting it as the cause at the end of a sentence of our own, never cut mid-sentence."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
