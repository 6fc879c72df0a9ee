"""Linear bandits whose models share what they learn: every model's regression is shrunk toward a pooled one.

A plain per-model ridge (:mod:`.linear`) starts every model from the same fixed prior and learns it from that
model's own feedback only; with 30 models and bandit feedback each model sees a thirtieth of the traffic.
Here one pooled regression is fitted on *every* observation (whichever model answered), and model ``j``'s
regression is a ridge toward it::

    theta_pool = A0^-1 b0,         A0 = ridge0 I + sum_all w x x^T,   b0 = ridge0 theta0 + sum_all w q x
    theta_j    = A_j^-1 (b_j + ridge theta_pool),   A_j = ridge I + sum_j w x x^T,   b_j = sum_j w q x

(the same for cost), the hierarchical prior of LinUCB-hybrid / multi-task ridge. ``ridge`` is how many
observations of a model it takes to move it away from the pool. A model added at runtime starts at the pool's
estimate for the context, not at a fixed prior; feedback on one model moves the pool and so every model's
estimate where it has little data of its own. The confidence width stays ``sqrt(x^T A_j^-1 x)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from banditroute.bandit.checks import check_scalar
from banditroute.bandit.linear import LinearPolicy, LinTS, LinUCB


class SharedLinear(LinearPolicy):
    """Per-model ridge regressions shrunk toward a pooled regression (not registered itself).

    Args:
        pool_ridge: prior precision of the pooled regression, > 0.
        (and :class:`LinearPolicy`'s arguments; ``ridge`` is the pull of each model toward the pool)
    """

    _SHARED = ("A0", "A0_inv", "b0", "bc0")
    _DERIVED = (("A_inv", "A"), ("A0_inv", "A0"))

    def __init__(self, models: Sequence[str], dim: int, *, pool_ridge: float = 1.0, **kwargs: Any) -> None:
        self.pool_ridge = check_scalar(pool_ridge, "pool_ridge", low=0.0, low_inclusive=False)
        d = int(dim)
        theta0 = np.zeros(d)
        theta0[-1] = float(kwargs.get("prior_quality", 0.5))
        self.A0 = self.pool_ridge * np.eye(d)
        self.A0_inv = np.eye(d) / self.pool_ridge
        self.b0 = self.pool_ridge * theta0
        self.bc0 = np.zeros(d)
        super().__init__(models, dim, **kwargs)
        self._hyper["pool_ridge"] = self.pool_ridge
        self.b = np.zeros_like(self.b)  # per-model evidence only: the prior comes from the pool
        self._refresh_theta()

    # ---- estimates -------------------------------------------------------------------------------------
    def _refresh_theta(self, j: int | None = None) -> None:
        pool = self.A0_inv @ self.b0
        pool_c = self.A0_inv @ self.bc0
        # every model's estimate depends on the pool, so a single-arm refresh is a full one here
        self.theta = np.einsum("kde,ke->kd", self.A_inv, self.b + self.ridge * pool)
        self.theta_c = np.einsum("kde,ke->kd", self.A_inv, self.bc + self.ridge * pool_c)

    # ---- learning --------------------------------------------------------------------------------------
    def _update_arm(self, X: np.ndarray, j: int, quality: np.ndarray, cost: np.ndarray, weight: np.ndarray) -> None:
        if X.shape[0] == 1:
            x, w = X[0], float(weight[0])
            ax = self.A0_inv @ x
            self.A0_inv -= np.outer(ax, ax) * (w / (1.0 + w * float(x @ ax)))
            self.A0 += w * np.outer(x, x)
        else:
            self.A0 += (X * weight[:, None]).T @ X
            self.A0_inv = np.linalg.inv(self.A0).astype(np.float64)
        self.b0 += X.T @ (weight * quality)
        self.bc0 += X.T @ (weight * cost)
        super()._update_arm(X, j, quality, cost, weight)

    def _apply_discount(self, g: float) -> None:
        d = self.dim
        theta0 = np.zeros(d)
        theta0[-1] = self.prior_quality
        self.A0 = g * self.A0 + (1.0 - g) * self.pool_ridge * np.eye(d)
        self.A0_inv = np.linalg.inv(self.A0).astype(np.float64)
        self.b0 = g * self.b0 + (1.0 - g) * self.pool_ridge * theta0
        self.bc0 *= g
        eye = np.eye(d)
        self.A = g * self.A + (1.0 - g) * self.ridge * eye
        self.b *= g
        self.bc *= g
        self.n *= g
        self.A_inv = np.linalg.inv(self.A).astype(np.float64)
        self._refresh_theta()

    # ---- arms --------------------------------------------------------------------------------------------
    def _new_arm(self) -> None:
        super()._new_arm()
        self.b[-1] = 0.0  # a new model's own evidence is empty; its estimate is the pool's
        self._refresh_theta()

    # ---- state -------------------------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        return {**super()._arrays(), **{name: getattr(self, name) for name in self._SHARED}}

    def _array_shapes(self, k: int) -> dict[str, tuple[int, ...]]:
        d = self.dim
        shared = {"A0": (d, d), "A0_inv": (d, d), "b0": (d,), "bc0": (d,)}
        per_arm = {name: (k, *a.shape[1:]) for name, a in super()._arrays().items()}
        return {**per_arm, **shared}

    def _arm_axes(self) -> dict[str, int | None]:
        return {**super()._arm_axes(), **dict.fromkeys(self._SHARED)}

    def _set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        for name, a in arrays.items():
            setattr(self, name, a)
        self._refresh_theta()


class SharedLinUCB(SharedLinear, LinUCB):
    """LinUCB on regressions shrunk toward the pool (see the module docstring).

    Defaults ``alpha=0.5, ridge=4``: chosen for a cold online pass on the training splits only (one pass on 70% of
    each of mmlu_pro-29's train splits, seeds 0-4, scored on the other 30%; a 4 x 3 grid of alpha and ridge).
    """

    name = "shared-linucb"

    def __init__(
        self, models: Sequence[str], dim: int, *, alpha: float = 0.5, ridge: float = 4.0, **kwargs: Any
    ) -> None:
        super().__init__(models, dim, alpha=alpha, ridge=ridge, **kwargs)


class SharedLinTS(SharedLinear, LinTS):
    """Linear Thompson sampling on regressions shrunk toward the pool (see the module docstring)."""

    name = "shared-lints"
