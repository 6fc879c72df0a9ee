"""The server stack ``serve`` runs: every accepted connection gets TCP_NODELAY, whichever HTTP protocol and loop."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from banditroute.service.serving import NoDelayH11Protocol, http_protocol, uvicorn_options


async def _app(scope: dict, receive: Any, send: Any) -> None:  # pragma: no cover - never called
    raise AssertionError


async def _accepted_nodelay(protocol_class: type[asyncio.Protocol]) -> int:
    """Serve ``protocol_class`` from a listening socket made beforehand (as uvicorn's worker processes get it),
    connect once, and read TCP_NODELAY on the server's side of the connection."""
    config = uvicorn.Config(_app, log_level="warning")
    config.load()
    made: list[Any] = []

    def factory() -> asyncio.Protocol:
        p = protocol_class(config=config, server_state=ServerState(), app_state={})  # type: ignore[call-arg]
        made.append(p)
        return p

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = await asyncio.get_running_loop().create_server(factory, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname())
        for _ in range(100):
            if made and getattr(made[0], "transport", None) is not None:
                break
            await asyncio.sleep(0.01)
        value = made[0].transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writer.close()
        return int(value)
    finally:
        server.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("which", ["served", "h11 fallback"])
def test_accepted_connections_get_tcp_nodelay(loop: str, which: str) -> None:
    cls = http_protocol() if which == "served" else NoDelayH11Protocol
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        value = uvloop.run(_accepted_nodelay(cls))
    else:
        value = asyncio.run(_accepted_nodelay(cls))
    assert value != 0


def test_serve_uses_the_c_parser_and_loop_when_installed() -> None:
    """httptools and uvloop are core dependencies: ``serve`` must pick them, not fall back to h11 on asyncio."""
    pytest.importorskip("httptools")
    pytest.importorskip("uvloop")
    opts = uvicorn_options()
    assert opts["http"] is http_protocol() and opts["http"].__name__ == "NoDelayHttpToolsProtocol"
    assert opts["loop"] == "uvloop"


def test_a_running_service_keeps_its_startup_heap_out_of_the_collector(redis_url: str) -> None:
    """Full collections walked the worker's whole startup heap (modules, the app) and doubled the route's p99:
    the lifespan freezes it once started, and gives it back to the collector when the app stops."""
    import gc

    import httpx

    from banditroute.service.app import create_app
    from banditroute.testing import ServerThread

    from .conftest import settings_for

    gc.unfreeze()
    with ServerThread(create_app(settings_for(redis_url))) as server:
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
