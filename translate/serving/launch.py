"""Start `translate serve` in a child process on a free loopback port and wait until it answers
/health: what the Krita plug-in's tests and scripts/bench_plugin.py drive it through."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_local_service(serve_args: Sequence[str], *, log: IO | int = subprocess.DEVNULL, cwd: Path | None = None,
                        timeout_s: float = 120.0) -> tuple[subprocess.Popen, str]:
    """(process, base URL) of `translate serve SERVE_ARGS --port P` once /health answers; the
    process is killed and RuntimeError raised when it exits or stays silent for `timeout_s`."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "translate", "serve", *serve_args, "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"translate serve did not start within {timeout_s:.0f} s")
