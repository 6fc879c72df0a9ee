"""Policy state in Redis: create, read at one version, mutate under WATCH; the base of :class:`store.Store`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from banditroute.service.codec import decode_featurizer, decode_state, encode_featurizer, encode_state
from banditroute.service.keys import (
    FEEDBACK_SCRIPT,
    LOG_DECISION_SCRIPT,
    POLICIES,
    RELEASE_SCRIPT,
    k_counters,
    k_featurizer,
    k_feedback,
    k_meta,
    k_state,
    k_version,
)


@dataclass(frozen=True)
class StoredPolicy:
    """What a worker needs to decide with a policy, read at one version."""

    pid: str
    version: int
    meta: dict[str, str]
    state: dict[str, Any]
    pacer_lam: float


class PolicyStore:
    """Policies' meta, state, featurizer and counters (asyncio client)."""

    def __init__(self, client: aioredis.Redis) -> None:
        # Typed Any: the client runs with decode_responses=False, so replies are bytes, which redis-py's
        # bytes|str unions cannot express.
        self.r: Any = client
        self._feedback = client.register_script(FEEDBACK_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._log_decision = client.register_script(LOG_DECISION_SCRIPT)

    async def ping(self) -> bool:
        return bool(await self.r.ping())

    # ---- policies ------------------------------------------------------------------------------------------
    async def policy_ids(self) -> list[str]:
        return sorted(m.decode() for m in await self.r.smembers(POLICIES))

    async def exists(self, pid: str) -> bool:
        return bool(await self.r.exists(k_meta(pid)))

    async def create_policy(
        self,
        pid: str,
        meta: dict[str, str],
        state: dict[str, Any],
        featurizer: tuple[dict[str, Any], dict[str, np.ndarray]] | None,
        replace: bool = False,
    ) -> bool:
        """Write a new policy (all keys in one MULTI); False if ``pid`` exists and not ``replace``."""
        fields: dict[str, Any] = {**encode_state(state), "last_id": b"0-0", "pacer_lam": b"0"}
        async with self.r.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(k_meta(pid))
                # HLEN, not EXISTS: redis-py's cluster pipeline does not run EXISTS (a multi-slot command)
                # immediately under WATCH
                if await pipe.hlen(k_meta(pid)) and not replace:
                    await pipe.unwatch()
                    return False
                pipe.multi()
                if replace:
                    pipe.delete(k_meta(pid), k_state(pid), k_featurizer(pid), k_feedback(pid), k_counters(pid))
                pipe.hset(k_meta(pid), mapping={**meta, "created_at": str(time.time())})
                pipe.hset(k_state(pid), mapping=fields)
                if featurizer is not None:
                    pipe.hset(k_featurizer(pid), mapping=encode_featurizer(*featurizer))
                pipe.incr(k_version(pid))
                pipe.hset(k_counters(pid), mapping={"accepted": 0, "applied": 0, "skipped": 0})
                await pipe.execute()
            except WatchError:
                return False
        await self.r.sadd(POLICIES, pid)
        return True

    async def version(self, pid: str) -> int | None:
        v = await self.r.get(k_version(pid))
        return int(v) if v is not None else None

    async def load_policy(self, pid: str) -> StoredPolicy | None:
        """Meta, state and version read together (one MULTI, so they agree)."""
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hgetall(k_meta(pid))
            pipe.hgetall(k_state(pid))
            pipe.get(k_version(pid))
            meta, fields, version = await pipe.execute()
        if not meta or not fields:
            return None
        return StoredPolicy(
            pid=pid,
            version=int(version or 0),
            meta={k.decode(): v.decode() for k, v in meta.items()},
            state=decode_state(fields),
            pacer_lam=float(fields.get(b"pacer_lam", b"0")),
        )

    async def load_featurizer(self, pid: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        fields = await self.r.hgetall(k_featurizer(pid))
        return decode_featurizer(fields) if fields else None

    async def counters(self, pid: str) -> dict[str, int]:
        raw = await self.r.hgetall(k_counters(pid))
        return {k.decode(): int(v) for k, v in raw.items()}

    async def pending(self, pid: str) -> int:
        c = await self.counters(pid)
        return c.get("accepted", 0) - c.get("applied", 0) - c.get("skipped", 0)

    async def mutate_state(self, pid: str, mutate: Any, retries: int = 50) -> StoredPolicy:
        """Read the state under WATCH, ``mutate(stored) -> new state dict`` (may raise), write it, bump the
        version; retried when the learner or another admin call wrote in between."""
        for _ in range(retries):
            async with self.r.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(k_state(pid))
                    stored = await self.load_policy(pid)
                    if stored is None:
                        await pipe.unwatch()
                        raise KeyError(pid)
                    new_state = mutate(stored)
                    pipe.multi()
                    pipe.hset(k_state(pid), mapping=encode_state(new_state))
                    pipe.incr(k_version(pid))
                    await pipe.execute()
                    return stored
                except WatchError:
                    continue
        raise TimeoutError(f"policy {pid!r} state kept changing; try again")
