"""An upstream that breaks off mid-stream: the events that arrived before the break are relayed, then the break.

The close often arrives together with the last events while the gateway is still relaying the chunk before; aiohttp
then raises on the next read although those events sit in its buffer. Here the upstream sends its events and closes
in one write, and the reader starts only after both arrived, which is that case made certain.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from banditroute.service.gateway.config import Upstream
from banditroute.service.gateway.upstream import StreamBroken, send

EVENTS = [b'data: {"n":1}\n\n', b'data: {"n":2}\n\n']


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _serve_and_break(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
    await reader.readexactly(length)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    writer.write(head + b"".join(_chunk(e) for e in EVENTS))  # no terminating chunk: the body is cut short
    await writer.drain()
    writer.close()


async def _relay_after_break(closed_first: bool) -> tuple[list[bytes], BaseException | None]:
    server = await asyncio.start_server(_serve_and_break, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    up = Upstream("m", f"http://127.0.0.1:{port}/v1", "m", 1.0, 1.0, timeout_s=5.0)
    got: list[bytes] = []
    error: BaseException | None = None
    async with server, aiohttp.ClientSession() as client:
        resp = await send(client, up, {"messages": [], "stream": True}, stream=True)
        if closed_first:
            await asyncio.sleep(0.2)  # the events and the close are both in before the first read
        try:
            async for chunk in resp.aiter_raw():
                got.append(chunk)
        except StreamBroken as exc:
            error = exc
        await resp.aclose()
    return got, error


@pytest.mark.parametrize("closed_first", [True, False])
def test_events_before_a_break_are_relayed_then_the_break(closed_first: bool) -> None:
    got, error = asyncio.run(_relay_after_break(closed_first))
    assert b"".join(got) == b"".join(EVENTS)
    assert isinstance(error, StreamBroken)
