"""One attempt against one upstream: send the caller's body (``model`` set to the upstream's own name), classify
the answer. A connection error, a timeout or a 5xx is a failure (the caller may fall back); a 4xx is the caller's
own mistake and goes back as it is; a 2xx is an answer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from banditroute.service.gateway.config import Upstream


class UpstreamFailure(Exception):
    """The attempt failed in a way another model may not (``kind``: connect, timeout, status, breaker)."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


@dataclass
class Attempt:
    """One attempt, as recorded on the decision."""

    model: str
    outcome: str  # ok, client_error, connect, timeout, status, breaker; broken: failed mid-stream after an ok
    status: int | None = None
    ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "outcome": self.outcome, "status": self.status, "ms": round(self.ms, 3)}


def upstream_headers(up: Upstream) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if up.api_key:
        headers["authorization"] = f"Bearer {up.api_key}"
    return headers


async def send(client: httpx.AsyncClient, up: Upstream, body: dict[str, Any], stream: bool) -> httpx.Response:
    """POST ``body`` to ``up``; returns the open response (2xx or 4xx) or raises :class:`UpstreamFailure`.

    The response of a streaming call is left open for the caller to iterate and close; any other is read.
    """
    payload = {**body, "model": up.model}
    req = client.build_request(
        "POST", up.url, json=payload, headers=upstream_headers(up), timeout=httpx.Timeout(up.timeout_s)
    )
    try:
        resp = await client.send(req, stream=True)
    except httpx.TimeoutException as exc:
        raise UpstreamFailure("timeout", f"{up.name}: timed out after {up.timeout_s} s") from exc
    except httpx.TransportError as exc:
        raise UpstreamFailure("connect", f"{up.name}: {type(exc).__name__}") from exc
    if resp.status_code >= 500 or not stream or resp.status_code >= 400:
        try:
            await resp.aread()
        except httpx.TimeoutException as exc:
            await resp.aclose()
            raise UpstreamFailure("timeout", f"{up.name}: timed out reading the answer") from exc
        except httpx.TransportError as exc:
            await resp.aclose()
            raise UpstreamFailure("connect", f"{up.name}: {type(exc).__name__} reading the answer") from exc
    if resp.status_code >= 500:
        raise UpstreamFailure("status", f"{up.name}: upstream answered {resp.status_code}", resp.status_code)
    return resp


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
