"""Settling a forwarded call, off the request's latency path: the call's outcome is written on its decision
(attempts, model served, cost, tokens, latency, time to first token), a failed first choice is fed back as the
failure reward (source ``gateway``), and a sampled answer goes to the judge.

The logged bandit action stays the first choice with its logged propensity. When it failed, its reward *is* the
failure: the gateway feeds it back and closes the decision to later ``user``/``evaluator`` feedback (those would
score the fallback's answer, not the logged action's), so the feedback endpoint answers 409 for it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from banditroute.service import metrics
from banditroute.service.gateway.judge import Job
from banditroute.service.gateway.runtime import Gateway
from banditroute.service.gateway.upstream import Attempt
from banditroute.service.keys import k_decision, k_mark

log = logging.getLogger("banditroute.gateway")

# KEYS[1] decision, KEYS[2..] idempotency marks to close; ARGV[1] mark TTL (s), ARGV[2..] field/value pairs.
# Writes only onto a decision that still exists (a write on an expired one would resurrect it without a TTL).
SETTLE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
for i = 2, #KEYS do redis.call('SET', KEYS[i], 'gateway', 'NX', 'EX', tonumber(ARGV[1])) end
return 1
"""


@dataclass
class Outcome:
    pid: str
    did: str
    first: str
    served: str | None
    attempts: list[Attempt]
    query: str
    answer: str = ""
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_counted_locally: bool = False
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def first_failed(self) -> bool:
        return bool(self.attempts) and self.attempts[0].outcome not in ("ok", "client_error")

    def fields(self) -> dict[str, str]:
        return {
            "gw_attempts": json.dumps([a.as_dict() for a in self.attempts]),
            "gw_model": self.served or "",
            "gw_status": "" if self.status is None else str(self.status),
            "gw_cost_usd": repr(float(self.cost_usd)),
            "gw_prompt_tokens": str(self.prompt_tokens),
            "gw_completion_tokens": str(self.completion_tokens),
            "gw_tokens_local": "1" if self.tokens_counted_locally else "0",
            "gw_latency_ms": repr(round(self.latency_ms, 3)),
            "gw_ttft_ms": "" if self.ttft_ms is None else repr(round(self.ttft_ms, 3)),
        }


async def settle(gw: Gateway, store: Any, settings: Any, out: Outcome) -> None:
    """Record ``out`` on its decision, feed a failed first choice back, offer a clean answer to the judge."""
    if out.served:
        metrics.GATEWAY_COST.labels(model=out.served).inc(out.cost_usd)
    if not out.did:
        return  # a pass-through call: metered and logged, no decision
    flat: list[Any] = []
    for k, v in out.fields().items():
        flat += [k, v]
    marks = [k_mark(out.pid, out.did, s) for s in ("user", "evaluator")] if out.first_failed else []
    if gw.settle_script is None:  # registered once per worker
        gw.settle_script = store.r.register_script(SETTLE_SCRIPT)
    script = gw.settle_script
    await script(keys=[k_decision(out.pid, out.did), *marks], args=[int(settings.decision_ttl_seconds), *flat])
    if out.first_failed:
        weight = settings.source_weights.get("gateway", 1.0)
        code, _ = await store.submit_feedback(
            out.pid,
            out.did,
            "gateway",
            gw.config.failure_reward,
            0.0,
            weight,
            settings.decision_ttl_seconds,
            out.latency_ms,
        )
        metrics.FEEDBACK.labels(source="gateway", outcome="accepted" if code == 1 else "refused").inc()
    elif out.served == out.first and out.status is not None and out.status < 400 and gw.judge is not None:
        gw.judge.offer(Job(out.pid, out.did, out.query, out.answer, out.cost_usd, out.latency_ms))
