"""Policies in Redis: create (a new generation), read the snapshot and the log after it, append admin changes,
delete; the base of :class:`store.Store`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from banditroute.service.codec import decode_featurizer, encode_featurizer, encode_state
from banditroute.service.eventlog import Entry, LiveState, apply_entry, id_key
from banditroute.service.keys import (
    APPEND_OP_SCRIPT,
    FEATURES_SCRIPT,
    FEEDBACK_SCRIPT,
    LEASE_SCRIPT,
    LOG_DECISION_SCRIPT,
    POLICIES,
    PROGRESS_SCRIPT,
    RELEASE_SCRIPT,
    SNAPSHOT_SCRIPT,
    k_counters,
    k_dead,
    k_decision,
    k_decision_log,
    k_expstats,
    k_featurizer,
    k_feedback,
    k_gen,
    k_lock,
    k_mark,
    k_meta,
    k_progress,
    k_state,
)

#: every source that may leave an idempotency mark on a decision (the gateway feeds failures back as "gateway")
MARK_SOURCES = ("user", "evaluator", "gateway")


@dataclass(frozen=True)
class StoredPolicy:
    """A policy materialised at one position of its log (snapshot + tail): its full state, for export."""

    pid: str
    version: int
    meta: dict[str, str]
    state: dict[str, Any]
    pacer_lam: float


@dataclass(frozen=True)
class Tail:
    """Log entries after a position, with the features of the decisions they score."""

    gen: str | None  # None: the policy does not exist
    trimmed: str  # entries before this id are gone
    entries: list[Entry]
    xs: list[bytes | None]


class PolicyStore:
    """Policies' meta, snapshot, log, featurizer and counters (asyncio client)."""

    def __init__(self, client: aioredis.Redis) -> None:
        # Typed Any: the client runs with decode_responses=False, so replies are bytes, which redis-py's
        # bytes|str unions cannot express.
        self.r: Any = client
        self._feedback = client.register_script(FEEDBACK_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._log_decision = client.register_script(LOG_DECISION_SCRIPT)
        self._append_op = client.register_script(APPEND_OP_SCRIPT)
        self._progress = client.register_script(PROGRESS_SCRIPT)
        self._snapshot = client.register_script(SNAPSHOT_SCRIPT)
        self._lease = client.register_script(LEASE_SCRIPT)
        self._features = client.register_script(FEATURES_SCRIPT)

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
        """Write a new policy as a new generation (all keys in one MULTI); False if ``pid`` exists and not
        ``replace``. Replacing drops the old generation's log, snapshot and progress: its decisions stay
        (for OPE) but feedback on them is refused."""
        gen = str(int(await self.r.incr(k_gen(pid))))
        async with self.r.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(k_meta(pid), k_state(pid))
                # HLEN, not EXISTS: redis-py's cluster pipeline does not run EXISTS (a multi-slot command)
                # immediately under WATCH
                if await pipe.hlen(k_meta(pid)) and not replace:
                    await pipe.unwatch()
                    return False
                old_version = await pipe.hget(k_state(pid), "version")
                version = int(old_version or 0) + 1
                pipe.multi()
                pipe.delete(
                    k_meta(pid), k_state(pid), k_featurizer(pid), k_feedback(pid), k_counters(pid), k_progress(pid)
                )
                pipe.hset(k_meta(pid), mapping={**meta, "created_at": str(time.time()), "gen": gen})
                pipe.hset(
                    k_state(pid),
                    mapping={
                        # the creation snapshot is the full state as given (an import exports unchanged);
                        # the learner's snapshots keep sufficient statistics only
                        **encode_state(state),
                        "pos": "0-0",
                        "version": str(version),
                        "applied": "0",
                        "skipped": "0",
                        "dead": "0",
                        "pacer_lam": "0",
                        "gen": gen,
                        "at": repr(time.time()),
                    },
                )
                if featurizer is not None:
                    pipe.hset(k_featurizer(pid), mapping=encode_featurizer(*featurizer))
                pipe.hset(k_counters(pid), mapping={"accepted": 0})
                await pipe.execute()
            except WatchError:
                return False
        await self.r.sadd(POLICIES, pid)
        return True

    async def delete_policy(self, pid: str, batch: int = 500) -> bool:
        """Delete a policy: its keys, then its logged decisions and their marks (found through the decision log,
        so every key touched is in the policy's slot). The generation counter stays, so a policy created again
        under this id never accepts feedback on the deleted one's decisions. False if there was none."""
        existed = bool(await self.r.delete(k_meta(pid)))
        await self.r.srem(POLICIES, pid)
        await self.r.delete(
            k_state(pid), k_featurizer(pid), k_feedback(pid), k_counters(pid), k_progress(pid), k_dead(pid)
        )
        await self.r.delete(k_expstats(pid), k_lock(pid))
        last = "-"
        while True:
            entries = await self.r.xrange(k_decision_log(pid), min=last, count=batch)
            if last != "-":
                entries = entries[1:]
            if not entries:
                break
            doomed = []
            for _id, f in entries:
                did = f[b"did"].decode()
                doomed += [k_decision(pid, did), *(k_mark(pid, did, s) for s in MARK_SOURCES)]
            await self.r.delete(*doomed)
            last = entries[-1][0].decode()
        await self.r.delete(k_decision_log(pid))
        return existed

    async def meta(self, pid: str) -> dict[str, str] | None:
        raw = await self.r.hgetall(k_meta(pid))
        return {k.decode(): v.decode() for k, v in raw.items()} or None

    async def generation(self, pid: str) -> str | None:
        g = await self.r.hget(k_meta(pid), "gen")
        return g.decode() if g is not None else None

    async def load_snapshot(self, pid: str) -> LiveState | None:
        """The policy at its snapshot (meta and snapshot read in one MULTI, so they agree)."""
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hgetall(k_meta(pid))
            pipe.hgetall(k_state(pid))
            meta_raw, fields = await pipe.execute()
        if not meta_raw or not fields:
            return None
        meta = {k.decode(): v.decode() for k, v in meta_raw.items()}
        if fields.get(b"gen", b"").decode() != meta.get("gen", ""):
            return None  # a replace is under way between our two reads: the caller retries
        return LiveState.from_snapshot(pid, meta, fields)

    async def read_tail(self, pid: str, after: str, count: int) -> Tail:
        """Up to ``count`` log entries after ``after``, the features of their decisions, the generation and the
        trim point (two round trips when there are entries, one otherwise)."""
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.hget(k_meta(pid), "gen")
            pipe.hget(k_state(pid), "trimmed")
            pipe.xrange(k_feedback(pid), min="(" + after, count=count)
            gen, trimmed, entries = await pipe.execute()
        dids = [f.get(b"did") for _, f in entries]
        keys = [k_decision(pid, d.decode()) for d in dids if d is not None]
        found = iter(await self._features(keys=keys) if keys else [])
        xs: list[bytes | None] = [next(found) if d is not None else None for d in dids]
        return Tail(
            gen.decode() if gen is not None else None,
            trimmed.decode() if trimmed else "0-0",
            entries,
            xs,
        )

    async def catch_up(self, live: LiveState, count: int = 1000, limit: int = 1_000_000) -> LiveState | None:
        """Apply the log after ``live.pos`` to ``live`` (in place) up to the end of the log; returns ``live``,
        or None when ``live`` cannot continue (the policy was replaced or deleted, or the log was trimmed past
        ``live.pos``): the caller reloads the snapshot."""
        done = 0
        while done < limit:
            tail = await self.read_tail(live.pid, live.pos, count)
            if tail.gen != live.gen or id_key(live.pos) < id_key(tail.trimmed):
                return None
            for entry, x in zip(tail.entries, tail.xs, strict=True):
                apply_entry(live, entry, x)
            done += len(tail.entries)
            if len(tail.entries) < count:
                break
        return live

    async def load_live(self, pid: str, retries: int = 5) -> LiveState | None:
        """The policy now: its snapshot with the whole log after it applied (None: no such policy)."""
        for _ in range(retries):
            live = await self.load_snapshot(pid)
            if live is None:
                if not await self.exists(pid):
                    return None
                continue
            caught = await self.catch_up(live)
            if caught is not None:
                return caught
        raise TimeoutError(f"policy {pid!r} kept changing while being read; try again")

    async def load_policy(self, pid: str) -> StoredPolicy | None:
        """The policy now, materialised (full state, inverses included): for export and the CLI."""
        live = await self.load_live(pid)
        if live is None:
            return None
        return StoredPolicy(pid, live.version, live.meta, live.policy.state_dict(), live.pacer_lam)

    async def append_op(self, pid: str, gen: str, op: str, model: str) -> str | None:
        """Append an admin change to the log (None: the policy is gone or was replaced meanwhile)."""
        res = await self._append_op(keys=[k_meta(pid), k_feedback(pid)], args=[gen, op, model])
        return res.decode() if isinstance(res, bytes) else None

    async def load_featurizer(self, pid: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        fields = await self.r.hgetall(k_featurizer(pid))
        return decode_featurizer(fields) if fields else None

    async def counters(self, pid: str) -> dict[str, int]:
        """``accepted`` (by the feedback script) and the learner's published ``applied``/``skipped``/``dead``,
        ``pos``-independent absolute counts."""
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.hget(k_counters(pid), "accepted")
            pipe.hmget(k_progress(pid), ["applied", "skipped", "dead"])
            pipe.hmget(k_state(pid), ["applied", "skipped", "dead"])
            accepted, progress, snap = await pipe.execute()
        # the progress hash is written after the snapshot's first batch; before that, the snapshot's counts hold
        src = progress if progress[0] is not None else snap
        out = {"accepted": int(accepted or 0)}
        out.update({n: int(v or 0) for n, v in zip(("applied", "skipped", "dead"), src, strict=True)})
        return out

    async def pending(self, pid: str) -> int:
        c = await self.counters(pid)
        return c["accepted"] - c["applied"] - c["skipped"] - c["dead"]
