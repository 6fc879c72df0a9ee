from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from banditroute.bandit import LinTS, LinUCB, make_policy
from banditroute.bandit.errors import InvalidHyperparameterError

DIM = 4
finite = st.floats(-1, 1, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    X=arrays(np.float64, st.tuples(st.integers(1, 25), st.just(DIM)), elements=finite),
    q=st.lists(st.floats(0, 1), min_size=25, max_size=25),
    w=st.lists(st.floats(0.1, 5), min_size=25, max_size=25),
    ridge=st.floats(0.1, 10),
)
def test_sherman_morrison_equals_a_direct_solve(X: np.ndarray, q: list, w: list, ridge: float) -> None:
    p = LinUCB(["a", "b"], DIM, ridge=ridge)
    for i, x in enumerate(X):
        p.update(x, "a", q[i], q[i] / 10, w[i])
    A = ridge * np.eye(DIM) + (X * np.asarray(w[: len(X)])[:, None]).T @ X
    b = ridge * p._theta0 + X.T @ (np.asarray(w[: len(X)]) * np.asarray(q[: len(X)]))
    np.testing.assert_allclose(p.A_inv[0], np.linalg.inv(A), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(p.theta[0], np.linalg.solve(A, b), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(p.A[0], A, rtol=1e-12, atol=1e-12)


def test_learns_which_model_is_better_per_context() -> None:
    rng = np.random.default_rng(0)
    p = LinUCB(["left", "right"], 3, alpha=0.3, seed=0)
    for _ in range(600):
        side = rng.integers(2)
        x = np.array([1.0 if side == 0 else -1.0, 0.0, 1.0])
        d = p.select(x)
        good = (d.model == "left") == (side == 0)
        p.update(x, d.model, float(rng.random() < (0.9 if good else 0.2)), 0.0)
    assert p.select(np.array([1.0, 0, 1])).pmf[0] > 0.9
    assert p.select(np.array([-1.0, 0, 1])).pmf[1] > 0.9


def test_lambda_trades_quality_against_cost() -> None:
    p = LinUCB(["cheap", "pricey"], 2, alpha=0.0, cost_scale=1.0, explore_floor=0.0)
    x = np.array([0.0, 1.0])
    p.fit_full(np.tile(x, (200, 1)), np.tile([0.6, 0.8], (200, 1)), np.tile([0.01, 0.5], (200, 1)))
    assert p.select(x, lam=0.0).model == "pricey"
    assert p.select(x, lam=1.0).model == "cheap"  # 0.6 - 0.01 > 0.8 - 0.5


def test_discount_forgets_old_evidence() -> None:
    x = np.array([0.0, 1.0])
    keep = LinUCB(["a", "b"], 2, alpha=0.0, explore_floor=0.0)
    forget = LinUCB(["a", "b"], 2, alpha=0.0, explore_floor=0.0, discount=0.99, discount_every=10)
    for p in (keep, forget):
        for _ in range(500):
            p.update(x, "a", 1.0, 0.0)
            p.update(x, "b", 0.5, 0.0)
        for _ in range(100):  # a breaks
            p.update(x, "a", 0.0, 0.0)
            p.update(x, "b", 0.5, 0.0)
    assert keep.select(x).model == "a"  # still trusts its long memory
    assert forget.select(x).model == "b"
    # the discounted inverse is still the inverse of the discounted A
    np.testing.assert_allclose(forget.A_inv[0] @ forget.A[0], np.eye(2), atol=1e-8)


def test_thompson_propensity_is_the_sampling_distribution() -> None:
    p = LinTS(["a", "b", "c"], 2, v=1.0, n_samples=16, explore_floor=0.0, seed=1)
    x = np.array([0.3, 1.0])
    counts = np.zeros(3)
    pmfs = []
    for _ in range(3000):
        d = p.select(x)
        counts[d.index] += 1
        pmfs.append(d.pmf)
    np.testing.assert_allclose(counts / 3000, np.mean(pmfs, axis=0), atol=0.03)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("linucb", {"alpha": -1.0}, r"alpha must be in \[0.0, inf\]"),
        ("linucb", {"ridge": 0.0}, r"ridge must be in \(0.0, inf\]"),
        ("linucb", {"discount": 1.5}, r"discount must be in \(0.0, 1.0\]"),
        ("linucb", {"discount_every": 0}, "discount_every must be in"),
        ("linucb", {"explore_floor": 1.0}, r"explore_floor must be in \[0.0, 1.0\)"),
        ("linucb", {"cost_scale": 0.0}, "cost_scale must be in"),
        ("linucb", {"prior_quality": 2.0}, "prior_quality must be in"),
        ("linucb", {"alpha": float("nan")}, "alpha must be finite"),
        ("linucb", {"alpha": "big"}, "alpha must be a number"),
        ("lints", {"n_samples": 0}, "n_samples must be in"),
        ("lints", {"v": 0.0}, "v must be in"),
        ("linear-eps-greedy", {"epsilon": 1.2}, "epsilon must be in"),
        ("ucb1", {"c": -0.1}, "c must be in"),
        ("thompson", {"prior_weight": -1.0}, "prior_weight must be in"),
        ("linucb", {"seed": -3}, "seed must be in"),
        ("linucb", {"gamma": 3}, "unexpected keyword argument 'gamma'"),
        ("nosuch", {}, "unknown policy 'nosuch'"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(name: str, kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidHyperparameterError, match=match):
        make_policy(name, ["a", "b"], 3, **kwargs)


def test_models_must_be_distinct_and_dim_positive() -> None:
    with pytest.raises(InvalidHyperparameterError, match="distinct"):
        LinUCB(["a", "a"], 3)
    with pytest.raises(InvalidHyperparameterError, match="dim must be"):
        LinUCB(["a", "b"], 0)
