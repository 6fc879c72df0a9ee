"""A policy's state as a function of its log: a snapshot plus the log entries after it, applied in order.

The learner and every worker hold a :class:`LiveState` and feed it the same entries through the same
:func:`apply_entry`; so a worker's decisions reflect every accepted event it has read, whatever the snapshot
cadence, and a learner that restarts from the snapshot rebuilds exactly the state it lost. No I/O here.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from banditroute.bandit import BudgetPacer, Policy
from banditroute.bandit.errors import BanditError
from banditroute.bandit.registry import policy_class
from banditroute.service.cascade_record import apply_cascade
from banditroute.service.codec import decode_state, encode_state

log = logging.getLogger("banditroute.eventlog")

Entry = tuple[bytes, dict[bytes, bytes]]


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream id ``"ms-seq"`` as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def budget_of(meta: Mapping[str, str]) -> dict[str, Any] | None:
    """The budget pacing settings a policy was created with (None: not paced)."""
    raw = meta.get("budget")
    return json.loads(raw) if raw else None


def pacer_for(policy: Policy, meta: Mapping[str, str], dual: float) -> BudgetPacer | None:
    """The policy's budget pacer resumed at its stored ``dual`` (None when the policy is not paced)."""
    budget = budget_of(meta)
    if budget is None:
        return None
    return BudgetPacer.resume(
        policy, budget["target_cost_usd"], dual, lr=budget.get("lr", 0.05), lam_max=budget.get("lam_max", 100.0)
    )


def policy_from_snapshot(meta: Mapping[str, str], state: Mapping[str, Any]) -> Policy:
    """A live policy from its meta hash and a (sufficient) state: derived arrays are recomputed here."""
    hyper = json.loads(meta.get("hyperparameters", "{}"))
    cls = policy_class(meta["name"])
    try:
        return cls.from_sufficient_state(state["meta"]["models"], int(meta["dim"]), hyper, state)
    except TypeError as exc:
        raise BanditError(f"policy {meta['name']!r}: {exc}") from exc


@dataclass
class DeadLetter:
    entry_id: str
    did: str
    model: str
    source: str
    score: str
    cost: str
    error: str


@dataclass
class LiveState:
    """A policy at one position of its log.

    Attributes:
        gen: the policy's generation (a replaced policy starts a new one).
        pos: id of the last log entry applied (``"0-0"``: none).
        version: bumped by every applied entry (so by every feedback event and admin change).
        applied, skipped, dead: feedback events applied, skipped (their model was removed), dead-lettered.
        pacer_lam: the budget pacer's dual.
    """

    pid: str
    gen: str
    meta: dict[str, str]
    policy: Policy
    pos: str = "0-0"
    version: int = 1
    applied: int = 0
    skipped: int = 0
    dead: int = 0
    pacer_lam: float = 0.0
    pacer: BudgetPacer | None = None
    last_event_at: float = 0.0  # wall time of the last applied entry (from its id), for lag metrics
    dead_letters: list[DeadLetter] = field(default_factory=list)

    @classmethod
    def from_snapshot(cls, pid: str, meta: dict[str, str], fields: Mapping[bytes, bytes]) -> LiveState:
        state = decode_state(fields)
        policy = policy_from_snapshot(meta, state)
        lam = float(fields.get(b"pacer_lam", b"0"))
        live = cls(
            pid=pid,
            gen=meta.get("gen", ""),
            meta=meta,
            policy=policy,
            pos=fields.get(b"pos", b"0-0").decode(),
            version=int(fields.get(b"version", b"1")),
            applied=int(fields.get(b"applied", b"0")),
            skipped=int(fields.get(b"skipped", b"0")),
            dead=int(fields.get(b"dead", b"0")),
            pacer_lam=lam,
        )
        live.pacer = pacer_for(policy, meta, lam)
        return live

    def snapshot_fields(self) -> dict[str, Any]:
        """The snapshot hash: sufficient statistics (no inverses) and the position they cover."""
        return {
            **encode_state(self.policy.sufficient_state()),
            "pos": self.pos,
            "version": str(self.version),
            "applied": str(self.applied),
            "skipped": str(self.skipped),
            "dead": str(self.dead),
            "pacer_lam": repr(float(self.pacer_lam)),
            "gen": self.gen,
            "at": repr(time.time()),
        }

    def lam(self) -> float:
        """The lambda decisions use when a request names none: the pacer's, or 0 for an unpaced policy."""
        return self.pacer.lam if self.pacer is not None else 0.0


def apply_entry(live: LiveState, entry: Entry, x: bytes | None) -> str:
    """Apply one log entry (``x``: the features of the decision it scores, None if that decision is gone).

    Returns the outcome: ``"op"`` (an admin change), ``"applied"``, ``"skipped"`` (its model was removed since)
    or ``"dead"`` (the update raised: recorded in ``live.dead_letters``, never retried, never stops the log).
    """
    raw_id, f = entry
    entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    live.pos = entry_id
    live.version += 1
    live.last_event_at = id_key(entry_id)[0] / 1000.0
    policy = live.policy
    op = f.get(b"op")
    if op is not None:
        model = f.get(b"model", b"").decode()
        try:
            if op == b"add_model":
                policy.add_model(model)
            elif op == b"remove_model":
                policy.remove_model(model)
            else:
                raise ValueError(f"unknown op {op.decode(errors='replace')!r}")
        except (BanditError, ValueError) as exc:  # validated before it was logged; a race lands here
            live.dead_letters.append(DeadLetter(entry_id, "", model, "admin", "", "", f"{op!r}: {exc}"))
            return "dead"
        return "op"
    model = f.get(b"model", b"").decode()
    if model not in policy.models:
        live.skipped += 1
        return "skipped"
    try:
        if x is None:
            raise LookupError("the decision expired or was deleted before its feedback was applied")
        cost = float(f[b"cost"])
        record = f.get(b"cascade")
        if record is not None:  # a cascade's decision: its record trains the stop decision and the query level
            apply_cascade(policy, np.frombuffer(x, dtype="<f8"), record, float(f[b"score"]), float(f[b"weight"]))
        else:
            policy.update(np.frombuffer(x, dtype="<f8"), model, float(f[b"score"]), cost, float(f[b"weight"]))
        if live.pacer is not None:
            live.pacer.observe_cost(cost)
            live.pacer_lam = live.pacer.dual
    except Exception as exc:  # noqa: BLE001 - any failing update is dead-lettered, logged, and the log moves on
        live.dead += 1
        live.dead_letters.append(
            DeadLetter(
                entry_id,
                f.get(b"did", b"").decode(errors="replace"),
                model,
                f.get(b"source", b"").decode(errors="replace"),
                f.get(b"score", b"").decode(errors="replace"),
                f.get(b"cost", b"").decode(errors="replace"),
                f"{type(exc).__name__}: {exc}"[:500],
            )
        )
        return "dead"
    live.applied += 1
    return "applied"


__all__ = ["DeadLetter", "Entry", "LiveState", "apply_entry", "budget_of", "id_key", "pacer_for"]
