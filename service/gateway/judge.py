"""Evaluator feedback without the caller: a bounded queue of sampled (query, answer) pairs, sent to the judge
model, whose score is posted as ``evaluator`` feedback on the decision through the feedback path (the store's
exactly-once script). A judge failure or a full queue never touches the served request; both are counted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from banditroute.service import metrics
from banditroute.service.gateway.config import Evaluator
from banditroute.service.gateway.upstream import UpstreamFailure, send

log = logging.getLogger("banditroute.gateway.judge")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
WORKERS = 2


@dataclass
class Job:
    pid: str
    did: str
    query: str
    answer: str
    cost_usd: float
    latency_ms: float


def parse_score(text: str) -> float:
    """The judge's first number on its 0-10 scale, as a score in [0, 1]."""
    m = _NUMBER.search(text)
    if m is None:
        raise ValueError(f"no number in the judge's answer {text[:80]!r}")
    return float(min(max(float(m.group()) / 10.0, 0.0), 1.0))


class Judge:
    def __init__(self, gw: Any, evaluator: Evaluator, store: Any, settings: Any) -> None:
        self.gw, self.evaluator, self.store, self.settings = gw, evaluator, store, settings
        self.queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=evaluator.queue_size)
        self._rng = np.random.default_rng()
        self._workers: list[asyncio.Task[None]] = []

    def offer(self, job: Job) -> bool:
        """Queue ``job`` if sampled and there is room (never blocks the caller)."""
        if self._rng.random() >= self.evaluator.sample_rate:
            return False
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            metrics.JUDGE.labels(outcome="dropped").inc()
            return False
        metrics.JUDGE.labels(outcome="queued").inc()
        return True

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._run(), name=f"banditroute-judge-{i}") for i in range(WORKERS)]

    async def stop(self) -> None:
        for t in self._workers:
            t.cancel()
        for t in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _run(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self.judge(job)
                metrics.JUDGE.labels(outcome="posted").inc()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a judge failure is counted and logged, never raised
                metrics.JUDGE.labels(outcome="failed").inc()
                log.warning("judge failed", extra={"decision_id": job.did, "error": f"{type(exc).__name__}: {exc}"})
            finally:
                self.queue.task_done()

    async def judge(self, job: Job) -> None:
        up = self.gw.config.models[self.evaluator.judge]
        body = {
            "messages": [
                {"role": "system", "content": self.evaluator.rubric},
                {"role": "user", "content": f"Question:\n{job.query}\n\nAnswer:\n{job.answer}"},
            ],
            "temperature": 0,
        }
        resp = await asyncio.wait_for(send(self.gw.client, up, body, stream=False), self.evaluator.timeout_s)
        if resp.status_code >= 400:
            raise UpstreamFailure("status", f"judge answered {resp.status_code}", resp.status_code)
        content = resp.json()["choices"][0]["message"]["content"]
        score = parse_score(str(content))
        weight = self.settings.source_weights.get("evaluator", 1.0)
        code, _ = await self.store.submit_feedback(
            job.pid,
            job.did,
            "evaluator",
            score,
            job.cost_usd,
            weight,
            self.settings.decision_ttl_seconds,
            job.latency_ms,
        )
        if code != 1:
            metrics.JUDGE.labels(outcome="refused").inc()
