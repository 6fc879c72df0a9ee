"""Routing methods as the offline evaluation sees them: fitted on a train split, then asked for their decision
distribution ``pmf(X, lam): (n, k)`` on test contexts. Bandit policies, baselines and agents look alike here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from banditroute.bandit import Policy, make_policy
from banditroute.bandit.base import greedy_pmf


class Router(Protocol):
    name: str

    def pmf(self, X: np.ndarray, lam: float) -> np.ndarray: ...

    def quality_scores(self, X: np.ndarray) -> np.ndarray | None:
        """Per-query quality scores ``(n, k)`` that rank models (None: the method has none)."""
        ...


@dataclass
class PolicyRouter:
    name: str
    policy: Policy

    def pmf(self, X: np.ndarray, lam: float) -> np.ndarray:
        return self.policy.pmf_batch(X, lam)

    def quality_scores(self, X: np.ndarray) -> np.ndarray | None:
        return self.policy.estimates(X)[0]


@dataclass
class TableRouter:
    """Greedy on fixed per-query score tables (oracle: the truth; supervised: predictions)."""

    name: str
    quality: Callable[[np.ndarray], np.ndarray]
    cost: Callable[[np.ndarray], np.ndarray]
    cost_scale: float

    def pmf(self, X: np.ndarray, lam: float) -> np.ndarray:
        q, c = self.quality(X), self.cost(X)
        return greedy_pmf(q - lam * c / self.cost_scale, np.ones_like(q, dtype=bool))

    def quality_scores(self, X: np.ndarray) -> np.ndarray | None:
        return self.quality(X)


@dataclass
class FixedRouter:
    """The same distribution for every query and every lambda (random, a single model)."""

    name: str
    probs: np.ndarray

    def pmf(self, X: np.ndarray, lam: float) -> np.ndarray:
        return np.broadcast_to(self.probs, (X.shape[0], self.probs.shape[0])).copy()

    def quality_scores(self, X: np.ndarray) -> np.ndarray | None:
        return None


@dataclass
class OnnxRouter:
    """An exported SB3 agent: its own featurizer and ONNX graph; lambda was fixed at training."""

    name: str
    path: Path
    prompts_to_obs: Callable[[np.ndarray], np.ndarray]
    k: int

    def pmf(self, X: np.ndarray, lam: float) -> np.ndarray:
        from banditroute.simulations.rl import onnx_actions

        actions = onnx_actions(self.path, self.prompts_to_obs(X))
        return np.eye(self.k)[actions]

    def quality_scores(self, X: np.ndarray) -> np.ndarray | None:
        return None


def supervised_ridge(X: np.ndarray, quality: np.ndarray, cost: np.ndarray, cost_scale: float) -> TableRouter:
    """RouterEval-style supervised router: per-model ridge regressors of quality and cost on the features, with
    the regularisation chosen by efficient leave-one-out CV on the training split only."""
    from sklearn.linear_model import RidgeCV

    alphas = np.geomspace(1e-2, 1e3, 12)
    rq = RidgeCV(alphas=alphas, fit_intercept=False).fit(X, quality)
    rc = RidgeCV(alphas=alphas, fit_intercept=False).fit(X, cost)
    return TableRouter(
        "supervised_ridge",
        quality=lambda Z: np.asarray(rq.predict(Z)),
        cost=lambda Z: np.maximum(np.asarray(rc.predict(Z)), 0.0),
        cost_scale=cost_scale,
    )


def online_pass(
    policy: Policy, X: np.ndarray, quality: np.ndarray, cost: np.ndarray, seed: int, lam: float = 0.0
) -> dict[str, Any]:
    """One seeded pass over the training queries with bandit feedback only (the chosen model's score and cost);
    returns the pass's own figures (its mean quality is the online reward)."""
    order = np.random.default_rng(seed).permutation(X.shape[0])
    got = np.empty(order.size)
    for t, i in enumerate(order):
        d = policy.select(X[i], lam=lam)
        got[t] = quality[i, d.index]
        policy.update(X[i], d.model, quality[i, d.index], cost[i, d.index])
    return {"online_mean_quality": float(got.mean()), "steps": int(order.size)}


def build_policy(
    name: str, models: tuple[str, ...], dim: int, cost_scale: float, seed: int, hyper: dict[str, Any] | None = None
) -> Policy:
    return make_policy(name, models, dim, cost_scale=cost_scale, seed=seed, **(hyper or {}))
