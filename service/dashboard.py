"""Figures of the dashboard (``/ui``) that no other JSON endpoint computes, in one place: windows of a policy's
recent decisions (per model share, mean reward and cost with 95% intervals, exploration share, the same over
time), request and feedback rates, experiment arms over time, and gateway upstream statistics.

The dashboard's JSON endpoints (``service/routes/ui.py``) answer these, next to what the existing endpoints'
functions answer (policy info, experiment report, decision lookup), and the page shows exactly those JSON figures.

Conventions: a reward observation is one accepted feedback score (a decision scored by the user and by the
evaluator counts twice, as in the experiment statistics); a cost observation is one decision with an observed
cost. Intervals are the normal 95% intervals of :func:`service.experiments.summary`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from banditroute.service.experiments import difference, summary
from banditroute.service.keys import k_decision, k_decision_log, k_feedback
from banditroute.service.store import Store

WINDOW_S = 3600.0  # "the last hour"
RATE_S = 60.0  # rates are counted over the last minute
MAX_DECISIONS = 5000  # newest decisions read per policy and window
BUCKETS = 20  # points of a time series
SOURCES = ("user", "evaluator", "gateway")
_FIELDS = [
    "model",
    "pmf",
    "propensity",
    "time",
    "lam",
    "cost_observed",
    "experiment",
    "arm",
    "shadow",
    "gw_attempts",
    *(f"score:{s}" for s in SOURCES),
]


@dataclass
class Row:
    """One logged decision, as the dashboard reads it."""

    did: str
    model: str
    pmf: dict[str, float]
    time: float
    lam: float
    scores: list[float]
    cost: float | None
    experiment: str
    arm: str
    shadow: bool
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def explored(self) -> bool:
        """The chosen model was not the distribution's most likely one (an exploratory draw)."""
        return bool(self.pmf) and self.pmf.get(self.model, 0.0) < max(self.pmf.values())


def _f(raw: bytes | None) -> float | None:
    return float(raw) if raw not in (None, b"") else None


async def recent(store: Store, pid: str, since: float, limit: int = MAX_DECISIONS) -> list[Row]:
    """The policy's decisions logged since ``since`` (epoch seconds), newest ``limit`` of them, oldest first;
    decisions past their retention are left out."""
    entries = await store.r.xrevrange(k_decision_log(pid), max="+", min=f"{int(since * 1000)}-0", count=limit)
    dids = [f[b"did"].decode() for _, f in entries][::-1]
    if not dids:
        return []
    async with store.r.pipeline(transaction=False) as pipe:
        for did in dids:
            pipe.hmget(k_decision(pid, did), _FIELDS)
        values = await pipe.execute()
    rows = []
    for did, vals in zip(dids, values, strict=True):
        d = dict(zip(_FIELDS, vals, strict=True))
        if d["model"] is None:
            continue
        rows.append(
            Row(
                did=did,
                model=d["model"].decode(),
                pmf=json.loads(d["pmf"]) if d["pmf"] else {},
                time=float(d["time"] or 0.0),
                lam=float(d["lam"] or 0.0),
                scores=[float(d[f"score:{s}"]) for s in SOURCES if d[f"score:{s}"] not in (None, b"")],
                cost=_f(d["cost_observed"]),
                experiment=(d["experiment"] or b"").decode(),
                arm=(d["arm"] or b"").decode(),
                shadow=d["shadow"] == b"1",
                attempts=json.loads(d["gw_attempts"]) if d["gw_attempts"] else [],
            )
        )
    return rows


def _summary(values: list[float]) -> dict[str, Any]:
    return summary(len(values), sum(values), sum(v * v for v in values))


def outcome(rows: list[Row]) -> dict[str, Any]:
    """Decisions, feedback, mean reward and mean cost (with 95% intervals) of ``rows``."""
    scores = [s for r in rows for s in r.scores]
    costs = [r.cost for r in rows if r.cost is not None]
    return {
        "decisions": len(rows),
        "feedback": len(scores),
        "reward": _summary(scores),
        "cost_usd": _summary(costs),
    }


def per_model(rows: list[Row], models: list[str]) -> list[dict[str, Any]]:
    """Per model: share of decisions, mean reward and mean cost with their 95% intervals."""
    n = len(rows)
    names = list(models) + sorted({r.model for r in rows} - set(models))
    out = []
    for m in names:
        mine = [r for r in rows if r.model == m]
        out.append({"model": m, "share": len(mine) / n if n else None, **outcome(mine)})
    return out


def edges(rows: list[Row], now: float, buckets: int = BUCKETS) -> list[float]:
    """Bucket boundaries from the first row to ``now`` (at least one second wide)."""
    start = rows[0].time if rows else now - 60.0
    width = max((now - start) / buckets, 1.0)
    return [start + i * width for i in range(buckets + 1)]


def _bucketed(rows: list[Row], bounds: list[float]) -> list[list[Row]]:
    out: list[list[Row]] = [[] for _ in range(len(bounds) - 1)]
    width = bounds[1] - bounds[0]
    for r in rows:
        i = min(max(int((r.time - bounds[0]) // width), 0), len(out) - 1)
        out[i].append(r)
    return out


def policy_series(rows: list[Row], models: list[str], bounds: list[float]) -> dict[str, Any]:
    """Per time bucket (its end time): each model's share of decisions and the mean reward and cost."""
    buckets = _bucketed(rows, bounds)
    share = {m: [len([r for r in b if r.model == m]) / len(b) if b else None for b in buckets] for m in models}
    reward = [outcome(b)["reward"]["mean"] for b in buckets]
    cost = [outcome(b)["cost_usd"]["mean"] for b in buckets]
    return {"t": bounds[1:], "share": share, "reward": reward, "cost_usd": cost}


def policy_window(rows: list[Row], models: list[str], now: float) -> dict[str, Any]:
    """The policy page's figures over ``rows`` (its last hour): per model, exploration, lambda, series."""
    lams = [r.lam for r in rows]
    return {
        "window_s": WINDOW_S,
        "decisions": len(rows),
        "exploration_share": sum(r.explored for r in rows) / len(rows) if rows else None,
        "mean_lam": sum(lams) / len(lams) if lams else None,
        "models": per_model(rows, models),
        "series": policy_series(rows, models, edges(rows, now)),
    }


def experiment_series(arms: dict[str, list[Row]], control: str, now: float) -> dict[str, Any]:
    """Per arm, cumulative at each bucket's end: decisions, mean score with its 95% interval, and the score
    difference to the control arm with its (Welch) interval."""
    every = sorted((r for rows in arms.values() for r in rows), key=lambda r: r.time)
    bounds = edges(every, now)
    out: dict[str, Any] = {"t": bounds[1:], "arms": {}}
    for name, rows in arms.items():
        points = []
        for end in bounds[1:]:
            upto = [r for r in rows if r.time <= end]
            s = outcome(upto)
            c = outcome([r for r in arms[control] if r.time <= end])
            diff = difference(s["reward"], c["reward"]) if name != control else None
            points.append({"decisions": s["decisions"], "score": s["reward"], "score_minus_control": diff})
        out["arms"][name] = points
    return out


async def rates(store: Store, pid: str, now: float, span: float = RATE_S, cap: int = 100_000) -> dict[str, float]:
    """Decisions and accepted feedback per second over the last ``span`` seconds."""
    since = f"{int((now - span) * 1000)}-0"
    decisions = await store.r.xrevrange(k_decision_log(pid), max="+", min=since, count=cap)
    feedback = await store.r.xrevrange(k_feedback(pid), max="+", min=since, count=cap)
    return {
        "requests_per_s": len(decisions) / span,
        "feedback_per_s": sum(1 for _, f in feedback if b"did" in f) / span,
    }


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) by linear interpolation; None for no values."""
    if not values:
        return None
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def upstream_stats(rows: list[Row], models: list[str], breakers: dict[str, str]) -> list[dict[str, Any]]:
    """Per configured upstream, from the attempts recorded on decisions (every worker's calls): calls (attempts
    that reached the upstream), errors (connect, timeout, 5xx), skipped by an open breaker, latency percentiles
    of its answered calls (ms), and this worker's breaker state."""
    out = []
    for m in models:
        att = [a for r in rows for a in r.attempts if a.get("model") == m]
        called = [a for a in att if a.get("outcome") != "breaker"]
        errors = [a for a in called if a.get("outcome") not in ("ok", "client_error")]
        ms = [float(a.get("ms") or 0.0) for a in called if a.get("outcome") in ("ok", "client_error")]
        out.append(
            {
                "model": m,
                "calls": len(called),
                "errors": len(errors),
                "error_rate": len(errors) / len(called) if called else None,
                "breaker_skips": len(att) - len(called),
                "circuit": breakers.get(m, "closed"),
                "latency_ms": {f"p{int(q * 100)}": percentile(ms, q) for q in (0.5, 0.9, 0.99)},
            }
        )
    return out


def since_window(now: float | None = None) -> tuple[float, float]:
    """``(now, start of the window)``."""
    now = time.time() if now is None else now
    return now, now - WINDOW_S
