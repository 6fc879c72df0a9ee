"""Decisions of concurrent requests made together: one featurizer call and one ``pmf_batch`` per policy per turn of
the event loop, instead of one of each per request.

Under load, requests to one policy arrive faster than a worker decides them one by one; most of the cost of a
decision is the fixed cost of a featurizer call and of a policy call (a 3-model LinUCB: a 16-prompt batch costs
about 2.5x one prompt, not 16x). :class:`Decider` queues the requests that reach it in one turn of the loop and
decides them at the next: at low load a batch is one request and nothing waits (the flush is ``call_soon``, not
a timer); under load a batch is whatever queued meanwhile.

Each decision is what :meth:`Policy.select` would make: the distribution is the policy's ``pmf_batch`` row for the
request's context, candidates and lambda (requests are grouped by those two), and the choice is drawn from it
with ``select``'s own rule (the inverse CDF at a uniform ``u``). ``u`` is taken from the decision id's random bits
(:func:`new_decision_id`), so a logged decision's choice is reproducible from its id and its logged pmf. Policies
that sample inside their pmf (Thompson sampling) draw from a generator seeded by the batch's first id.

No I/O here: the caller logs each decision (:mod:`service.routes.route`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from banditroute.bandit import Decision, Policy
from banditroute.bandit.pmf import draw

#: hex digits of the id's random part that make the uniform (52 bits: exact in a float64)
_U_DIGITS = 13


def new_decision_id(pid: str) -> str:
    """``"<pid>.<32 hex digits>"``: 128 random bits (the first 52 are the choice's uniform; the last 64 seed the
    gateway's fallback order)."""
    return f"{pid}.{os.urandom(16).hex()}"


def uniform_of(did: str) -> float:
    """The uniform in [0, 1) a decision id carries."""
    return int(did[-32 : -32 + _U_DIGITS], 16) / float(16**_U_DIGITS)


@dataclass
class Ask:
    """One request's decision: its input, and the future its answer is set on."""

    did: str
    query: str | None
    x: np.ndarray | None
    candidates: tuple[str, ...] | None
    lam: float
    future: asyncio.Future[Choice]


@dataclass
class Choice:
    """A decision with its context and the chosen model's point estimates."""

    x: np.ndarray
    decision: Decision
    quality_estimate: float
    cost_estimate: float
    version: int
    gen: str


@dataclass
class _Batch:
    rt: Any  # runtime.Runtime: the policy, its featurizer, version and generation at the flush
    asks: list[Ask] = field(default_factory=list)


class Decider:
    """Per-worker: queues decisions per held policy and makes each queue's decisions together (see the module)."""

    def __init__(self) -> None:
        self._batches: dict[int, _Batch] = {}
        self.sizes = [0, 0]  # batches flushed, decisions made: their ratio is the mean batch size

    async def choose(
        self, rt: Any, did: str, query: str | None, x: np.ndarray | None, candidates: Sequence[str] | None, lam: float
    ) -> Choice:
        """The decision ``did`` for ``query`` (featurized by ``rt``'s featurizer) or for the context ``x``."""
        loop = asyncio.get_running_loop()
        key = id(rt)
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch(rt)
            loop.call_soon(self._flush, key)
        ask = Ask(did, query, x, tuple(candidates) if candidates else None, float(lam), loop.create_future())
        batch.asks.append(ask)
        return await ask.future

    def _flush(self, key: int) -> None:
        batch = self._batches.pop(key)
        self.sizes[0] += 1
        self.sizes[1] += len(batch.asks)
        try:
            choices = decide_all(batch.rt, batch.asks)
        except Exception:  # noqa: BLE001 - one request's bad input must fail that request alone: decide one by one
            for ask in batch.asks:
                _settle(ask, lambda a=ask: decide_all(batch.rt, [a])[0])
            return
        for ask, choice in zip(batch.asks, choices, strict=True):
            if not ask.future.done():  # a cancelled request (client gone) has nobody waiting
                ask.future.set_result(choice)


def _settle(ask: Ask, compute: Any) -> None:
    try:
        result = compute()
    except Exception as exc:  # noqa: BLE001 - handed to the one request it belongs to
        if not ask.future.done():
            ask.future.set_exception(exc)
        return
    if not ask.future.done():
        ask.future.set_result(result)


def decide_all(rt: Any, asks: list[Ask]) -> list[Choice]:
    """The decisions of ``asks`` on ``rt``'s policy as it is now (no I/O, no await: the state cannot move)."""
    policy: Policy = rt.policy
    texts = [i for i, a in enumerate(asks) if a.x is None]
    xs: list[np.ndarray | None] = [a.x for a in asks]
    if texts:
        made = rt.featurizer.transform([asks[i].query or "" for i in texts])
        for row, i in enumerate(texts):
            xs[i] = made[row]
    X = np.stack([np.asarray(x, dtype=np.float64) for x in xs])
    q_est, c_est = policy.estimates(X)
    groups: dict[tuple[tuple[str, ...] | None, float], list[int]] = {}
    for i, a in enumerate(asks):
        groups.setdefault((a.candidates, a.lam), []).append(i)
    # Thompson sampling draws inside its pmf: reproducible from the batch's first id
    policy.rng = np.random.default_rng(int(asks[0].did[-16:], 16))
    out: list[Choice | None] = [None] * len(asks)
    version, gen = rt.version, rt.gen
    for (candidates, lam), rows in groups.items():
        P = policy.pmf_batch(X[rows], lam, list(candidates) if candidates else None)
        for r, i in enumerate(rows):
            p = P[r]
            j = draw(p, uniform_of(asks[i].did))
            d = Decision(policy.models[j], j, p, float(p[j]), policy.models, lam)
            out[i] = Choice(X[i], d, float(q_est[i, j]), float(c_est[i, j]), version, gen)
    return [c for c in out if c is not None]


__all__ = ["Choice", "Decider", "decide_all", "draw", "new_decision_id", "uniform_of"]
