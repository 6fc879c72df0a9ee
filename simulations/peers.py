"""Outside learners on the same stream and features: Vowpal Wabbit's ``--cb_explore_adf`` (squarecb and
epsilon-greedy) and MABWiser's LinUCB. Each is optional (``pip install 'banditroute[peers]'``); a missing one is
reported as skipped, never faked."""

from __future__ import annotations

from typing import Any

import numpy as np


class VWLearner:
    """Vowpal Wabbit contextual bandit with action-dependent features: shared namespace U (the query features),
    action namespace A (the model's id), quadratic U x A interactions. VW minimises cost, so cost = -reward."""

    def __init__(self, k: int, mode: str, seed: int, lam: float = 0.0, cost_scale: float = 1.0) -> None:
        import vowpalwabbit

        explore = "--squarecb" if mode == "squarecb" else "--epsilon 0.05"
        self.name = f"vw-{mode}"
        self.vw = vowpalwabbit.Workspace(f"--cb_explore_adf {explore} -q UA --quiet --random_seed {seed}")
        self.k, self.lam, self.cost_scale = k, lam, cost_scale
        self.rng = np.random.default_rng(seed)
        self._actions = [f"|A m{j}" for j in range(k)]

    def _lines(self, x: np.ndarray, label: tuple[int, float, float] | None = None) -> list[str]:
        shared = "shared |U " + " ".join(f"f{j}:{v:.6g}" for j, v in enumerate(x) if v != 0.0)
        lines = [shared, *self._actions]
        if label is not None:
            a, cost, p = label
            lines[a + 1] = f"0:{cost:.6g}:{p:.6g} {self._actions[a]}"
        return lines

    def select(self, x: np.ndarray) -> tuple[int, float]:
        pmf = np.asarray(self.vw.predict(self._lines(x)), dtype=float)
        pmf = pmf / pmf.sum()
        a = int(self.rng.choice(self.k, p=pmf))
        return a, float(pmf[a])

    def update(
        self, x: np.ndarray, idx: int, quality: float, cost: float, propensity: float, weight: float = 1.0
    ) -> None:
        _unweighted(self.name, weight)
        reward = quality - self.lam * cost / self.cost_scale
        self.vw.learn(self._lines(x, (idx, -reward, max(propensity, 1e-6))))

    def warm_start(self, X: np.ndarray, Q: np.ndarray, C: np.ndarray) -> None:
        """Full-information warm start: every model's reward on every row, each as a certain (p = 1) example."""
        for x, q, c in zip(X, Q, C, strict=True):
            for a in range(self.k):
                reward = q[a] - self.lam * c[a] / self.cost_scale
                self.vw.learn(self._lines(x, (a, -float(reward), 1.0)))

    def close(self) -> None:
        self.vw.finish()


class MABWiserLinUCB:
    """MABWiser's LinUCB, fitted on the first observation and updated with ``partial_fit`` (it reports no
    propensities: logged as 1.0)."""

    def __init__(self, k: int, seed: int, alpha: float = 0.5, lam: float = 0.0, cost_scale: float = 1.0) -> None:
        from mabwiser.mab import MAB, LearningPolicy

        self.name = "mabwiser-linucb"
        self.mab = MAB(arms=list(range(k)), learning_policy=LearningPolicy.LinUCB(alpha=alpha), seed=seed)
        self.k, self.lam, self.cost_scale = k, lam, cost_scale
        self.fitted = False
        self.rng = np.random.default_rng(seed)

    def warm_start(self, X: np.ndarray, Q: np.ndarray, C: np.ndarray) -> None:
        """Full-information warm start: every model's reward on every row."""
        n, k = Q.shape
        decisions = np.tile(np.arange(k), n)
        rewards = (Q - self.lam * C / self.cost_scale).reshape(-1)
        self.mab.fit(decisions.tolist(), rewards.tolist(), np.repeat(X, k, axis=0))
        self.fitted = True

    def select(self, x: np.ndarray) -> tuple[int, float]:
        if not self.fitted:
            return int(self.rng.integers(self.k)), 1.0 / self.k
        return int(self.mab.predict([x])), 1.0

    def update(
        self, x: np.ndarray, idx: int, quality: float, cost: float, propensity: float, weight: float = 1.0
    ) -> None:
        _unweighted(self.name, weight)
        reward = quality - self.lam * cost / self.cost_scale
        if self.fitted:
            self.mab.partial_fit([idx], [reward], [x])
        else:
            self.mab.fit([idx], [reward], [x])
            self.fitted = True


def _unweighted(name: str, weight: float) -> None:
    if weight != 1.0:
        raise ValueError(f"{name} takes no feedback weights (got weight {weight}); run it with exact feedback")


def make_peers(names: list[str], k: int, seed: int, lam: float, cost_scale: float) -> tuple[list[Any], dict[str, str]]:
    """The peers that are installed, and for the others why they were skipped."""
    peers: list[Any] = []
    skipped: dict[str, str] = {}
    for name in names:
        try:
            if name in ("vw-squarecb", "vw-epsilon"):
                peers.append(VWLearner(k, name[3:], seed, lam, cost_scale))
            elif name == "mabwiser-linucb":
                peers.append(MABWiserLinUCB(k, seed, lam=lam, cost_scale=cost_scale))
            else:
                skipped[name] = "unknown peer"
        except ImportError as exc:
            skipped[name] = f"not installed ({exc.name}): pip install 'banditroute[peers]'"
    return peers, skipped
