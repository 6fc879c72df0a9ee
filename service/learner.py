"""The learner: keeps each policy's state in memory, applies its log in order, publishes its progress and
writes snapshots (sufficient statistics with the log position they cover) every N events or T seconds.

Every worker runs one as a background task; a lease in Redis makes one of them the learner of a policy. Its
writes are fenced (lease token and generation checked in the same script) and only move forward, so a learner
that lost its lease, or a replay after a restart, can never move the snapshot or the progress back. Decisions do
not wait for it: workers apply the log themselves (:mod:`service.runtime`). See docs/design-notes.md for the
recovery argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

from redis.exceptions import RedisError

from banditroute.service.eventlog import LiveState, apply_entry, id_key
from banditroute.service.store import Store

log = logging.getLogger("banditroute.learner")


@dataclass
class Held:
    """A policy this learner holds the lease of, in memory."""

    live: LiveState
    snapshot_pos: str
    snapshot_time: float
    since_snapshot: int = 0
    renewed_at: float = 0.0


class Learner:
    """Background loop: for each policy whose lease it holds, apply the log, publish progress, snapshot.

    Args:
        batch: log entries read and applied per step.
        snapshot_events: write a snapshot once this many entries were applied since the last one ...
        snapshot_seconds: ... or once this much time passed with at least one.
        idle_sleep, idle_max: the pause after a pass that found nothing, doubling from ``idle_sleep`` up to
            ``idle_max`` while the logs stay quiet (a pass is a few Redis round trips: polling every 10 ms cost an
            idle worker a tenth of a core); back to ``idle_sleep`` once there is work, and cut short by
            :meth:`wake` (feedback accepted by this worker).
        lease_ms: lease length; renewed every step, so another process takes over this long after a crash.
    """

    def __init__(
        self,
        store: Store,
        batch: int = 256,
        snapshot_events: int = 10_000,
        snapshot_seconds: float = 300.0,
        idle_sleep: float = 0.01,
        lease_ms: int = 5_000,
        idle_max: float = 0.1,
    ) -> None:
        self.store = store
        self.batch = batch
        self.snapshot_events = snapshot_events
        self.snapshot_seconds = snapshot_seconds
        self.idle_sleep = idle_sleep
        self.idle_max = max(idle_max, idle_sleep)
        self._wake = asyncio.Event()
        self.lease_ms = lease_ms
        self.token = uuid.uuid4().hex
        self.held: dict[str, Held] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def step(self, pid: str) -> int:
        """One step on ``pid``: returns how many log entries were applied (0: none, or not ours)."""
        h = self.held.get(pid)
        now = time.monotonic()
        # renewing the lease is a write (to the AOF too): only every third of its length. Correctness does not
        # rest on it: every write of ours is fenced by the token in the same script.
        if h is None or now - h.renewed_at > self.lease_ms / 3000:
            if not await self.store.hold_lease(pid, self.token, self.lease_ms):
                self.held.pop(pid, None)
                return 0
            if h is not None:
                h.renewed_at = now
        if h is None:
            live = await self.store.load_snapshot(pid)
            if live is None:
                return 0
            h = self.held[pid] = Held(live, live.pos, now, renewed_at=now)
        live = h.live
        tail = await self.store.read_tail(pid, live.pos, self.batch)
        if tail.gen != live.gen or id_key(live.pos) < id_key(tail.trimmed):
            self.held.pop(pid, None)  # replaced, deleted, or someone else moved on: reload next step
            return 0
        for entry, x in zip(tail.entries, tail.xs, strict=True):
            if apply_entry(live, entry, x) == "dead":
                log.warning("dead letter", extra={"policy": pid, "error": live.dead_letters[-1].error})
        n = len(tail.entries)
        if n:
            if not await self.store.write_progress(live, self.token):
                self.held.pop(pid, None)
                return 0
            h.since_snapshot += n
        due = h.since_snapshot >= self.snapshot_events or (
            h.since_snapshot > 0 and time.monotonic() - h.snapshot_time >= self.snapshot_seconds
        )
        if due:
            await self.snapshot(pid)
        return n

    async def snapshot(self, pid: str) -> bool:
        """Write the held state of ``pid`` as its snapshot; the log is trimmed below the previous snapshot."""
        h = self.held.get(pid)
        if h is None or h.since_snapshot == 0:
            return False
        previous = h.snapshot_pos if h.snapshot_pos != "0-0" else None
        if not await self.store.write_snapshot(h.live, self.token, previous):
            self.held.pop(pid, None)
            return False
        h.snapshot_pos, h.snapshot_time, h.since_snapshot = h.live.pos, time.monotonic(), 0
        return True

    async def drain_once(self) -> int:
        total = 0
        pids = await self.store.policy_ids()
        for pid in set(self.held) - set(pids):
            self.held.pop(pid, None)
        for pid in pids:
            try:
                total += await self.step(pid)
            except (RedisError, OSError, TimeoutError):
                raise
            except Exception:  # one broken policy never stalls the others
                log.exception("learner: policy step failed", extra={"policy": pid})
                self.held.pop(pid, None)
        return total

    def wake(self) -> None:
        """Look at the logs now (called when this worker accepts feedback), not after the idle pause."""
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.5
        idle = self.idle_sleep
        while not self._stop.is_set():
            try:
                self._wake.clear()  # before the pass: a wake during it makes the pause after it end at once
                n = await self.drain_once()
                backoff = 0.5
                if n:
                    idle = self.idle_sleep
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), idle)
                    idle = min(idle * 2, self.idle_max)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("learner: redis unavailable, retrying", extra={"error": str(exc)})
                self.held.clear()  # reload from Redis once it is back
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                log.exception("learner: unexpected error")
                await asyncio.sleep(0.5)

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="banditroute-learner")

    async def stop(self, timeout: float = 1.0) -> None:
        """Stop the loop, write a last snapshot of what is held (so a restart replays little) and release the
        leases; bounded by ``timeout`` so that shutdown stays fast."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(timeout):
                for pid in list(self.held):
                    await self.snapshot(pid)
                    await self.store.release_lease(pid, self.token)
        self.held.clear()


async def wait_applied(store: Store, pid: str, feedback_id: str, timeout: float) -> bool:
    """Wait until the learner has applied ``feedback_id`` of ``pid`` (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if id_key(await store.applied_id(pid)) >= id_key(feedback_id):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.005)
