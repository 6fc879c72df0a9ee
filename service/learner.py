"""The feedback learner: applies each policy's feedback stream, in order, exactly once (see ``store.drain``).

Every worker runs one as a background task; the lease in Redis lets one at a time work on a policy, and the
WATCH transaction in ``drain`` keeps a second one from committing the same events if a lease ever expires early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from redis.exceptions import RedisError

from banditroute.bandit.errors import BanditError
from banditroute.service.runtime import build_policy, pacer_for
from banditroute.service.store import Store, StoredPolicy, decode_x

log = logging.getLogger("banditroute.learner")


def apply_entries(
    stored: StoredPolicy, entries: list[tuple[bytes, dict[bytes, bytes]]]
) -> tuple[dict[str, Any], float, int, int]:
    """Apply feedback events to the stored policy: ``(new state, pacer dual, applied, skipped)``.

    An event for a model the policy no longer has (removed since the decision) is skipped and counted.
    """
    policy = build_policy(stored)
    pacer = pacer_for(policy, stored.meta, stored.pacer_lam)
    applied = skipped = 0
    for _id, f in entries:
        model = f[b"model"].decode()
        if model not in policy.models:
            skipped += 1
            continue
        try:
            cost = float(f[b"cost"])
            policy.update(decode_x(f[b"x"]), model, float(f[b"score"]), cost, float(f[b"weight"]))
        except (BanditError, ValueError, KeyError):
            skipped += 1  # e.g. the policy's dimension changed since the decision; counted, never retried
            continue
        applied += 1
        if pacer is not None:
            pacer.observe_cost(cost)
    return policy.state_dict(), (pacer.dual if pacer else stored.pacer_lam), applied, skipped


class Learner:
    """Background loop draining every policy's feedback stream."""

    def __init__(self, store: Store, batch: int = 256, idle_sleep: float = 0.01) -> None:
        self.store = store
        self.batch = batch
        self.idle_sleep = idle_sleep
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def drain_once(self) -> int:
        total = 0
        for pid in await self.store.policy_ids():
            # one small read tells whether there is work; the lease, WATCH and stream reads only when there is
            if await self.store.pending(pid) > 0:
                total += await self.store.drain(pid, self.batch, apply_entries)
        return total

    async def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                n = await self.drain_once()
                backoff = 0.5
                if n == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), self.idle_sleep)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("learner: redis unavailable, retrying", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                log.exception("learner: unexpected error")
                await asyncio.sleep(0.5)

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="banditroute-learner")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None


async def wait_applied(store: Store, pid: str, feedback_id: str, timeout: float) -> bool:
    """Wait until the learner has applied ``feedback_id`` of ``pid`` (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout

    def key(i: str) -> tuple[int, int]:
        a, b = i.split("-")
        return int(a), int(b)

    while True:
        if key(await store.applied_id(pid)) >= key(feedback_id):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.005)
