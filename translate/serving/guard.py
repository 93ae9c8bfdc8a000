"""Who may talk to the local service. A web page the user visits must not drive it: Host headers
must name this machine as the user reached it (a DNS-rebinding page sends its own domain name), and
browser POSTs must come from the service's own pages (the editor), never from another origin."""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import JSONResponse

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")  # bind every interface: reached by any of this machine's addresses
_HOST = re.compile(r"^(?:\[([0-9a-f:.]+)\]|([a-z0-9._-]+))(?::(\d{1,5}))?$")
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: addresses other machines cannot reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header 'name[:port]' or '[v6]:port' -> (lower-case name, port or None); None if malformed."""
    match = _HOST.match(value.strip().lower())
    if match is None:
        return None
    name = (match.group(1) or match.group(2)).rstrip(".")  # "localhost." is localhost
    return name, int(match.group(3)) if match.group(3) else None


@dataclass(frozen=True)
class HostPolicy:
    """Host headers the service answers to: `direct` names (and any IP address when `any_ip`) on
    `port` (any port when None), `named` names on any port (they may come through a reverse
    proxy), or anything when `any_host`. The default: loopback names only."""

    direct: frozenset[str] = frozenset(LOOPBACK_NAMES)
    port: int | None = None
    any_ip: bool = False
    named: frozenset[str] = frozenset()
    any_host: bool = False

    @classmethod
    def for_bind(cls, host: str, port: int, allowed: Sequence[str] = ()) -> HostPolicy:
        """The policy for a server bound to `host`:`port`, plus the user's `allowed` names ("*": any).
        Binding every interface (0.0.0.0, ::) also accepts this machine's name and IP addresses:
        an IP address in the Host header cannot be a rebound domain name."""
        direct = set(LOOPBACK_NAMES)
        wildcard = host in WILDCARD_BINDS
        if wildcard:
            direct |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        else:
            direct.add(host.strip("[]").lower())
        named = frozenset(name.strip().lower().rstrip(".") for name in allowed if name.strip() != "*")
        return cls(frozenset(direct), port, wildcard, named, any(name.strip() == "*" for name in allowed))

    def allows(self, header: str) -> bool:
        """Whether a request carrying Host: `header` may be answered."""
        parsed = split_host(header)
        if self.any_host or parsed is None:
            return self.any_host
        name, port = parsed
        if name in self.named:
            return True
        direct = name in self.direct or (self.any_ip and _is_ip(name))
        return direct and (self.port is None or (port or 80) == self.port)


def cross_origin(method: str, headers: dict[bytes, bytes]) -> str | None:
    """The foreign origin of a browser request that may change state (not GET/HEAD/OPTIONS), or
    None when it comes from the same origin or from no browser at all (curl sends no Origin)."""
    if method in _SAFE_METHODS:
        return None
    site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
    origin = headers.get(b"origin", b"").decode("latin-1").strip()
    if site in ("cross-site", "same-site"):  # same-site: another port or subdomain, another origin
        return origin or site
    if site == "same-origin" or not origin:  # the browser's own word (pages cannot set it), or no browser
        return None
    # Browsers without Fetch Metadata: the Origin must be the address this request was sent to.
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    if origin == "null" or urlsplit(origin.lower()).netloc != host:  # "null": sandboxed or file:// pages
        return origin
    return None


class RequestGuard:
    """ASGI middleware: 400 for a Host header `policy` refuses, 403 for cross-origin POSTs (JSON errors)."""

    def __init__(self, app: Any, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.policy.allows(host):
            message = (f"Host header {host!r} is not a name this service answers to; to reach it under "
                       f"another name, start it with --allowed-host NAME")
            await JSONResponse({"error": message}, status_code=400)(scope, receive, send)
            return
        origin = cross_origin(scope["method"], headers)
        if origin is not None:
            message = (f"cross-origin request from {origin} refused: only pages this service serves "
                       f"(the editor at /) may send it requests that act")
            await JSONResponse({"error": message}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)
