"""A full-information ridge router whose regularisation is chosen by leave-one-out error on its training records.

Per model, quality and cost are ridge regressions on the context (:class:`.linear.LinearPolicy`'s machinery and
prior); the decision is greedy on ``quality_hat - lam * cost_hat / cost_scale`` (plus an optional confidence
bonus ``alpha * sqrt(x^T A^-1 x)``). What this policy adds is the choice of ``ridge``: on the first
:meth:`fit_full` (a fresh policy), every value of ``ridge_grid`` is scored by the exact leave-one-out squared
error of the quality regressions, summed over the models (one SVD of the records' contexts serves every value and
every model: the records give every model the same contexts), and the best one is kept, as scikit-learn's
``RidgeCV`` does. The chosen value is a hyperparameter from then on (saved, exported, used by the online updates
that follow), so a restored policy is the one that was fitted.

Where the supervised baseline of ``evaluate`` (a RidgeCV per model) is a table of predictions, this is a policy:
it serves, learns online from feedback (Sherman-Morrison updates) and exports as arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from banditroute.bandit.checks import check_context, check_full_information, check_scalar
from banditroute.bandit.errors import InvalidHyperparameterError
from banditroute.bandit.linear import LinearPolicy

#: the default ``ridge_grid``: 1e-2 .. 1e3, as the supervised baseline searches
DEFAULT_GRID = tuple(float(v) for v in np.geomspace(1e-2, 1e3, 12))


def loo_errors(X: np.ndarray, Y: np.ndarray, grid: Sequence[float]) -> np.ndarray:
    """Exact leave-one-out squared error of ridge regressions of ``Y: (n, m)`` on ``X: (n, d)`` (no intercept),
    summed over the rows and columns of ``Y``, for each value of ``grid``: ``(len(grid),)``.

    With ``X = U S V^T``, the fit is ``U diag(s^2 / (s^2 + a)) U^T Y`` and the hat matrix's diagonal
    ``sum_j U_ij^2 s_j^2 / (s_j^2 + a)``; the left-out residual is ``(y_i - yhat_i) / (1 - h_ii)``. The part of
    ``X``'s row space that the SVD leaves out (``d > n``) gets weight 0, as it does in the ridge fit."""
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    UtY = U.T @ Y  # (r, m)
    s2 = s**2
    out = np.empty(len(grid))
    for i, a in enumerate(grid):
        f = s2 / (s2 + a)  # (r,)
        fitted = U @ (f[:, None] * UtY)
        h = np.einsum("ij,j,ij->i", U, f, U)
        resid = (Y - fitted) / np.maximum(1.0 - h, 1e-12)[:, None]
        out[i] = float((resid**2).sum())
    return out


class RidgeRouter(LinearPolicy):
    """Greedy per-model ridge with ``ridge`` chosen from ``ridge_grid`` by leave-one-out error on ``fit_full``.

    Args:
        ridge_grid: candidate values of ``ridge`` (each > 0); empty: keep ``ridge`` as given.
        alpha: width of an optional confidence bonus, >= 0 (0: greedy, the full-information default).
        (and :class:`.linear.LinearPolicy`'s arguments; ``ridge`` is the value in use, replaced by the choice)
    """

    name = "ridge"

    def __init__(
        self,
        models: Sequence[str],
        dim: int,
        *,
        ridge_grid: Sequence[float] = DEFAULT_GRID,
        alpha: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(models, dim, **kwargs)
        if isinstance(ridge_grid, str | bytes) or not isinstance(ridge_grid, Sequence):
            raise InvalidHyperparameterError(f"ridge_grid must be a list of numbers > 0, got {ridge_grid!r}")
        self.ridge_grid = [check_scalar(v, "ridge_grid value", low=0.0, low_inclusive=False) for v in ridge_grid]
        self.alpha = check_scalar(alpha, "alpha", low=0.0)
        self._hyper.update(ridge_grid=list(self.ridge_grid), alpha=self.alpha)

    def fit_full(self, X: Any, quality: Any, cost: Any) -> None:
        """Choose ``ridge`` (first fit of a fresh policy only), then learn every model's records."""
        if self.n_updates == 0 and len(self.ridge_grid) > 1:
            Xc = check_context(X, self.dim, batch=True)
            q, _ = check_full_information(Xc.shape[0], self.k, quality, cost)
            # the regressions shrink toward theta0 (prior_quality on the bias column): score the offsets from it
            errors = loo_errors(Xc, q - (Xc @ self._theta0)[:, None], self.ridge_grid)
            self._reset_prior(self.ridge_grid[int(np.argmin(errors))])
        super().fit_full(X, quality, cost)

    def _reset_prior(self, ridge: float) -> None:
        """Start again from the prior with ``ridge`` (only before any data has been learned)."""
        d, k = self.dim, self.k
        self.ridge = ridge
        self._hyper["ridge"] = ridge
        self.A = np.broadcast_to(ridge * np.eye(d), (k, d, d)).copy()
        self.A_inv = np.broadcast_to(np.eye(d) / ridge, (k, d, d)).copy()
        self.b = np.broadcast_to(ridge * self._theta0, (k, d)).copy()
        self._refresh_theta()

    def _pmf(self, X: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
        return self._ucb_pmf(X, mask, lam, self.alpha)
