"""Every Redis key and script of the service, in one place.

Keys of one policy share the hash tag ``{policy-id}``, so they sit in one slot of a Redis Cluster and every
multi-key script or transaction below touches one slot:

| key | type | what |
|---|---|---|
| ``br:policies`` | set | ids of all policies |
| ``br:{pid}:meta`` | hash | kind, registry name, dim, created_at, featurizer sha, budget pacing settings |
| ``br:{pid}:state`` | hash | ``meta`` (JSON state), ``arr:NAME`` (npy), ``last_id``, ``pacer_lam``, ``onnx`` |
| ``br:{pid}:version`` | string | bumped by every state write: workers compare it to their cached copy |
| ``br:{pid}:featurizer`` | hash | ``spec`` and ``arr:NAME`` of the fitted featurizer |
| ``br:{pid}:dec:{did}`` | hash | one decision (features, candidates, pmf, choice, propensity, time), with a TTL |
| ``br:{pid}:fb:{did}:{source}`` | string | "this (decision, source) was accepted": the idempotency mark |
| ``br:{pid}:feedback`` | stream | accepted feedback, applied in order by the learner |
| ``br:{pid}:decisions`` | stream | ids of logged decisions, for off-policy evaluation (trimmed by age) |
| ``br:{pid}:counters`` | hash | accepted / applied / skipped feedback counts |
| ``br:{pid}:expstats`` | hash | per experiment arm: decisions, feedback count, score and cost sums |
| ``br:{pid}:learner`` | string | learner lease (efficiency only; correctness comes from WATCH) |
| ``br:experiments`` | set | ids of all experiments |
| ``br:exp:{eid}`` | hash | experiment definition (JSON) and status |

Exactly-once feedback: ``FEEDBACK_SCRIPT`` checks the decision exists, sets the (decision, source) mark with NX
and appends the event to the policy's feedback stream, atomically. The learner (``drain``) reads the state and
the stream entries after ``last_id`` under WATCH of the state, applies them in order, and writes the new state
with the new ``last_id`` in one MULTI/EXEC: a crash before EXEC applies nothing, after it applies all, and two
learners cannot both commit the same entries.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from banditroute.service.codec import (
    decode_array,
    decode_featurizer,
    decode_state,
    encode_array,
    encode_featurizer,
    encode_state,
)

POLICIES = "br:policies"
EXPERIMENTS = "br:experiments"


def k_meta(pid: str) -> str:
    return f"br:{{{pid}}}:meta"


def k_state(pid: str) -> str:
    return f"br:{{{pid}}}:state"


def k_version(pid: str) -> str:
    return f"br:{{{pid}}}:version"


def k_featurizer(pid: str) -> str:
    return f"br:{{{pid}}}:featurizer"


def k_decision(pid: str, did: str) -> str:
    return f"br:{{{pid}}}:dec:{did}"


def k_mark(pid: str, did: str, source: str) -> str:
    return f"br:{{{pid}}}:fb:{did}:{source}"


def k_feedback(pid: str) -> str:
    return f"br:{{{pid}}}:feedback"


def k_decision_log(pid: str) -> str:
    return f"br:{{{pid}}}:decisions"


def k_counters(pid: str) -> str:
    return f"br:{{{pid}}}:counters"


def k_expstats(pid: str) -> str:
    return f"br:{{{pid}}}:expstats"


def k_lock(pid: str) -> str:
    return f"br:{{{pid}}}:learner"


def k_experiment(eid: str) -> str:
    return f"br:exp:{{{eid}}}"


# KEYS[1] decision, KEYS[2] mark, KEYS[3] feedback stream, KEYS[4] counters, KEYS[5] expstats
# ARGV[1] source, ARGV[2] score, ARGV[3] cost ('' = the decision's cost estimate), ARGV[4] weight,
# ARGV[5] mark ttl (s), ARGV[6] latency ms ('' = none)
# Returns {-1} unknown/expired decision, {-2} duplicate (decision, source), {1, stream id} accepted.
FEEDBACK_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[5])) then return {-2} end
local d = redis.call('HMGET', KEYS[1], 'x', 'model', 'cost_estimate', 'experiment', 'arm', 'did')
local cost = ARGV[3]
if cost == '' then cost = d[3] end
local id = redis.call('XADD', KEYS[3], '*', 'did', d[6], 'model', d[2], 'x', d[1], 'score', ARGV[2],
                      'cost', cost, 'weight', ARGV[4], 'source', ARGV[1])
redis.call('HINCRBY', KEYS[4], 'accepted', 1)
redis.call('HSET', KEYS[1], 'score:' .. ARGV[1], ARGV[2], 'cost_observed', cost)
if d[4] and d[4] ~= '' then
  local p = d[4] .. '|' .. d[5] .. '|'
  local s = tonumber(ARGV[2])
  local c = tonumber(cost)
  redis.call('HINCRBY', KEYS[5], p .. 'fb_n', 1)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'fb_sum', s)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'fb_sumsq', s * s)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'cost_sum', c)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'cost_sumsq', c * c)
end
return {1, id}
"""

# KEYS[1] decision, KEYS[2] decision log stream, KEYS[3] expstats
# ARGV[1] ttl (s), ARGV[2] decision id, ARGV[3] oldest stream id to keep, ARGV[4] expstats field ('' = none),
# ARGV[5..] the decision's field/value pairs. The log holds ids only: the decision hash has the rest.
LOG_DECISION_SCRIPT = """
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[3], '*', 'did', ARGV[2])
if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[4], 1) end
return 1
"""

# KEYS[1] lock; ARGV[1] token. Deletes the lock only if we still hold it.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class StoredPolicy:
    """What a worker needs to decide with a policy, read at one version."""

    pid: str
    version: int
    meta: dict[str, str]
    state: dict[str, Any]
    pacer_lam: float
    onnx: bytes | None


class Store:
    """The service's one gateway to Redis (asyncio client)."""

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
        onnx: bytes | None = None,
        replace: bool = False,
    ) -> bool:
        """Write a new policy (all keys in one MULTI); False if ``pid`` exists and not ``replace``."""
        fields: dict[str, Any] = {**encode_state(state), "last_id": b"0-0", "pacer_lam": b"0"}
        if onnx is not None:
            fields["onnx"] = onnx
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
            onnx=fields.get(b"onnx"),
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
        return await self.r.xrange(k_decision_log(pid), count=count)

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

    # ---- experiments ---------------------------------------------------------------------------------------
    async def create_experiment(self, eid: str, definition: dict[str, Any]) -> bool:
        ok = await self.r.hsetnx(k_experiment(eid), "definition", json.dumps(definition))
        if ok:
            await self.r.hset(k_experiment(eid), mapping={"status": "running", "created_at": str(time.time())})
            await self.r.sadd(EXPERIMENTS, eid)
        return bool(ok)

    async def experiment(self, eid: str) -> dict[str, Any] | None:
        raw = await self.r.hgetall(k_experiment(eid))
        if not raw or b"definition" not in raw:
            return None
        return {
            "definition": json.loads(raw[b"definition"]),
            "status": raw.get(b"status", b"running").decode(),
            "created_at": float(raw.get(b"created_at", b"0")),
            "stopped_at": float(raw.get(b"stopped_at", b"0")),
        }

    async def experiment_ids(self) -> list[str]:
        return sorted(m.decode() for m in await self.r.smembers(EXPERIMENTS))

    async def stop_experiment(self, eid: str) -> None:
        await self.r.hset(k_experiment(eid), mapping={"status": "stopped", "stopped_at": str(time.time())})

    async def arm_stats(self, pid: str, eid: str, arm: str) -> dict[str, float]:
        prefix = f"{eid}|{arm}|"
        names = ["decisions", "fb_n", "fb_sum", "fb_sumsq", "cost_sum", "cost_sumsq"]
        vals = await self.r.hmget(k_expstats(pid), [prefix + n for n in names])
        return {n: float(v) if v is not None else 0.0 for n, v in zip(names, vals, strict=True)}

    # ---- raw helpers used by operations endpoints ---------------------------------------------------------
    async def get_baseline(self) -> bytes | None:
        """One GET of a small key: the load benchmark's baseline endpoint."""
        return await self.r.get("br:baseline")


def encode_x(x: np.ndarray) -> bytes:
    return np.asarray(x, dtype="<f8").tobytes()


def decode_x(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f8")


__all__ = ["Store", "StoredPolicy", "decode_array", "decode_x", "encode_array", "encode_x"]
