"""The one select -> reward -> update driver: records replayed as a stream of queries, where a learner sees only
the feedback on the model it chose.

Every simulation that lets a policy learn from its own choices goes through :func:`run`: evaluate's online pass,
the scenarios (online, feedback noise, drift, budget, the A/B in-process twins) and the logging policy of the OPE
coverage check. What differs between them is a :class:`Learner` adapter (a policy at a fixed lambda, a budget
pacer, an outside library) or a :class:`FeedbackChannel` (noisy, late or lost feedback), never the loop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from banditroute.bandit import BudgetPacer, Policy


@dataclass(frozen=True)
class StreamData:
    """Arrays of the queries a stream draws from: ``X: (n, d)``, ``Q, C: (n, k)`` with columns ``models``."""

    X: np.ndarray
    Q: np.ndarray
    C: np.ndarray
    models: tuple[str, ...]
    cost_scale: float


@dataclass(frozen=True)
class Feedback:
    """One observation to apply: the answer of data column ``a`` to query row ``i``."""

    i: int
    a: int
    quality: float
    cost: float
    propensity: float
    weight: float = 1.0


@dataclass(frozen=True)
class Trace:
    """What a run did, step by step: ``chosen`` data columns, their ``propensity``, the true recorded
    ``quality`` and ``cost`` of each choice and the cumulative ``regret`` against the per-query best reward
    ``quality - lam * cost / cost_scale`` (all ``(steps,)``); ``seconds`` of wall time in the loop."""

    chosen: np.ndarray
    propensity: np.ndarray
    quality: np.ndarray
    cost: np.ndarray
    regret: np.ndarray
    seconds: float

    @property
    def steps(self) -> int:
        return int(self.chosen.size)

    @property
    def decisions_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("inf")


class Learner(Protocol):
    """What the driver needs of a learner; ``idx`` is a column of the stream's data."""

    name: str

    def select(self, x: np.ndarray) -> tuple[int, float]:
        """(chosen model's column, its propensity)."""
        ...

    def update(
        self, x: np.ndarray, idx: int, quality: float, cost: float, propensity: float, weight: float = 1.0
    ) -> None: ...


class FeedbackChannel(Protocol):
    """How the true outcome of a decision reaches the learner (when it is not at once and exact)."""

    def send(self, t: int, i: int, a: int, quality: float, cost: float, propensity: float) -> None:
        """Step ``t`` chose column ``a`` for query ``i``; ``quality`` and ``cost`` are the recorded truth."""
        ...

    def due(self, t: int) -> Sequence[Feedback]:
        """The feedback to apply before step ``t`` decides, in order."""
        ...


class PolicyLearner:
    """One of our policies as a stream learner (lambda fixed for the run).

    Args:
        name: label in results.
        policy: the policy; it is updated in place.
        lam: the price of cost it decides at.
        learn: False: feedback is ignored (a static baseline).
        columns: the data's model columns when they differ from the policy's models (a policy that routes to a
            subset, or gains a model mid-stream); choices are matched by model name.
    """

    def __init__(
        self, name: str, policy: Policy, lam: float = 0.0, learn: bool = True, columns: Sequence[str] | None = None
    ) -> None:
        self.name, self.policy, self.lam, self.learn = name, policy, lam, learn
        self.columns = tuple(columns) if columns is not None else None
        self._column = {m: j for j, m in enumerate(self.columns or ())}

    def select(self, x: np.ndarray) -> tuple[int, float]:
        d = self.policy.select(x, lam=self.lam)
        return (d.index if self.columns is None else self._column[d.model]), d.propensity

    def update(
        self, x: np.ndarray, idx: int, quality: float, cost: float, propensity: float, weight: float = 1.0
    ) -> None:
        if self.learn:
            model = self.policy.models[idx] if self.columns is None else self.columns[idx]
            self.policy.update(x, model, quality, cost, weight)


class PacedLearner:
    """A policy under a :class:`BudgetPacer`: the pacer sets lambda; ``lams`` records it at every decision."""

    def __init__(self, name: str, pacer: BudgetPacer) -> None:
        self.name, self.pacer = name, pacer
        self.lams: list[float] = []

    def select(self, x: np.ndarray) -> tuple[int, float]:
        d = self.pacer.select(x)
        self.lams.append(self.pacer.lam)
        return d.index, d.propensity

    def update(
        self, x: np.ndarray, idx: int, quality: float, cost: float, propensity: float, weight: float = 1.0
    ) -> None:
        self.pacer.update(x, self.pacer.policy.models[idx], quality, cost, weight)


def order(n: int, steps: int, seed: int) -> np.ndarray:
    """Query indices of a stream: a seeded permutation, repeated (reshuffled) if the stream is longer."""
    rng = np.random.default_rng(seed)
    reps = -(-steps // n)
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:steps]


def run(
    learner: Learner,
    data: StreamData,
    idx: np.ndarray,
    lam: float = 0.0,
    feedback: FeedbackChannel | None = None,
) -> Trace:
    """Replay the queries ``idx`` through ``learner``: it selects, the chosen model's recorded quality and cost
    are its reward, and it updates on them.

    Args:
        learner: a :class:`Learner`.
        data: the queries and every model's recorded quality and cost.
        idx: ``(steps,)`` rows of ``data``, in stream order (see :func:`order`).
        lam: the price of cost in the regret (what the learner decides at is its own business).
        feedback: None: the exact outcome is applied right after each decision. Otherwise the channel gets each
            outcome and says what to apply before each decision; feedback still pending at the end is dropped.
    """
    n = idx.size
    chosen = np.empty(n, dtype=np.int64)
    prop = np.empty(n)
    t0 = time.perf_counter()
    for t, i in enumerate(idx):
        if feedback is not None:
            for f in feedback.due(t):
                learner.update(data.X[f.i], f.a, f.quality, f.cost, f.propensity, f.weight)
        a, p = learner.select(data.X[i])
        chosen[t], prop[t] = a, p
        q, c = float(data.Q[i, a]), float(data.C[i, a])
        if feedback is None:
            learner.update(data.X[i], a, q, c, p)
        else:
            feedback.send(t, int(i), a, q, c, p)
    secs = time.perf_counter() - t0
    q = data.Q[idx, chosen]
    c = data.C[idx, chosen]
    reward = q - lam * c / data.cost_scale
    best = (data.Q[idx] - lam * data.C[idx] / data.cost_scale).max(axis=1)
    return Trace(chosen, prop, q, c, np.cumsum(best - reward), secs)


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
