"""Decisions and feedback in Redis: the decision log, exactly-once acceptance (``FEEDBACK_SCRIPT``) and the
learner's ``drain`` (see :mod:`service.keys` for the protocol)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from redis.exceptions import WatchError

from banditroute.service.codec import encode_state
from banditroute.service.keys import (
    k_counters,
    k_decision,
    k_decision_log,
    k_expstats,
    k_feedback,
    k_lock,
    k_mark,
    k_state,
    k_version,
)
from banditroute.service.store_policies import PolicyStore


class FeedbackStore(PolicyStore):
    """Logging decisions, accepting feedback once, and applying it in order."""

    # ---- decisions -----------------------------------------------------------------------------------------
    async def log_decision(
        self, pid: str, did: str, fields: dict[str, Any], ttl: int, experiment: str | None, arm: str | None
    ) -> None:
        """Store the decision (with its TTL), append its id to the decision log, count it for its experiment arm:
        one atomic script, one round trip."""
        flat: list[Any] = []
        for k, v in fields.items():
            flat += [k, v]
        await self._log_decision(
            keys=[k_decision(pid, did), k_decision_log(pid), k_expstats(pid)],
            args=[
                int(ttl),
                did,
                f"{int((time.time() - ttl) * 1000)}-0",
                f"{experiment}|{arm}|decisions" if experiment else "",
                *flat,
            ],
        )

    async def decision(self, pid: str, did: str) -> dict[str, bytes] | None:
        raw = await self.r.hgetall(k_decision(pid, did))
        return {k.decode(): v for k, v in raw.items()} or None

    async def decision_log(self, pid: str, count: int = 10_000) -> list[tuple[bytes, dict[bytes, bytes]]]:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await self.r.xrange(k_decision_log(pid), count=count)
        return entries

    # ---- feedback ------------------------------------------------------------------------------------------
    async def submit_feedback(
        self,
        pid: str,
        did: str,
        source: str,
        score: float,
        cost: float | None,
        weight: float,
        mark_ttl: int,
        latency_ms: float | None,
    ) -> tuple[int, str | None]:
        """(1, stream id) accepted; (-1, None) unknown or expired decision; (-2, None) duplicate."""
        res = await self._feedback(
            keys=[k_decision(pid, did), k_mark(pid, did, source), k_feedback(pid), k_counters(pid), k_expstats(pid)],
            args=[
                source,
                repr(float(score)),
                "" if cost is None else repr(float(cost)),
                repr(float(weight)),
                int(mark_ttl),
                "" if latency_ms is None else repr(float(latency_ms)),
            ],
        )
        code = int(res[0])
        return code, (res[1].decode() if code == 1 else None)

    async def applied_id(self, pid: str) -> str:
        v = await self.r.hget(k_state(pid), "last_id")
        return v.decode() if v else "0-0"

    async def drain(self, pid: str, batch: int, apply: Any, lease_ms: int = 10_000) -> int:
        """Apply up to ``batch`` pending feedback events of ``pid`` in order, exactly once.

        ``apply(stored, entries) -> (new_state, pacer_lam, n_applied, n_skipped)`` does the math. Returns how many
        events were consumed (0 when none were pending, another learner holds the lease, or a writer raced us).
        """
        token = uuid.uuid4().hex
        if not await self.r.set(k_lock(pid), token, nx=True, px=lease_ms):
            return 0
        try:
            async with self.r.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(k_state(pid))
                    last = await pipe.hget(k_state(pid), "last_id")
                    start = "(" + (last.decode() if last else "0-0")
                    entries = await pipe.xrange(k_feedback(pid), min=start, count=batch)
                    if not entries:
                        await pipe.unwatch()
                        return 0
                    stored = await self.load_policy(pid)
                    if stored is None:
                        await pipe.unwatch()
                        return 0
                    new_state, pacer_lam, n_applied, n_skipped = apply(stored, entries)
                    last_id = entries[-1][0]
                    pipe.multi()
                    pipe.hset(
                        k_state(pid),
                        mapping={**encode_state(new_state), "last_id": last_id, "pacer_lam": repr(float(pacer_lam))},
                    )
                    pipe.incr(k_version(pid))
                    pipe.hincrby(k_counters(pid), "applied", n_applied)
                    pipe.hincrby(k_counters(pid), "skipped", n_skipped)
                    # applied events are in the state now; keep the stream short (the last one stays)
                    pipe.xtrim(k_feedback(pid), minid=last_id)
                    await pipe.execute()
                    return len(entries)
                except WatchError:
                    return 0
        finally:
            await self._release(keys=[k_lock(pid)], args=[token])
