"""What ``banditroute serve`` adds around uvicorn: TCP_NODELAY on every accepted connection, and the startup
report (address, Redis, data directory, auth).

uvicorn's worker processes serve from a listening socket inherited from the supervisor; the connections they
accept that way do not get TCP_NODELAY (an open upstream issue), so every keep-alive response waits for Nagle +
delayed ACK (~40 ms). :class:`NoDelayHttpToolsProtocol` sets it on each connection, whatever the worker count.

The HTTP parser is httptools (C, llhttp) on the uvloop event loop: uvicorn's pure-Python h11 parser on asyncio's
loop cost the gateway about a third of its throughput (benchmarks/gateway.py; docs/design-notes.md, the hot
path). Both are core dependencies; without them (a platform with no wheel) serving falls back to h11 on asyncio,
with the same TCP_NODELAY hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools has no wheel for this platform
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

from banditroute.service.config import Settings


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _NoDelay(asyncio.Protocol):
    """Mixin for uvicorn's HTTP protocols: TCP_NODELAY on the connection before the protocol takes it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_nodelay(transport)
        super().connection_made(transport)


class NoDelayH11Protocol(_NoDelay, H11Protocol):
    """uvicorn's h11 protocol with TCP_NODELAY set on the connection."""


if HttpToolsProtocol is not None:

    class NoDelayHttpToolsProtocol(_NoDelay, HttpToolsProtocol):
        """uvicorn's httptools protocol with TCP_NODELAY set on the connection."""


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def http_protocol() -> type[asyncio.Protocol]:
    """The fastest HTTP protocol installed, with TCP_NODELAY."""
    if HttpToolsProtocol is not None:
        return NoDelayHttpToolsProtocol
    return NoDelayH11Protocol


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """``BANDITROUTE_*`` variables that name no setting (a misspelt ``BANDITROUTE_API_KEY`` leaves auth off)."""
    env = os.environ if environ is None else environ
    known = {f"BANDITROUTE_{name.upper()}" for name in Settings.model_fields}
    return sorted(k for k in env if k.startswith("BANDITROUTE_") and k not in known)


def startup_report(host: str, port: int, workers: int, redis_url: str, data_dir: str | None, extra: str = "") -> str:
    """The lines ``serve`` prints before it accepts requests."""
    settings = Settings()
    lines = [f"banditroute serving on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})"]
    lines.append(f"  redis: {_redact(redis_url)}" + (" (embedded)" if data_dir else ""))
    lines.append(f"  data dir: {data_dir} (AOF on)" if data_dir else "  data dir: managed by that Redis")
    if extra:
        lines.append(f"  {extra}")
    if settings.api_keys:
        lines.append(f"  auth: on ({len(settings.api_keys)} API keys)")
    else:
        lines.append(
            "  WARNING: auth is off (BANDITROUTE_API_KEYS is empty): anyone who reaches this address can route, "
            "give feedback and change policies"
        )
    for name in unknown_variables():
        lines.append(f"  WARNING: {name} is not a setting and is ignored (see `banditroute serve --help`)")
    return "\n".join(lines)


def _redact(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def uvicorn_options() -> dict[str, Any]:
    """Options of ``uvicorn.run`` that keep latency low and shutdown quick."""
    return {
        "http": http_protocol(),
        "loop": "uvloop" if _has("uvloop") else "asyncio",
        "timeout_graceful_shutdown": 1,  # SIGTERM: stop within 2 s even with open keep-alive connections
        "timeout_keep_alive": 30,  # longer than clients' and load balancers' idle reuse
    }
