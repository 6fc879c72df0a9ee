"""One attempt against one upstream: send the caller's body (``model`` set to the upstream's own name), classify
the answer. A connection error, a timeout or a 5xx is a failure (the caller may fall back); a 4xx is the caller's
own mistake and goes back as it is; a 2xx is an answer.

The client is aiohttp's (one pooled ``ClientSession`` per worker, :mod:`service.gateway.runtime`): on loopback it
took 0.7 ms of CPU per call where httpx's ``AsyncClient`` took 2.2 ms, the largest part of the gateway's added
latency (benchmarks/gateway.py). :class:`UpstreamResponse` is the little the gateway needs of a response, so the
rest of the gateway does not depend on the client library.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from banditroute.service.gateway.config import Upstream


class UpstreamFailure(Exception):
    """The attempt failed in a way another model may not (``kind``: connect, timeout, status, breaker)."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


class StreamBroken(Exception):
    """The upstream's answer broke off after it had started (connection dropped, body cut short, read timeout)."""


@dataclass
class Attempt:
    """One attempt, as recorded on the decision."""

    model: str
    outcome: str  # ok, client_error, connect, timeout, status, breaker; broken: failed mid-stream after an ok
    status: int | None = None
    ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "outcome": self.outcome, "status": self.status, "ms": round(self.ms, 3)}


class UpstreamResponse:
    """An upstream's answer: ``status_code``, ``headers`` and, unless it is an open stream, ``content``."""

    def __init__(self, resp: aiohttp.ClientResponse, content: bytes | None) -> None:
        self._resp = resp
        self.status_code = resp.status
        self.headers = resp.headers
        self.content = content if content is not None else b""
        self._whole = content is not None

    def json(self) -> Any:
        return json.loads(self.content)

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body of an open stream, chunk by chunk as it arrives; :class:`StreamBroken` if it breaks off."""
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            rest = _arrived_before_break(self._resp.content)
            if rest:
                yield rest
            raise StreamBroken(type(exc).__name__) from exc
        self._whole = True

    async def aclose(self) -> None:
        """Back to the pool when read to its end; otherwise the connection is closed (the upstream stops)."""
        if self._whole:
            self._resp.release()
        else:
            self._resp.close()


def _arrived_before_break(content: aiohttp.StreamReader) -> bytes:
    """The bytes that arrived before the connection broke but were not read yet.

    Once the connection is lost, aiohttp's reader raises on every read, even while the last events the upstream
    sent are still in its buffer (they arrive together with the close while the gateway relays the chunk before).
    They are part of the answer that was sent, so the gateway relays them before its error event. The buffer is
    aiohttp's own (``read_nowait`` raises once the stream failed); without it, nothing more is relayed.
    """
    buffered = getattr(content, "_buffer", None)
    if not buffered:
        return b""
    rest = b"".join(buffered)[getattr(content, "_buffer_offset", 0) :]  # the offset is into the first chunk
    buffered.clear()
    return rest


def upstream_headers(up: Upstream) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if up.api_key:
        headers["authorization"] = f"Bearer {up.api_key}"
    return headers


async def send(client: aiohttp.ClientSession, up: Upstream, body: dict[str, Any], stream: bool) -> UpstreamResponse:
    """POST ``body`` to ``up``; returns the response (2xx or 4xx) or raises :class:`UpstreamFailure`.

    The response of a streaming 2xx is left open for the caller to iterate and close; any other is read whole.
    """
    payload = json.dumps({**body, "model": up.model}, ensure_ascii=False, separators=(",", ":")).encode()
    timeout = aiohttp.ClientTimeout(total=None, connect=up.timeout_s, sock_read=up.timeout_s)
    try:
        resp = await client.post(
            up.url, data=payload, headers=upstream_headers(up), timeout=timeout, allow_redirects=False
        )
    except TimeoutError as exc:
        raise UpstreamFailure("timeout", f"{up.name}: timed out after {up.timeout_s} s") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamFailure("connect", f"{up.name}: {type(exc).__name__}") from exc
    if stream and resp.status < 400:
        return UpstreamResponse(resp, None)
    try:
        content = await resp.read()
    except TimeoutError as exc:
        resp.close()
        raise UpstreamFailure("timeout", f"{up.name}: timed out reading the answer") from exc
    except aiohttp.ClientError as exc:
        resp.close()
        raise UpstreamFailure("connect", f"{up.name}: {type(exc).__name__} reading the answer") from exc
    resp.release()
    if resp.status >= 500:
        raise UpstreamFailure("status", f"{up.name}: upstream answered {resp.status}", resp.status)
    return UpstreamResponse(resp, content)


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
