"""The attempt loop: the first choice, then fallbacks drawn from the policy's distribution over the remaining
configured candidates, skipping upstreams whose breaker is open, at most ``max_attempts`` calls."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import numpy as np

from banditroute.service import metrics
from banditroute.service.gateway.runtime import Gateway
from banditroute.service.gateway.upstream import Attempt, UpstreamFailure, UpstreamResponse, elapsed_ms, send


class AllAttemptsFailed(Exception):
    def __init__(self, attempts: list[Attempt]) -> None:
        super().__init__("every attempt failed")
        self.attempts = attempts

    @property
    def timed_out(self) -> bool:
        called = [a for a in self.attempts if a.outcome != "breaker"]
        return bool(called) and called[-1].outcome == "timeout"


def fallback_order(first: str, pmf: dict[str, float], configured: Collection[str], seed: int) -> list[str]:
    """``first``, then the other configured models of the distribution in an order drawn from it (renormalised
    over the remaining ones, sampling without replacement); models with probability 0 come last, in pmf order."""
    rest = [m for m in pmf if m != first and m in configured]
    weighted = [m for m in rest if pmf[m] > 0]
    zero = [m for m in rest if pmf[m] <= 0]
    order = [first]
    if weighted:
        rng = np.random.default_rng(seed)
        p = np.array([pmf[m] for m in weighted], dtype=np.float64)
        picks = rng.choice(len(weighted), size=len(weighted), replace=False, p=p / p.sum())
        order += [weighted[int(i)] for i in picks]
    return order + zero


class AttemptOrder:
    """The first choice, then :func:`fallback_order`'s draw, made only if a fallback is needed (the draw costs a
    generator per request, and most requests never fall back)."""

    def __init__(self, first: str, pmf: dict[str, float], configured: Collection[str], seed: int) -> None:
        self.first, self.pmf, self.configured, self.seed = first, pmf, configured, seed
        self._n = 1 + sum(1 for m in pmf if m != first and m in configured)

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[str]:
        yield self.first
        yield from fallback_order(self.first, self.pmf, self.configured, self.seed)[1:]


async def attempt_all(
    gw: Gateway, order: AttemptOrder | Sequence[str], body: dict[str, Any], stream: bool
) -> tuple[str, UpstreamResponse, list[Attempt], float]:
    """Try the models in ``order``; returns ``(model, open response, attempts, start of the served attempt)`` on
    the first 2xx or 4xx; raises :class:`AllAttemptsFailed` when every attempt failed or was skipped."""
    attempts: list[Attempt] = []
    calls = 0
    for i, name in enumerate(order):
        if calls >= gw.config.max_attempts:
            break
        up = gw.config.models[name]
        breaker = gw.breakers[name]
        # the last model left is called even if its breaker is open: a probe is better than a sure 502
        if not breaker.allow() and i < len(order) - 1:
            attempts.append(Attempt(name, "breaker"))
            metrics.GATEWAY_ATTEMPTS.labels(model=name, outcome="breaker").inc()
            continue
        calls += 1
        start = time.perf_counter()
        try:
            resp = await send(gw.client, up, body, stream)
        except UpstreamFailure as exc:
            attempts.append(Attempt(name, exc.kind, exc.status, elapsed_ms(start)))
            metrics.GATEWAY_ATTEMPTS.labels(model=name, outcome=exc.kind).inc()
            if breaker.failure():
                metrics.GATEWAY_BREAKER_OPENED.labels(model=name).inc()
            continue
        outcome = "ok" if resp.status_code < 400 else "client_error"
        # a 4xx says nothing about the upstream's health; it neither counts as a failure nor closes the breaker
        if outcome == "ok":
            breaker.success()
        elif breaker.probing:
            breaker.probing = False
        attempts.append(Attempt(name, outcome, resp.status_code, elapsed_ms(start)))
        metrics.GATEWAY_ATTEMPTS.labels(model=name, outcome=outcome).inc()
        return name, resp, attempts, start
    raise AllAttemptsFailed(attempts)
