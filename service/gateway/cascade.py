"""``router/<cascade-policy>`` through the gateway: call the first stage in parallel, read the answers, decide to
stop or escalate, and return the chosen answer's own upstream response.

The decision (first stage, its propensity) is made and logged as any routed call's (``routes.route._route``);
the log write runs while the first stage is out. Each stage's calls go out together (non-streamed); a call that
fails (connection error, timeout, 5xx, an open breaker, a body that is not a completion) is an empty answer
(``""``) for its model and the cascade goes on: escalation is a cascade's fallback. The answer label of each
response is read by the router's :class:`~banditroute.service.cascade_answers.AnswerReader`; the policy's
:meth:`Cascade.decide` makes each stop-or-escalate decision with its propensity. Once it stops, the whole record
(every step, answer, call, cost) is written on the decision *before* the answer goes out, so feedback on the
returned id always finds it; the response is the chosen model's upstream body with ``model`` set to that model.

Costs add up over every call made; ``gw_latency_ms`` is the request's, and ``cascade_stage_ms`` the stages'
(parallel calls count once, stages add up). An upstream 4xx (the caller's own mistake) ends the cascade and goes
back as it is (state ``aborted``: no feedback on it). When no call answered at all, the caller gets 502 (504 if
the last failures timed out) and the failure reward is fed back (source ``gateway``) to the stop decisions and
the query level, as a failed first choice is for a single-call router.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi.responses import JSONResponse, Response, StreamingResponse

from banditroute.service import metrics
from banditroute.service.cascade_answers import DEFAULT_READER, AnswerReader
from banditroute.service.cascade_record import CascadeRecord, advance
from banditroute.service.cascade_store import write_step
from banditroute.service.errors import Invalid
from banditroute.service.gateway.cascade_stream import completion_events
from banditroute.service.gateway.cost import cost_usd, message_text, usage_tokens
from banditroute.service.gateway.judge import Job
from banditroute.service.gateway.runtime import Gateway
from banditroute.service.gateway.upstream import UpstreamFailure, elapsed_ms, send
from banditroute.service.keys import k_mark
from banditroute.service.store import decode_x


@dataclass
class Call:
    """One call of a cascade (``outcome``: ok, client_error, connect, timeout, status, breaker, bad_body)."""

    model: str
    stage: int
    outcome: str
    status: int | None = None
    ms: float = 0.0
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    text: str = ""
    data: dict[str, Any] | None = field(default=None, repr=False)
    content: bytes = field(default=b"", repr=False)
    media: str = "application/json"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "stage": self.stage,
            "outcome": self.outcome,
            "status": self.status,
            "ms": round(self.ms, 3),
            "cost_usd": self.cost_usd,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


def _count(name: str, outcome: str) -> None:
    metrics.GATEWAY_ATTEMPTS.labels(model=name, outcome=outcome).inc()


async def call_one(gw: Gateway, name: str, body: dict[str, Any], stage: int) -> Call:
    """Call ``name`` once (no fallback: the cascade's next stage is the fallback); never raises for the upstream."""
    up, breaker = gw.config.models[name], gw.breakers[name]
    if not breaker.allow():
        _count(name, "breaker")
        return Call(name, stage, "breaker")
    start = time.perf_counter()
    try:
        resp = await send(gw.client, up, body, False)
    except UpstreamFailure as exc:
        _count(name, exc.kind)
        if breaker.failure():
            metrics.GATEWAY_BREAKER_OPENED.labels(model=name).inc()
        return Call(name, stage, exc.kind, exc.status, elapsed_ms(start))
    ms, media = elapsed_ms(start), resp.headers.get("content-type", "application/json")
    if resp.status_code >= 400:
        breaker.probing = False  # a 4xx says nothing about the upstream's health
        _count(name, "client_error")
        return Call(name, stage, "client_error", resp.status_code, ms, content=resp.content, media=media)
    breaker.success()
    try:
        data = json.loads(resp.content)
    except ValueError:
        data = None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(choices, list) or not choices:
        _count(name, "bad_body")
        return Call(name, stage, "bad_body", resp.status_code, ms)
    _count(name, "ok")
    msg = (choices[0] or {}).get("message") if isinstance(choices[0], dict) else None
    text = message_text(msg.get("content")) if isinstance(msg, dict) else ""
    p, c, _ = usage_tokens(data.get("usage"), body.get("messages"), text)
    cost = cost_usd(up, p, c)
    metrics.GATEWAY_COST.labels(model=name).inc(cost)
    return Call(name, stage, "ok", resp.status_code, ms, cost, p, c, text, data)


def reader_of(gw: Gateway, pid: str) -> AnswerReader:
    reader: AnswerReader = gw.config.routers.get(pid, DEFAULT_READER)
    return reader


def _scrub(content: bytes, secrets: list[str]) -> bytes:
    for s in secrets:
        content = content.replace(s.encode(), b"***")
    return content


async def run_cascade(
    gw: Gateway, state: Any, body: dict[str, Any], decision: Any, pending: Any, query: str, start: float
) -> Response:
    """Run the cascade whose first stage ``decision`` chose (``pending``: its log write, not yet sent)."""
    store, cache, settings = state.store, state.cache, state.settings
    pid, did = decision.policy, decision.decision_id
    rt = await cache.get(pid)
    reader = reader_of(gw, pid)
    if reader.kind == "text" and rt.featurizer is None:
        raise Invalid(f"router {pid!r} compares text answers on its featurizer, and policy {pid!r} has none")
    rec = CascadeRecord.from_json(pending.fields["cascade"])
    x = decode_x(pending.fields["x"])
    logging = asyncio.ensure_future(pending.write(store, settings.decision_ttl_seconds))
    plain = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    calls: list[Call] = []
    stage_ms: list[float] = []
    try:
        step = rec.last
        while step.action == "call":
            t0 = time.perf_counter()
            got = await asyncio.gather(*(call_one(gw, m, plain, step.stage) for m in step.models))
            stage_ms.append(elapsed_ms(t0))
            calls += got
            rec.calls += [c.as_dict() for c in got]
            if any(c.outcome == "client_error" for c in got):
                break
            step = advance(rt.policy, x, rec, {c.model: c.text for c in got}, {c.model: c.cost_usd for c in got},
                           reader, rt.featurizer)  # fmt: skip
    except BaseException:
        if not logging.done():
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await logging
        raise
    await logging  # its failure (Redis away) fails the request as a route's would
    return await _finish(gw, store, settings, body, rec, calls, stage_ms, pid, did, query, start)


async def _finish(
    gw: Gateway, store: Any, settings: Any, body: dict[str, Any], rec: CascadeRecord, calls: list[Call],
    stage_ms: list[float], pid: str, did: str, query: str, start: float,
) -> Response:  # fmt: skip
    """Write the record on the decision, then answer (the chosen response, an upstream 4xx, or 502/504)."""
    rejected = next((c for c in calls if c.outcome == "client_error"), None)
    by_model = {c.model: c for c in calls if c.data is not None}
    chosen = rec.last.answer_model if rec.last.action == "stop" else None
    served = chosen if chosen in by_model else next(iter(by_model), None)
    if rejected is not None:
        served = None
    latency = elapsed_ms(start)
    fields = rec.fields("aborted" if rejected is not None else None)
    fields.update(
        gw_attempts=json.dumps(rec.calls, separators=(",", ":")),
        gw_model=served or "",
        gw_status=str(rejected.status if rejected else 200 if served else _fail_status(calls)),
        gw_cost_usd=repr(rec.total_cost),
        gw_prompt_tokens=str(sum(c.prompt_tokens for c in calls)),
        gw_completion_tokens=str(sum(c.completion_tokens for c in calls)),
        gw_latency_ms=repr(round(latency, 3)),
        gw_ttft_ms=repr(round(latency, 3)),
        cascade_stage_ms=json.dumps([round(s, 3) for s in stage_ms]),
    )
    await write_step(store, pid, did, None, fields)
    headers = {
        "x-banditroute-decision-id": did,
        "x-banditroute-policy": pid,
        "x-banditroute-model": served or "",
        "x-banditroute-models-called": ",".join(c.model for c in calls),
        "x-banditroute-stages": str(len(stage_ms)),
        "x-banditroute-cost-usd": repr(rec.total_cost),
    }
    if rejected is not None:
        content = _scrub(rejected.content, gw.config.secrets())
        return Response(content, rejected.status or 400, headers=headers, media_type=rejected.media)
    if served is None:
        status = _fail_status(calls)
        await _feed_failure(gw, store, settings, pid, did, latency)
        tried = ", ".join(f"{c.model}: {c.outcome}" for c in calls)
        kind = "upstream_timeout" if status == 504 else "upstream_error"
        error = {"message": f"no model of the cascade answered ({tried})", "type": kind, "param": None}
        return JSONResponse({"error": {**error, "code": str(status)}}, status, headers=headers)
    call = by_model[served]
    data = {**(call.data or {}), "model": served}
    if gw.judge is not None:
        gw.judge.offer(Job(pid, did, query, call.text, rec.total_cost, latency))
    if body.get("stream"):
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        events = completion_events(data, include)

        async def stream() -> Any:
            for e in events:
                yield e

        return StreamingResponse(stream(), 200, headers=headers, media_type="text/event-stream")
    content = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, 200, headers=headers, media_type="application/json")


def _fail_status(calls: list[Call]) -> int:
    called = [c for c in calls if c.outcome != "breaker"]
    return 504 if called and called[-1].outcome == "timeout" else 502


async def _feed_failure(gw: Gateway, store: Any, settings: Any, pid: str, did: str, latency: float) -> None:
    """No call answered: the failure reward trains the cascade; later user/evaluator feedback is refused (it would
    score an answer that was never given)."""
    ttl = int(settings.decision_ttl_seconds)
    async with store.r.pipeline(transaction=False) as pipe:
        for source in ("user", "evaluator"):
            pipe.set(k_mark(pid, did, source), "gateway", nx=True, ex=ttl)
        await pipe.execute()
    weight = settings.source_weights.get("gateway", 1.0)
    code, _ = await store.submit_feedback(pid, did, "gateway", gw.config.failure_reward, None, weight, ttl, latency)
    metrics.FEEDBACK.labels(source="gateway", outcome="accepted" if code == 1 else "refused").inc()


__all__ = ["Call", "call_one", "reader_of", "run_cascade"]
