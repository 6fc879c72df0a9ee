"""The ridge router: leave-one-out errors against refitting without each row, the choice of ``ridge`` and what a
restored policy keeps of it."""

from __future__ import annotations

import numpy as np
import pytest

from banditroute.bandit import make_policy, policy_from_state
from banditroute.bandit.errors import InvalidHyperparameterError
from banditroute.bandit.ridge import RidgeRouter, loo_errors


def _data(n: int = 60, d: int = 6, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:, -1] = 1.0
    Q = np.clip(0.5 + X @ rng.normal(size=(d, k)) * 0.2 + rng.normal(size=(n, k)) * 0.3, 0, 1)
    return X, Q, rng.random((n, k)) / 100


def test_loo_errors_equal_refitting_without_each_row() -> None:
    X, Q, _ = _data(n=25, d=8)
    grid = [0.1, 3.0]
    direct = []
    for a in grid:
        total = 0.0
        for i in range(len(X)):
            keep = np.arange(len(X)) != i
            w = np.linalg.solve(X[keep].T @ X[keep] + a * np.eye(X.shape[1]), X[keep].T @ Q[keep])
            total += float(((Q[i] - X[i] @ w) ** 2).sum())
        direct.append(total)
    np.testing.assert_allclose(loo_errors(X, Q, grid), direct, rtol=1e-8)


def test_fit_full_keeps_the_grid_value_with_the_least_loo_error_and_a_restored_policy_keeps_it() -> None:
    X, Q, C = _data()
    grid = [0.01, 1.0, 100.0, 1e4]
    p = make_policy("ridge", ["a", "b", "c"], X.shape[1], ridge_grid=grid, explore_floor=0.0)
    p.fit_full(X, Q, C)
    assert isinstance(p, RidgeRouter)
    want = grid[int(np.argmin(loo_errors(X, Q - 0.5, grid)))]  # offsets from the prior (0.5 on the bias)
    assert p.ridge == want and p.hyperparameters()["ridge"] == want
    # the fit is the ridge regression at that value, toward the prior
    theta0 = np.zeros(X.shape[1])
    theta0[-1] = 0.5
    direct = np.linalg.solve(X.T @ X + want * np.eye(X.shape[1]), X.T @ Q + want * theta0[:, None])
    np.testing.assert_allclose(p.estimates(X)[0], X @ direct, atol=1e-8)
    q = policy_from_state("ridge", p.models, p.dim, p.hyperparameters(), p.state_dict())
    np.testing.assert_allclose(q.estimates(X)[0], p.estimates(X)[0])
    q.fit_full(X, Q, C)  # a second fit adds records; it does not choose again
    assert q.ridge == want


@pytest.mark.parametrize("grid", ["1,2", [0.0], [-1.0]])
def test_bad_grid_is_refused(grid: object) -> None:
    with pytest.raises(InvalidHyperparameterError, match="ridge_grid"):
        make_policy("ridge", ["a", "b"], 3, ridge_grid=grid)
