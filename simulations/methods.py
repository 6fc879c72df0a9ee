"""Routing methods as the offline evaluation sees them: fitted on a train split, then asked for their decision
distribution ``pmf(X, lam): (n, k)`` on test contexts. Bandit policies, baselines and agents look alike here.

The bandit policies come from the registry (``banditroute.bandit.registry``): every registered policy that
learns is fitted by default, so a new policy shows up in ``evaluate`` with no edit here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from banditroute.bandit import Policy, make_policy, registry
from banditroute.bandit.base import greedy_pmf
from banditroute.bandit.cascade import Cascade
from banditroute.env.features import Featurizer
from banditroute.simulations import stream

#: Registered policies that evaluate reports as baselines of its own (random, best_single, oracle).
#: Registered baselines that evaluate reports under its own names (random, best_single, oracle).
BASELINES = frozenset(n for n, cls in registry.POLICIES.items() if not cls.learns and cls.from_hyperparameters)
#: The registry's name of an exported RL agent (evaluated from its train-rl directory, never fitted).
ONNX_STATIC = "onnx-static"


def learning_policies() -> list[str]:
    """The methods evaluate fits by default: every registered policy, in registry order, that learns and can be
    built from hyperparameters (onnx-static needs a trained network), but the cascades, which need the records'
    answers and are evaluated by :mod:`simulations.cascade`."""
    return [
        n
        for n, cls in registry.POLICIES.items()
        if cls.from_hyperparameters and cls.learns and not issubclass(cls, Cascade)  # cascades: simulations.cascade
    ]


@dataclass(frozen=True)
class Split:
    """Queries of one part of the records: ``X: (n, d)``, ``Q, C: (n, k)``."""

    X: np.ndarray
    Q: np.ndarray
    C: np.ndarray

    def rows(self, idx: np.ndarray) -> Split:
        return Split(self.X[idx], self.Q[idx], self.C[idx])


class Router(Protocol):
    name: str
    #: True when the decisions do not depend on lambda (computed once for a whole lambda sweep).
    lam_free: bool

    def pmf(self, X: np.ndarray, lam: float) -> np.ndarray: ...

    def quality_scores(self, X: np.ndarray) -> np.ndarray | None:
        """Per-query quality scores ``(n, k)`` that rank models (None: the method has none)."""
        ...


@dataclass
class PolicyRouter:
    """A policy of the registry deciding on the evaluated contexts.

    ``features``: the policy's own view of the evaluated queries, when it is not the evaluation's featurizer
    (an RL agent sees its own featurizer's vectors of the same prompts). ``quality_estimates``: False when the
    policy's estimates are not qualities (an agent's logits or Q-values), so it has no quality ranking.
    """

    name: str
    policy: Policy
    lam_free: bool = False
    features: np.ndarray | None = None
    quality_estimates: bool = True

    def _view(self, X: np.ndarray) -> np.ndarray:
        if self.features is None:
            return X
        if self.features.shape[0] != X.shape[0]:
            raise ValueError(f"{self.name} has its own features of {self.features.shape[0]} queries, not {len(X)}")
        return self.features

    def pmf(self, X: np.ndarray, lam: float) -> np.ndarray:
        return self.policy.pmf_batch(self._view(X), lam)

    def quality_scores(self, X: np.ndarray) -> np.ndarray | None:
        return self.policy.estimates(self._view(X))[0] if self.quality_estimates else None


@dataclass
class TableRouter:
    """Greedy on fixed per-query score tables (oracle: the truth; supervised: predictions)."""

    name: str
    quality: Callable[[np.ndarray], np.ndarray]
    cost: Callable[[np.ndarray], np.ndarray]
    cost_scale: float
    lam_free: bool = False

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
    lam_free: bool = True

    def pmf(self, X: np.ndarray, lam: float) -> np.ndarray:
        return np.broadcast_to(self.probs, (X.shape[0], self.probs.shape[0])).copy()

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
    data = stream.StreamData(X, quality, cost, policy.models, policy.cost_scale)
    trace = stream.run(stream.PolicyLearner(policy.name, policy, lam), data, stream.order(len(X), len(X), seed), lam)
    return {
        "online_mean_quality": float(trace.quality.mean()),
        "steps": trace.steps,
        "seconds": trace.seconds,
    }


def baselines(fit: Split, models: tuple[str, ...], cost_scale: float) -> tuple[dict[str, Router], dict[str, Any]]:
    """Random, the best single model on ``fit``, every single model and the supervised ridge router."""
    k = len(models)
    routers: dict[str, Router] = {"random": FixedRouter("random", np.full(k, 1.0 / k))}
    best = int(np.argmax(fit.Q.mean(axis=0)))
    routers["best_single"] = FixedRouter("best_single", np.eye(k)[best])
    for j, m in enumerate(models):
        routers[f"single:{m}"] = FixedRouter(f"single:{m}", np.eye(k)[j])
    routers["supervised_ridge"] = supervised_ridge(fit.X, fit.Q, fit.C, cost_scale)
    return routers, {"best_single": {"model": models[best]}}


def learned(
    name: str, fit: Split, models: tuple[str, ...], cost_scale: float, seed: int, hyper: dict[str, Any]
) -> tuple[dict[str, Router], dict[str, Any]]:
    """The registered policy ``name`` learned two ways: ``NAME[full]`` from full-information records of ``fit``
    and ``NAME[online]`` from one seeded pass of bandit feedback over them; routers and training notes."""
    dim = fit.X.shape[1]
    full = make_policy(name, models, dim, cost_scale=cost_scale, seed=seed, **hyper)
    t0 = time.perf_counter()
    full.fit_full(fit.X, fit.Q, fit.C)
    full_notes = {"fit_seconds": round(time.perf_counter() - t0, 3), "hyperparameters": full.hyperparameters()}
    online = make_policy(name, models, dim, cost_scale=cost_scale, seed=seed, **hyper)
    info = online_pass(online, fit.X, fit.Q, fit.C, seed=seed)
    secs = info.pop("seconds")
    online_notes = {
        **info,
        "fit_seconds": round(secs, 3),
        "decisions_per_second": round(info["steps"] / secs, 1),
        "hyperparameters": online.hyperparameters(),
    }
    routers: dict[str, Router] = {
        f"{name}[full]": PolicyRouter(f"{name}[full]", full),
        f"{name}[online]": PolicyRouter(f"{name}[online]", online),
    }
    return routers, {f"{name}[full]": full_notes, f"{name}[online]": online_notes}


def rl_routers(rl_dirs: list[str], models: tuple[str, ...], test_prompts: np.ndarray) -> dict[str, Router]:
    """Agents exported by ``train-rl`` (routing env only) as the registry's onnx-static policy, each seeing its own
    featurizer's vectors of the test prompts."""
    routers: dict[str, Router] = {}
    for d in rl_dirs:
        path = Path(d)
        meta = json.loads((path / "metrics.json").read_text())
        if meta.get("models") != list(models):
            raise ValueError(f"{path}: the agent routes {meta.get('models')}, this evaluation {list(models)}")
        if meta.get("env") != "routing":
            raise ValueError(f"{path}: only agents of the routing env can be evaluated per query")
        feats = Featurizer.load(path).transform(list(test_prompts))
        agent = make_policy(
            ONNX_STATIC,
            models,
            feats.shape[1],
            onnx_model=(path / "policy.onnx").read_bytes(),
            explore_floor=0.0,  # the agent's own choices, as train-rl measured them
        )
        name = f"rl:{meta['algo']}:{path.name}"
        # lambda was fixed at training; its scores are logits or Q-values, not qualities
        routers[name] = PolicyRouter(name, agent, lam_free=True, features=feats, quality_estimates=False)
    return routers
