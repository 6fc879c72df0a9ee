"""Replaying records as a stream of queries: learners see only the chosen model's feedback."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from banditroute.bandit import Policy


@dataclass(frozen=True)
class StreamData:
    """Arrays of the queries a stream draws from: ``X: (n, d)``, ``Q, C: (n, k)``."""

    X: np.ndarray
    Q: np.ndarray
    C: np.ndarray
    models: tuple[str, ...]
    cost_scale: float


class Learner(Protocol):
    name: str

    def select(self, x: np.ndarray) -> tuple[int, float]:
        """(chosen model index, its propensity)."""
        ...

    def update(self, x: np.ndarray, idx: int, quality: float, cost: float, propensity: float) -> None: ...


class PolicyLearner:
    """One of our policies as a stream learner (lambda fixed for the run)."""

    def __init__(self, name: str, policy: Policy, lam: float = 0.0, learn: bool = True) -> None:
        self.name, self.policy, self.lam, self.learn = name, policy, lam, learn

    def select(self, x: np.ndarray) -> tuple[int, float]:
        d = self.policy.select(x, lam=self.lam)
        return d.index, d.propensity

    def update(self, x: np.ndarray, idx: int, quality: float, cost: float, propensity: float) -> None:
        if self.learn:
            self.policy.update(x, self.policy.models[idx], quality, cost)


def order(n: int, steps: int, seed: int) -> np.ndarray:
    """Query indices of a stream: a seeded permutation, repeated (reshuffled) if the stream is longer."""
    rng = np.random.default_rng(seed)
    reps = -(-steps // n)
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:steps]


def run(learner: Learner, data: StreamData, idx: np.ndarray, lam: float = 0.0) -> dict[str, Any]:
    """Replay ``idx`` through ``learner``; per-step arrays and timing."""
    n = idx.size
    chosen = np.empty(n, dtype=np.int64)
    prop = np.empty(n)
    t0 = time.perf_counter()
    for t, i in enumerate(idx):
        a, p = learner.select(data.X[i])
        chosen[t], prop[t] = a, p
        learner.update(data.X[i], a, float(data.Q[i, a]), float(data.C[i, a]), p)
    secs = time.perf_counter() - t0
    q = data.Q[idx, chosen]
    c = data.C[idx, chosen]
    reward = q - lam * c / data.cost_scale
    best = (data.Q[idx] - lam * data.C[idx] / data.cost_scale).max(axis=1)
    return {
        "chosen": chosen,
        "propensity": prop,
        "quality": q,
        "cost": c,
        "regret": np.cumsum(best - reward),
        "seconds": secs,
        "decisions_per_second": n / secs if secs > 0 else float("inf"),
    }


def moving_average(v: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, v.size))
    c = np.cumsum(np.insert(np.asarray(v, dtype=float), 0, 0.0))
    out = np.empty(v.size)
    out[window - 1 :] = (c[window:] - c[:-window]) / window
    out[: window - 1] = c[1:window] / np.arange(1, window)
    return out


def thin(v: np.ndarray, points: int = 200) -> tuple[list[int], list[float]]:
    """At most ``points`` (step, value) pairs of a long series, for plots and results.json."""
    steps = np.unique(np.linspace(0, v.size - 1, min(points, v.size)).astype(int))
    return (steps + 1).tolist(), [float(v[s]) for s in steps]
