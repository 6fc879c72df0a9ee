"""Policies as a worker holds them: built from Redis state and cached per worker, keyed by the state version.

A route costs one small Redis read (the version) when the cached copy is current, and none at all within
``state_staleness_ms`` of the last check (a documented, bounded staleness: decisions may use a state up to that
old; feedback is never lost by it, only applied to decisions a little later).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from banditroute.bandit import BudgetPacer, Policy, policy_from_state
from banditroute.env.features import Featurizer, FeaturizerError
from banditroute.service.errors import Invalid, NotFound
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
        if int(featurizer[0].get("dim", -1)) != policy.dim:
            raise Invalid(f"featurizer dim {featurizer[0].get('dim')} differs from the policy's dim {policy.dim}")
        try:
            sha = Featurizer.from_state(*featurizer).fingerprint()
        except FeaturizerError as exc:
            raise Invalid(f"featurizer: {exc}") from exc
    return {
        "name": policy.name,
        "dim": str(policy.dim),
        "hyperparameters": json.dumps(policy.hyperparameters()),
        "featurizer_sha": sha,
        "budget": json.dumps(budget) if budget else "",
    }


def build_policy(stored: StoredPolicy) -> Policy:
    """A live policy object from its stored meta and state (no I/O)."""
    meta = stored.meta
    hyper = json.loads(meta.get("hyperparameters", "{}"))
    return policy_from_state(meta["name"], stored.state["meta"]["models"], int(meta["dim"]), hyper, stored.state)


def budget_of(meta: dict[str, str]) -> dict[str, Any] | None:
    """The budget pacing settings a policy was created with (None: not paced)."""
    raw = meta.get("budget")
    return json.loads(raw) if raw else None


def pacer_for(policy: Policy, meta: dict[str, str], dual: float) -> BudgetPacer | None:
    """The policy's budget pacer resumed at its stored ``dual`` (None when the policy is not paced)."""
    budget = budget_of(meta)
    if budget is None:
        return None
    return BudgetPacer.resume(
        policy, budget["target_cost_usd"], dual, lr=budget.get("lr", 0.05), lam_max=budget.get("lam_max", 100.0)
    )


@dataclass
class Runtime:
    pid: str
    version: int
    policy: Policy
    featurizer: Featurizer | None
    meta: dict[str, str]
    pacer_lam: float
    checked_at: float

    def lam(self) -> float:
        """The lambda decisions use when a request names none: the pacer's, or 0 for an unpaced policy."""
        pacer = pacer_for(self.policy, self.meta, self.pacer_lam)
        return pacer.lam if pacer is not None else 0.0


class PolicyCache:
    """Per-worker cache of live policies and featurizers."""

    def __init__(self, store: Store, staleness_ms: int = 0) -> None:
        self.store = store
        self.staleness = staleness_ms / 1000.0
        self._cache: dict[str, Runtime] = {}

    def forget(self, pid: str) -> None:
        self._cache.pop(pid, None)

    async def get(self, pid: str) -> Runtime:
        now = time.monotonic()
        cached = self._cache.get(pid)
        if cached is not None and self.staleness > 0 and now - cached.checked_at < self.staleness:
            return cached
        version = await self.store.version(pid)
        if version is None:
            self.forget(pid)
            raise NotFound(f"unknown policy {pid!r}")
        if cached is not None and cached.version == version:
            cached.checked_at = now
            return cached
        stored = await self.store.load_policy(pid)
        if stored is None:
            raise NotFound(f"unknown policy {pid!r}")
        featurizer = None
        sha = stored.meta.get("featurizer_sha", "")
        if cached is not None and cached.meta.get("featurizer_sha", "") == sha:
            featurizer = cached.featurizer
        elif sha:
            fz = await self.store.load_featurizer(pid)
            featurizer = Featurizer.from_state(*fz) if fz else None
        rt = Runtime(pid, stored.version, build_policy(stored), featurizer, stored.meta, stored.pacer_lam, now)
        self._cache[pid] = rt
        return rt
