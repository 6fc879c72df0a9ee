"""Policies as a worker holds them: the snapshot plus the log after it, applied here with the learner's code.

A worker loads a policy's snapshot once, then follows the log: within ``state_staleness_ms`` of its last look it
decides with what it holds; after that a route reads the new log entries (one small round trip, a second one
for their decisions' features when there are any) and applies them. So decisions reflect accepted feedback
within that bound, whatever the snapshot cadence and whatever the learner's lag. A replaced policy (a new
generation) or a log trimmed past the worker's position makes it reload the snapshot.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from banditroute.bandit import Policy, policy_from_state
from banditroute.env.features import Featurizer, FeaturizerError
from banditroute.service.errors import Invalid, NotFound
from banditroute.service.eventlog import LiveState, budget_of, pacer_for
from banditroute.service.store import Store, StoredPolicy


def policy_meta(
    policy: Policy,
    featurizer: tuple[dict[str, Any], dict[str, Any]] | None,
    budget: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The ``meta`` hash a policy is stored with (the inverse of :func:`build_policy`'s reading of it); checks that
    the featurizer is well formed and of the policy's dimension."""
    sha = ""
    if featurizer is not None:
        try:
            fz = Featurizer.from_state(*featurizer)
        except FeaturizerError as exc:
            raise Invalid(f"featurizer: {exc}") from exc
        if fz.dim != policy.dim:
            raise Invalid(f"featurizer dim {fz.dim} differs from the policy's dim {policy.dim}")
        sha = fz.fingerprint()
    return {
        "name": policy.name,
        "dim": str(policy.dim),
        "hyperparameters": json.dumps(policy.hyperparameters()),
        "featurizer_sha": sha,
        "budget": json.dumps(budget) if budget else "",
    }


def build_policy(stored: StoredPolicy) -> Policy:
    """A live policy object from a materialised stored policy (no I/O)."""
    meta = stored.meta
    hyper = json.loads(meta.get("hyperparameters", "{}"))
    return policy_from_state(meta["name"], stored.state["meta"]["models"], int(meta["dim"]), hyper, stored.state)


@dataclass
class Runtime:
    """A policy as this worker holds it: its live state (snapshot + log applied) and its featurizer."""

    live: LiveState
    featurizer: Featurizer | None
    checked_at: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def pid(self) -> str:
        return self.live.pid

    @property
    def policy(self) -> Policy:
        return self.live.policy

    @property
    def version(self) -> int:
        return self.live.version

    @property
    def gen(self) -> str:
        return self.live.gen

    @property
    def meta(self) -> dict[str, str]:
        return self.live.meta

    @property
    def pacer_lam(self) -> float:
        return self.live.pacer_lam

    def lam(self) -> float:
        """The lambda decisions use when a request names none: the pacer's, or 0 for an unpaced policy."""
        return self.live.lam()


class PolicyCache:
    """Per-worker cache of live policies and featurizers."""

    def __init__(self, store: Store, staleness_ms: int = 0) -> None:
        self.store = store
        self.staleness = staleness_ms / 1000.0
        self._cache: dict[str, Runtime] = {}
        self._loading: dict[str, asyncio.Lock] = {}

    def forget(self, pid: str) -> None:
        self._cache.pop(pid, None)

    def held(self) -> dict[str, Runtime]:
        return dict(self._cache)

    async def get(self, pid: str, fresh: bool = False, keep: bool = True) -> Runtime:
        """The policy ``pid`` with the log applied up to now (``fresh``) or up to ``staleness`` ago. With
        ``keep=False`` a policy this worker does not hold yet is read but not kept (admin reads do not make a
        worker follow every policy's log)."""
        now = time.monotonic()
        cached = self._cache.get(pid)
        if cached is not None and not fresh:
            if self.staleness > 0 and now - cached.checked_at < self.staleness:
                return cached
            if cached.lock.locked():  # another request of this worker is reading the log right now
                return cached
        if cached is not None:
            async with cached.lock:
                caught = await self.store.catch_up(cached.live)
            if caught is not None:
                cached.checked_at = now
                return cached
        # one load per policy at a time: concurrent first requests wait for it instead of each reading the state
        loading = self._loading.setdefault(pid, asyncio.Lock())
        async with loading:
            again = self._cache.get(pid)
            if again is not None and again is not cached:
                return again
            return await self._load(pid, cached, keep, now)

    async def _load(self, pid: str, cached: Runtime | None, keep: bool, now: float) -> Runtime:
        live = await self.store.load_live(pid)
        if live is None:
            self.forget(pid)
            raise NotFound(f"unknown policy {pid!r}")
        featurizer = None
        sha = live.meta.get("featurizer_sha", "")
        if cached is not None and cached.meta.get("featurizer_sha", "") == sha:
            featurizer = cached.featurizer
        elif sha:
            fz = await self.store.load_featurizer(pid)
            featurizer = Featurizer.from_state(*fz) if fz else None
        rt = Runtime(live, featurizer, now)
        if keep or cached is not None:
            self._cache[pid] = rt
        return rt


__all__ = ["PolicyCache", "Runtime", "budget_of", "build_policy", "pacer_for", "policy_meta"]
