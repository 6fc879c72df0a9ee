"""ASGI middleware: request-body limits, per-request metrics and structured access logs."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from banditroute.service import metrics
from banditroute.service.config import Settings
from banditroute.service.errors import error_body

log = logging.getLogger("banditroute.access")
LARGE_BODY_PATHS = ("/v1/policies",)


class BodyTooLarge(Exception):
    pass


class ServiceMiddleware:
    """Refuses bodies over the limit with 413 (by Content-Length, or while reading), counts and times every
    request, and logs one JSON line per request."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def _limit(self, path: str) -> int:
        if path.startswith(LARGE_BODY_PATHS) and self.settings.max_artifact_bytes > self.settings.max_body_bytes:
            return self.settings.max_artifact_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self._limit(path)
        start = time.perf_counter()
        status = {"code": 500, "started": False}
        rid = uuid.uuid4().hex[:16]

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        refusal = _length_refusal(scope, limit)
        if refusal is not None:
            await _reject(send_wrapper, send, *refusal)
            return
        seen = 0

        async def receive_wrapper() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return dict(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except BodyTooLarge:
            if not status["started"]:
                await _reject(send_wrapper, send, 413, "too_large", f"body exceeds the limit of {limit} bytes")
        finally:
            _record(scope, path, int(status["code"]), rid, time.perf_counter() - start)


def _length_refusal(scope: dict[str, Any], limit: int) -> tuple[int, str, str] | None:
    """(status, kind, message) when the declared Content-Length is malformed or over ``limit``."""
    length = dict(scope.get("headers") or []).get(b"content-length")
    if length is None:
        return None
    try:
        n = int(length)
    except ValueError:
        return 400, "invalid", "bad Content-Length"
    return (413, "too_large", f"body of {n} bytes exceeds the limit of {limit}") if n > limit else None


async def _reject(send_start: Any, send: Any, code: int, kind: str, text: str) -> None:
    """Answer with the service's error body (the start goes through ``send_start`` so it is counted)."""
    body = json.dumps(error_body(kind, text)).encode()
    await send_start(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: (method, path template, status) -> the request counter's and latency histogram's children (``labels()`` takes a
#: lock and builds a key on every call; the children never change). Bounded: templates are the app's routes.
_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _record(scope: dict[str, Any], path: str, code: int, rid: str, elapsed: float) -> None:
    """Metrics and one access-log line for a finished request."""
    route = scope.get("route")
    template = getattr(route, "path", None) or ("unmatched" if code == 404 else path[:64])
    method = scope.get("method", "")
    key = (method, template, code)
    children = _CHILDREN.get(key)
    if children is None:
        children = (
            metrics.REQUESTS.labels(method=method, path=template, status=str(code)),
            metrics.LATENCY.labels(method=method, path=template),
        )
        if len(_CHILDREN) < 4096:
            _CHILDREN[key] = children
    children[0].inc()
    children[1].observe(elapsed)
    if code >= 500:
        metrics.ERRORS.labels(path=template).inc()
    log.info(
        "request",
        extra={"request_id": rid, "method": method, "path": path, "status": code, "ms": round(elapsed * 1000, 2)},
    )
