"""POST /v1/chat/completions: the OpenAI-compatible gateway.

``model`` is ``router/<policy-id>``, ``experiment/<experiment-id>`` or a configured model (pass-through). A routed
call is a logged decision (as ``/v1/route`` makes it), forwarded to the chosen upstream with fallbacks; the body
goes back unchanged except ``model`` (the model that answered), with ``x-banditroute-decision-id``, ``-model``
and ``-policy`` headers. Cost, latency, time to first token and the attempts are settled on the decision after
the answer is sent (``service.gateway.record``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from banditroute.service import metrics
from banditroute.service.deps import SECURED, require_fast
from banditroute.service.errors import Invalid, NotFound, responses
from banditroute.service.gateway import sse
from banditroute.service.gateway.cascade import run_cascade
from banditroute.service.gateway.cost import cost_usd, message_text, usage_tokens
from banditroute.service.gateway.forward import AllAttemptsFailed, AttemptOrder, attempt_all
from banditroute.service.gateway.record import Outcome, settle
from banditroute.service.gateway.runtime import Gateway
from banditroute.service.gateway.upstream import StreamBroken, UpstreamResponse, elapsed_ms
from banditroute.service.routes.route import Pending, _route
from banditroute.service.schemas import RouteRequest

router = APIRouter(tags=["gateway"])
#: the route scope, checked on the request alone (``deps.require_fast``); the operations declare the key
RouteScope = require_fast("route")


def gateway_of(request: Request) -> Gateway:
    gw: Gateway | None = getattr(request.app.state, "gateway", None)
    if gw is None:
        raise NotFound("the gateway is off: start the service with --upstreams FILE (or BANDITROUTE_UPSTREAMS)")
    return gw


def openai_error(status: int, message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code or str(status)}}


def routed_text(messages: list[Any], mode: str, limit: int) -> str:
    """The text the router featurizes: the last user message, or the whole conversation."""
    if mode == "conversation":
        text = "\n".join(message_text(m.get("content")) for m in messages if isinstance(m, dict))
    else:
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        text = message_text(users[-1].get("content")) if users else ""
    return text[:limit]


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise Invalid(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise Invalid("model: required, a string (router/<policy-id>, experiment/<id> or a configured model)")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise Invalid("messages: required, a non-empty list")
    return body


async def _check_models(gw: Gateway, store: Any, cache: Any, pids: list[str]) -> list[str]:
    """The models of ``pids``' policies, all configured (422 naming the missing ones otherwise)."""
    models: list[str] = []
    for pid in pids:
        rt = await cache.get(pid)
        missing = [m for m in rt.policy.models if m not in gw.config.models]
        if missing:
            raise Invalid(f"policy {pid!r} routes to {missing}, not configured in the upstreams file")
        models += [m for m in rt.policy.models if m not in models]
    return models


async def _decide(
    gw: Gateway, body: dict[str, Any], store: Any, cache: Any, settings: Any
) -> tuple[Any, AttemptOrder, Pending]:
    """Route the request: ``(RouteResponse, attempt order, the decision's pending log write)``."""
    target: str = body["model"]
    kind, _, ident = target.partition("/")
    query = routed_text(body["messages"], gw.config.featurize, settings.max_query_chars)
    if not query.strip():
        raise Invalid("messages: no user text to route on")
    unit = body.get("user") if isinstance(body.get("user"), str) and body.get("user") else None
    candidates = None
    if kind == "router":
        models = await _check_models(gw, store, cache, [ident])
        ready = [m for m in models if gw.breakers[m].ready()]
        # upstreams with an open breaker are left out of the decision, so its logged propensity is the real one
        candidates = ready if ready and len(ready) < len(models) else None
        req = RouteRequest(query=query, policy=ident, candidates=candidates, unit_id=unit)
    else:
        exp = await store.experiment(ident)
        if exp is None:
            raise NotFound(f"unknown experiment {ident!r}")
        await _check_models(gw, store, cache, [a["policy"] for a in exp["definition"]["arms"]])
        req = RouteRequest(query=query, experiment=ident, unit_id=unit)
    decision, pending = await _route(req, store, cache, settings)
    order = AttemptOrder(decision.model, decision.pmf, gw.config.models, int(decision.decision_id[-16:], 16))
    return decision, order, pending


@router.post(
    "/v1/chat/completions",
    dependencies=[RouteScope],
    responses=responses(401, 403, 404, 422, 503),
    summary="OpenAI-compatible chat completions, routed by a policy",
    openapi_extra=SECURED,
)
async def chat(request: Request) -> Response:
    state = request.app.state
    store, cache, settings = state.store, state.cache, state.settings
    gw = gateway_of(request)
    body = await _body(request)
    start = time.perf_counter()
    stream = bool(body.get("stream"))
    target: str = body["model"]
    order: AttemptOrder | list[str]
    logging: asyncio.Task[None] | None = None
    if target.startswith(("router/", "experiment/")):
        decision, order, pending = await _decide(gw, body, store, cache, settings)
        pid, did, query = decision.policy, decision.decision_id, routed_text(body["messages"], "last_user", 4000)
        if decision.cascade is not None:  # a cascade policy: its stages, stop decisions and record (gateway.cascade)
            return await run_cascade(gw, state, body, decision, pending, query, start)
        # the decision is written while the upstream answers; nothing leaves this request (headers, body, the
        # settling task, the failure feedback) before the write is done (see _logged)
        logging = asyncio.ensure_future(pending.write(store, settings.decision_ttl_seconds))
    elif target in gw.config.models:
        pid = did = ""
        order, query = [target], ""
    else:
        raise NotFound(
            f"unknown model {target!r}: use router/<policy-id>, experiment/<id> or one of {sorted(gw.config.models)}"
        )
    first = order.first if isinstance(order, AttemptOrder) else order[0]
    out = Outcome(pid, did, first, None, [], query)
    headers = {"x-banditroute-decision-id": did, "x-banditroute-policy": pid}
    try:
        served, resp, out.attempts, _ = await attempt_all(gw, order, body, stream)
    except AllAttemptsFailed as exc:
        await _logged(logging)
        out.attempts = exc.attempts
        status = 504 if exc.timed_out else 502
        out.status, out.latency_ms = status, elapsed_ms(start)
        gw.spawn(settle(gw, store, settings, out))
        tried = ", ".join(f"{a.model}: {a.outcome}" for a in exc.attempts) or "no upstream available"
        kind = "upstream_timeout" if status == 504 else "upstream_error"
        return JSONResponse(openai_error(status, f"every attempt failed ({tried})", kind), status, headers=headers)
    except BaseException:
        await _abandon(logging)
        raise
    try:
        await _logged(logging)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await resp.aclose()
        raise
    out.served, out.status = served, resp.status_code
    headers["x-banditroute-model"] = served
    if resp.status_code >= 400 or not stream:
        return _complete(gw, store, settings, body, resp, out, start, headers)
    return _relay(gw, store, settings, body, resp, out, start, headers)


async def _logged(logging: asyncio.Task[None] | None) -> None:
    """Wait for the decision's log write: its failure (Redis away) fails the request as a route's would (503)."""
    if logging is not None:
        await logging


async def _abandon(logging: asyncio.Task[None] | None) -> None:
    """The request failed or was cancelled before answering: let the write finish (a decision whose upstream call
    never happened is still a logged decision, as a route's is), without raising its own error over the first."""
    if logging is not None and not logging.done():
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await logging
    elif logging is not None and not logging.cancelled():
        logging.exception()  # retrieved: no "exception was never retrieved" warning


def _scrub(content: bytes, secrets: list[str]) -> bytes:
    for s in secrets:
        content = content.replace(s.encode(), b"***")
    return content


def _complete(
    gw: Gateway, store: Any, settings: Any, body: dict[str, Any], resp: UpstreamResponse, out: Outcome, start: float,
    headers: dict[str, str],
) -> Response:  # fmt: skip
    """A non-streaming answer (or an upstream 4xx, passed back as it is, upstream keys scrubbed)."""
    content = resp.content
    out.latency_ms = out.ttft_ms = elapsed_ms(start)
    media = resp.headers.get("content-type", "application/json")
    if resp.status_code < 400:
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        if isinstance(data, dict):
            data["model"] = out.served
            msg = ((data.get("choices") or [{}])[0] or {}).get("message") or {}
            out.answer = message_text(msg.get("content")) if isinstance(msg, dict) else ""
            _meter(gw, body, out, data.get("usage"))
            content = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        content = _scrub(content, gw.config.secrets())
    gw.spawn(settle(gw, store, settings, out))
    return Response(content, resp.status_code, headers=headers, media_type=media)


def _meter(gw: Gateway, body: dict[str, Any], out: Outcome, usage: Any) -> None:
    up = gw.config.models[out.served or out.first]
    p, c, local = usage_tokens(usage, body.get("messages"), out.answer)
    out.prompt_tokens, out.completion_tokens, out.tokens_counted_locally = p, c, local
    out.cost_usd = cost_usd(up, p, c)


def broken(gw: Gateway, out: Outcome) -> None:
    """Record that the served attempt (the last) broke off mid-answer."""
    last = out.attempts[-1]
    last.outcome = "broken"
    metrics.GATEWAY_ATTEMPTS.labels(model=last.model, outcome="broken").inc()
    if gw.breakers[last.model].failure():
        metrics.GATEWAY_BREAKER_OPENED.labels(model=last.model).inc()


def _relay(
    gw: Gateway, store: Any, settings: Any, body: dict[str, Any], resp: UpstreamResponse, out: Outcome, start: float,
    headers: dict[str, str],
) -> Response:  # fmt: skip
    """A streaming answer, relayed event by event as it arrives; the client's disconnect cancels the upstream."""
    state = sse.StreamState(out.served or "")

    async def events() -> Any:
        try:
            async for chunk in resp.aiter_raw():
                if out.ttft_ms is None:
                    out.ttft_ms = elapsed_ms(start)
                data = sse.feed(chunk, state)
                if data:
                    yield data
            tail = sse.flush(state)
            if tail:
                yield tail
        except StreamBroken as exc:
            # the upstream broke mid-stream: what was sent stays sent and no fallback is possible, but the answer
            # is not whole: the caller gets an error event (the openai client raises on it), the attempt is
            # recorded as broken and counted by the breaker, and a broken first choice is fed back as a failure
            # (settle), as a call that failed before its first byte is
            out.status = 502
            out.extra["error"] = str(exc)
            broken(gw, out)
            message = f"upstream {out.served!r} broke off the answer mid-stream ({exc})"
            yield b"data: " + json.dumps(openai_error(502, message, "upstream_error")).encode() + b"\n\n"
        finally:
            # shielded: on a client disconnect this runs inside a cancelled scope, and the upstream must be closed
            with anyio.CancelScope(shield=True):
                await resp.aclose()
            out.latency_ms = elapsed_ms(start)
            out.answer = state.answer
            _meter(gw, body, out, state.usage)
            gw.spawn(settle(gw, store, settings, out))

    media = resp.headers.get("content-type", "text/event-stream")
    return StreamingResponse(events(), resp.status_code, headers=headers, media_type=media)
