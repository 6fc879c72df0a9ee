"""Off-policy evaluation: what would a candidate policy have scored on logged decisions?

Each logged decision has the context ``x``, the chosen model ``a``, its propensity ``p`` and the observed reward
``r`` (a feedback score). With the candidate's distribution ``pi(.|x)`` and importance weights ``w = pi(a|x)/p``:

- IPS: ``mean(w r)``; unbiased when ``p`` is the logging probability.
- SNIPS: ``sum(w r) / sum(w)``; self-normalised, lower variance, slightly biased.
- DR: ``mean(sum_b pi(b|x) rhat(x, b) + w (r - rhat(x, a)))`` with ``rhat`` per-model ridge regressions of the reward
  fitted on the logs with 2-fold cross-fitting (each half is scored by the models fitted on the other half; their
  regularisation chosen by leave-one-out CV there). DR stays unbiased whatever ``rhat`` is; a good ``rhat`` only
  narrows it.

Intervals: percentile bootstrap over decisions. ESS = ``(sum w)^2 / sum w^2``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass(frozen=True)
class Logged:
    """Logged decisions: ``X: (n, d)``, ``actions: (n,)`` model indices, ``propensity, reward: (n,)``, and what
    was observed of each answer, ``latency_ms, cost_usd: (n,)`` (NaN where it was not reported; ``None``: not
    logged at all). The estimators use only the first four; latency and cost travel with the log so that a
    candidate's latency or cost can be estimated from the same decisions."""

    X: np.ndarray
    actions: np.ndarray
    propensity: np.ndarray
    reward: np.ndarray
    models: tuple[str, ...]
    latency_ms: np.ndarray | None = None
    cost_usd: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.X.shape[0]
        if not (self.actions.shape == self.propensity.shape == self.reward.shape == (n,)):
            raise ValueError("logged arrays must agree in length")
        for name in ("latency_ms", "cost_usd"):
            extra = getattr(self, name)
            if extra is not None and extra.shape != (n,):
                raise ValueError(f"{name} has shape {extra.shape}, the log has {n} decisions")
        if n == 0:
            raise ValueError("no logged decisions with feedback")
        if not np.all((self.propensity > 0) & (self.propensity <= 1)):
            raise ValueError("propensities must be in (0, 1]")


def reward_model(logged: Logged, folds: int = 2, seed: int = 0) -> np.ndarray:
    """Cross-fitted ``rhat: (n, k)``: per-model ridge regressions of the reward on the context, each fold scored
    by models fitted on the other folds, the regularisation chosen by leave-one-out CV on that training part."""
    from sklearn.linear_model import RidgeCV

    n, _ = logged.X.shape
    k = len(logged.models)
    fold = np.random.default_rng(seed).integers(folds, size=n)
    out = np.zeros((n, k))
    for f in range(folds):
        train, score = fold != f, fold == f
        fallback = float(logged.reward[train].mean()) if train.any() else 0.5
        for a in range(k):
            rows = train & (logged.actions == a)
            if rows.sum() >= 3:
                model = RidgeCV(alphas=RIDGE_ALPHAS, fit_intercept=False).fit(logged.X[rows], logged.reward[rows])
                out[score, a] = model.predict(logged.X[score])
            else:
                out[score, a] = fallback
    return np.clip(out, 0.0, 1.0)


def _point(w: np.ndarray, r: np.ndarray, direct: np.ndarray, rhat_a: np.ndarray) -> dict[str, float]:
    return {
        "ips": float(np.mean(w * r)),
        "snips": float(np.sum(w * r) / np.sum(w)) if np.sum(w) > 0 else float("nan"),
        "dr": float(np.mean(direct + w * (r - rhat_a))),
    }


def estimate(logged: Logged, target_pmf: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """IPS, SNIPS and DR estimates of the target policy's value with 95% bootstrap intervals, and the ESS."""
    n, k = target_pmf.shape
    if n != logged.X.shape[0] or k != len(logged.models):
        raise ValueError(
            f"target pmf is {target_pmf.shape}, logs have {logged.X.shape[0]} decisions x {len(logged.models)} models"
        )
    rows = np.arange(n)
    w = target_pmf[rows, logged.actions] / logged.propensity
    rhat = reward_model(logged, seed=seed)
    direct = (target_pmf * rhat).sum(axis=1)
    rhat_a = rhat[rows, logged.actions]
    point = _point(w, logged.reward, direct, rhat_a)
    rng = np.random.default_rng(seed)
    boots: dict[str, list[float]] = {key: [] for key in point}
    for _ in range(n_boot):
        i = rng.integers(n, size=n)
        for key, v in _point(w[i], logged.reward[i], direct[i], rhat_a[i]).items():
            boots[key].append(v)
    out: dict[str, Any] = {
        key: {"value": point[key], "ci95": [float(np.nanpercentile(b, 2.5)), float(np.nanpercentile(b, 97.5))]}
        for key, b in boots.items()
    }
    out["ess"] = float(w.sum() ** 2 / np.sum(w**2)) if np.sum(w**2) > 0 else 0.0
    out["n"] = int(n)
    out["logged_mean_reward"] = float(logged.reward.mean())
    return out


def _observed(value: Any) -> float:
    """An optional observation (latency, cost) as a float, NaN when absent."""
    return float("nan") if value is None or value == b"" else float(value)


def load_jsonl(path: str | Path, models: tuple[str, ...]) -> Logged:
    """Logged decisions from JSONL: one object per line with ``x`` (list), ``model``, ``propensity``, ``reward``,
    and optionally ``latency_ms`` and ``cost_usd`` (absent or null: not observed)."""
    X, a, p, r, lat, cost = [], [], [], [], [], []
    index = {m: j for j, m in enumerate(models)}
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                X.append([float(v) for v in row["x"]])
                a.append(index[row["model"]])
                p.append(float(row["propensity"]))
                r.append(float(row["reward"]))
                lat.append(_observed(row.get("latency_ms")))
                cost.append(_observed(row.get("cost_usd")))
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(
                    f"{path}: line {line_no}: need x, model (one of the policy's), propensity, reward: {exc}"
                ) from exc
    return Logged(np.asarray(X), np.asarray(a), np.asarray(p), np.asarray(r), models, np.asarray(lat), np.asarray(cost))


def dump_jsonl(logged: Logged, path: str | Path) -> int:
    """Write ``logged`` in the JSONL format :func:`load_jsonl` reads (latency and cost as null where not
    observed); returns the number of lines. A log read from Redis can so be kept and evaluated later."""
    n = int(logged.X.shape[0])
    lat = logged.latency_ms if logged.latency_ms is not None else np.full(n, np.nan)
    cost = logged.cost_usd if logged.cost_usd is not None else np.full(n, np.nan)
    with open(path, "w") as f:
        for i in range(n):
            row = {
                "x": logged.X[i].tolist(),
                "model": logged.models[int(logged.actions[i])],
                "propensity": float(logged.propensity[i]),
                "reward": float(logged.reward[i]),
                "latency_ms": None if np.isnan(lat[i]) else float(lat[i]),
                "cost_usd": None if np.isnan(cost[i]) else float(cost[i]),
            }
            f.write(json.dumps(row) + "\n")
    return n


async def load_redis(
    url: str, policy_id: str, models: tuple[str, ...], source: str = "evaluator", limit: int = 100_000
) -> Logged:
    """Logged decisions of a policy from the service's Redis (decisions still within retention that have a
    feedback score from ``source``), with the latency the feedback reported (NaN where none was) and the cost the
    learner was charged (the reported cost, else the policy's estimate at decision time)."""
    from banditroute.service.app import make_client
    from banditroute.service.config import Settings
    from banditroute.service.store import Store, decode_x

    store = Store(make_client(url, Settings(redis_url=url)))
    try:
        index = {m: j for j, m in enumerate(models)}
        X, a, p, r, lat, cost = [], [], [], [], [], []
        for _id, fields in await store.decision_log(policy_id, count=limit):
            did = fields[b"did"].decode()
            dec = await store.decision(policy_id, did)
            if not dec or f"score:{source}" not in dec:
                continue
            model = dec["model"].decode()
            if model not in index:
                continue
            X.append(decode_x(dec["x"]))
            a.append(index[model])
            p.append(float(dec["propensity"]))
            r.append(float(dec[f"score:{source}"]))
            lat.append(_observed(dec.get("latency_ms")))
            cost.append(_observed(dec.get("cost_observed")))
    finally:
        await store.r.aclose()
    return Logged(
        np.asarray(X),
        np.asarray(a, dtype=np.int64),
        np.asarray(p),
        np.asarray(r),
        models,
        np.asarray(lat, dtype=np.float64),
        np.asarray(cost, dtype=np.float64),
    )
