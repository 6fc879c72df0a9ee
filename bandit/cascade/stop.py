"""The stop-or-escalate decision: a contextual bandit over ``ACTIONS`` with one ridge regression per action.

``stop_A, stop_A_inv: (2, p, p)``, ``stop_b: (2, p)``, ``stop_n: (2,)`` regress the quality of the answer a
cascade finally returns on the stop features ``(p,)`` of :func:`.vote.stop_features`, separately after stopping
and after escalating. The decision scores ``q_stop`` against ``q_escalate - lam * next cost / cost_scale`` and
is epsilon-greedy (``stop_epsilon``), so every decision has a propensity. Rank-1 (Sherman-Morrison) updates for
one row, one re-inversion for a batch.
"""

from __future__ import annotations

import numpy as np

from banditroute.bandit.cascade.step import ESCALATE, STOP
from banditroute.bandit.pmf import greedy_pmf


class StopDecision:
    """Mixin of :class:`~banditroute.bandit.cascade.policy.Cascade`: the stop decision's arrays and math."""

    cost_scale: float
    stop_epsilon: float
    stop_ridge: float
    stop_A: np.ndarray
    stop_A_inv: np.ndarray
    stop_b: np.ndarray
    stop_n: np.ndarray

    def _init_stop(self, p: int, constant: int, prior_quality: float) -> None:
        """Prior arrays for stop contexts of width ``p``: both actions estimated at ``prior_quality`` (put on the
        ``constant`` feature)."""
        prior = np.zeros(p)
        prior[constant] = prior_quality
        self.stop_A = np.broadcast_to(self.stop_ridge * np.eye(p), (2, p, p)).copy()
        self.stop_A_inv = np.broadcast_to(np.eye(p) / self.stop_ridge, (2, p, p)).copy()
        self.stop_b = np.broadcast_to(self.stop_ridge * prior, (2, p)).copy()
        self.stop_n = np.zeros(2)

    def stop_estimates(self, Phi: np.ndarray) -> np.ndarray:
        """Estimated quality of the returned answer ``(n, 2)`` under each action, on stop contexts ``(n, p)``."""
        theta = np.einsum("apq,aq->ap", self.stop_A_inv, self.stop_b)
        est: np.ndarray = Phi @ theta.T
        return est

    def stop_pmf(self, Phi: np.ndarray, next_cost: np.ndarray, can_escalate: np.ndarray, lam: float) -> np.ndarray:
        """``(n, 2)`` distribution over ``ACTIONS`` (escalating only where a next stage exists)."""
        est = self.stop_estimates(Phi)
        est[:, ESCALATE] -= lam * next_cost / self.cost_scale
        mask = np.column_stack([np.ones(len(Phi), dtype=bool), can_escalate])
        greedy = greedy_pmf(est, mask)
        explore = mask / mask.sum(axis=1, keepdims=True)
        p: np.ndarray = (1.0 - self.stop_epsilon) * greedy + self.stop_epsilon * explore
        return p

    def _update_stop(self, Phi: np.ndarray, action: np.ndarray, quality: np.ndarray, weight: np.ndarray) -> None:
        for a in (STOP, ESCALATE):
            rows = action == a
            if not rows.any():
                continue
            P, w = Phi[rows], weight[rows]
            if P.shape[0] == 1:
                z = self.stop_A_inv[a] @ P[0]
                self.stop_A_inv[a] -= np.outer(z, z) * (w[0] / (1.0 + w[0] * float(P[0] @ z)))
            self.stop_A[a] += (P * w[:, None]).T @ P
            if P.shape[0] > 1:
                self.stop_A_inv[a] = np.linalg.inv(self.stop_A[a])
            self.stop_b[a] += P.T @ (w * quality[rows])
            self.stop_n[a] += w.sum()
