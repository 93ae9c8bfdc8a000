"""Downloads that end: a deadline for the whole transfer, a per-read time-out and a minimum rate,
so a server that goes silent or sends a byte now and then cannot hold `weights fetch` forever."""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO

from translate.errors import WeightsError


@dataclass(frozen=True)
class DownloadLimits:
    """deadline_s: the whole download; read_timeout_s: one silent wait; min_bytes_per_s: the average
    rate a transfer must keep once grace_s have passed (the largest known file, ~550 MB, takes ~7 min
    at the 1.3 MB/s this deadline implies; slow links raise it with a larger deadline)."""

    deadline_s: float = 1800.0
    read_timeout_s: float = 60.0
    min_bytes_per_s: float = 16_384.0
    grace_s: float = 30.0


def _socket_of(response: object) -> object | None:
    """The socket under an http.client response, to shorten its time-out as the deadline nears."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    return getattr(raw, "_sock", None)


def stream(url: str, out: BinaryIO, limits: DownloadLimits, *, name: str) -> tuple[int, str | None]:
    """Copy `url` into `out` within `limits`; (bytes copied, Content-Length or None).

    Each failure is a one-line WeightsError naming `name`, the url and the numbers; the caller's
    atomic write removes the partial file."""
    start = time.monotonic()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=min(limits.read_timeout_s, limits.deadline_s)) as response:
            expected = response.headers.get("Content-Length")
            sock = _socket_of(response)
            while True:
                elapsed = time.monotonic() - start
                _check_progress(url, name, size, elapsed, limits)
                if sock is not None:
                    sock.settimeout(max(0.05, min(limits.read_timeout_s, limits.deadline_s - elapsed)))
                chunk = response.read1(1 << 20)  # returns what arrived, not a full 1 MiB
                if not chunk:
                    return size, expected
                out.write(chunk)
                size += len(chunk)
    except WeightsError:
        raise
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        elapsed = time.monotonic() - start
        _check_progress(url, name, size, elapsed, limits)  # a time-out at the deadline says so
        reason = getattr(e, "reason", None) or e
        raise WeightsError(f"{name}: download from {url} failed ({reason}) after {elapsed:.0f} s and {size:,} "
                           "bytes; check the network, or download the file by hand") from e


def _check_progress(url: str, name: str, size: int, elapsed: float, limits: DownloadLimits) -> None:
    if elapsed >= limits.deadline_s:
        raise WeightsError(f"{name}: download from {url} did not finish within {limits.deadline_s:.0f} s "
                           f"({size:,} bytes received); not saved")
    if elapsed >= limits.grace_s and size < limits.min_bytes_per_s * elapsed:
        raise WeightsError(f"{name}: download from {url} too slow ({size / elapsed:,.0f} bytes/s over "
                           f"{elapsed:.0f} s, minimum {limits.min_bytes_per_s:,.0f}); not saved")
