"""Decisions and feedback in Redis: the decision log, exactly-once acceptance (``FEEDBACK_SCRIPT``), and the
learner's writes: progress, dead letters, snapshots (see :mod:`service.keys` for the protocol)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from banditroute.service.eventlog import LiveState
from banditroute.service.keys import (
    LOG_DECISION_SCRIPT,
    k_counters,
    k_dead,
    k_decision,
    k_decision_log,
    k_expstats,
    k_feedback,
    k_lock,
    k_mark,
    k_meta,
    k_progress,
    k_state,
)
from banditroute.service.store_policies import PolicyStore


def _log_args(
    pid: str, did: str, fields: dict[str, Any], ttl: int, experiment: str | None, arm: str | None
) -> tuple[list[str], list[Any]]:
    """``LOG_DECISION_SCRIPT``'s keys and arguments for one decision."""
    text: list[str] = []
    binary: list[Any] = []  # bytes values (the context x) cannot go through JSON: their own arguments
    for k, v in fields.items():
        if isinstance(v, bytes | bytearray | memoryview):
            binary += [k, v]
        else:
            text += [k, str(v)]
    keys = [k_decision(pid, did), k_decision_log(pid), k_expstats(pid)]
    stats = f"{experiment}|{arm}|decisions" if experiment else ""
    # the text fields as one JSON array (decoded in the script): one argument to pack, not two per field
    blob = json.dumps(text, ensure_ascii=False, separators=(",", ":"))
    return keys, [int(ttl), did, f"{int((time.time() - ttl) * 1000)}-0", stats, blob, *binary]


class FeedbackStore(PolicyStore):
    """Logging decisions, accepting feedback once, and applying it in order."""

    # ---- decisions -----------------------------------------------------------------------------------------
    async def log_decision(
        self, pid: str, did: str, fields: dict[str, Any], ttl: int, experiment: str | None, arm: str | None
    ) -> None:
        """Store the decision (with its TTL), append its id to the decision log, count it for its experiment arm:
        one atomic script, one round trip."""
        keys, args = _log_args(pid, did, fields, ttl, experiment, arm)
        await self._log_decision(keys=keys, args=args)

    async def log_decisions(
        self, batch: list[tuple[str, str, dict[str, Any], int, str | None, str | None]]
    ) -> list[Any]:
        """:meth:`log_decision` for many decisions (``(pid, did, fields, ttl, experiment, arm)`` each) in one round
        trip: one pipeline of the same script, each decision atomic on its own. Returns per decision None
        (written) or the exception its script raised. On Redis Cluster (decisions of several slots) they are
        written one by one, concurrently."""
        if len(batch) == 1 or not isinstance(self.r, aioredis.Redis):
            got = await asyncio.gather(*(self.log_decision(*b) for b in batch), return_exceptions=True)
            return [g if isinstance(g, Exception) else None for g in got]
        sha = self._log_decision.sha
        for attempt in range(2):
            async with self.r.pipeline(transaction=False) as pipe:
                for b in batch:
                    keys, args = _log_args(*b)
                    # evalsha, not the script object: a pipeline holding script objects first asks SCRIPT EXISTS
                    pipe.evalsha(sha, len(keys), *keys, *args)
                res = await pipe.execute(raise_on_error=False)
            if attempt == 0 and any(isinstance(r, NoScriptError) for r in res):
                sha = self._log_decision.sha = await self.r.script_load(LOG_DECISION_SCRIPT)  # a flushed Redis
                continue
            break
        return [r if isinstance(r, Exception) else None for r in res]

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
        """(1, "stream-id model") accepted; (-1, None) unknown or expired decision; (-2, None) duplicate; (-3, "decision
        gen/current gen") a decision of a replaced generation; (-4, None) the policy was deleted."""
        res = await self._feedback(
            keys=[
                k_decision(pid, did),
                k_mark(pid, did, source),
                k_feedback(pid),
                k_counters(pid),
                k_expstats(pid),
                k_meta(pid),
            ],
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
        if code == -3:
            return code, f"{res[1].decode()}/{res[2].decode()}"
        if code == 1:
            return code, f"{res[1].decode()} {res[2].decode()}"
        return code, None

    async def applied_id(self, pid: str) -> str:
        """The learner's position in the log (its published progress, else the snapshot's)."""
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.hget(k_progress(pid), "pos")
            pipe.hget(k_state(pid), "pos")
            prog, snap = await pipe.execute()
        v = prog or snap
        return v.decode() if v else "0-0"

    async def progress(self, pid: str) -> dict[str, str]:
        raw = await self.r.hgetall(k_progress(pid))
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def snapshot_info(self, pid: str) -> dict[str, str]:
        vals = await self.r.hmget(k_state(pid), ["pos", "at", "version"])
        return {n: v.decode() for n, v in zip(("pos", "at", "version"), vals, strict=True) if v is not None}

    async def log_length(self, pid: str) -> int:
        return int(await self.r.xlen(k_feedback(pid)))

    # ---- the learner's writes ------------------------------------------------------------------------------
    async def hold_lease(self, pid: str, token: str, lease_ms: int) -> bool:
        """Take the policy's learner lease, or renew it if ``token`` holds it."""
        return bool(await self._lease(keys=[k_lock(pid)], args=[token, int(lease_ms)]))

    async def release_lease(self, pid: str, token: str) -> None:
        await self._release(keys=[k_lock(pid)], args=[token])

    async def write_progress(self, live: LiveState, token: str, dead_cap: int = 10_000) -> bool:
        """Publish the learner's position and counts, and append its new dead letters (forward only)."""
        flat: list[Any] = []
        for d in live.dead_letters:
            flat += [d.entry_id, d.did, d.model, d.source, d.score, d.cost, d.error]
        ok = await self._progress(
            keys=[k_lock(live.pid), k_progress(live.pid), k_dead(live.pid), k_meta(live.pid)],
            args=[
                token,
                live.gen,
                live.pos,
                live.version,
                live.applied,
                live.skipped,
                live.dead,
                int(time.time() * 1000),
                int(dead_cap),
                *flat,
            ],
        )
        live.dead_letters.clear()
        return bool(ok)

    async def write_snapshot(self, live: LiveState, token: str, trim_below: str | None) -> bool:
        """Write ``live`` as the snapshot with its position, atomically; trim the log below ``trim_below``."""
        flat: list[Any] = []
        for k, v in live.snapshot_fields().items():
            flat += [k, v]
        ok = await self._snapshot(
            keys=[k_lock(live.pid), k_state(live.pid), k_meta(live.pid), k_feedback(live.pid)],
            args=[token, live.gen, live.pos, trim_below or "", *flat],
        )
        return bool(ok)

    async def dead_letters(self, pid: str, count: int = 100) -> list[dict[str, str]]:
        entries = await self.r.xrevrange(k_dead(pid), count=count)
        return [{"id": i.decode(), **{k.decode(): v.decode() for k, v in f.items()}} for i, f in entries]
