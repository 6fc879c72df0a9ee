"""The kNN router's estimates against a direct computation of its formula, on the one-query path (select) and
the batch path (pmf_batch / estimates), before and after the memory wraps around."""

from __future__ import annotations

import numpy as np
import pytest

from banditroute.bandit import make_policy
from banditroute.bandit.knn import KNNRouter


def _direct(p: KNNRouter, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q_hat, c_hat and the neighbourhood weight per model, straight from the docstring's formula."""
    unit = p.M / np.linalg.norm(p.M, axis=1, keepdims=True)
    sim = unit @ (x / np.linalg.norm(x))
    top = np.argsort(-sim, kind="stable")[: p.n_neighbors]
    s = np.maximum(sim[top], 0.0) ** p.sharpness
    w = s[:, None] * p.Wm[top]
    sw, sq, sc = w.sum(axis=0), (w * p.Qm[top]).sum(axis=0), (w * p.Cm[top]).sum(axis=0)
    tw, tq, tc = p.pool
    pool_q = (tq + p.shrink * p.prior_quality) / (tw + p.shrink)
    prior_q = (p.sq + p.shrink * pool_q) / (p.sw + p.shrink)
    prior_c = (p.sc + p.shrink * (tc / tw)) / (p.sw + p.shrink)
    return (sq + p.shrink * prior_q) / (sw + p.shrink), (sc + p.shrink * prior_c) / (sw + p.shrink), sw


@pytest.mark.parametrize("sharpness", [1.0, 2.0])
def test_estimates_match_the_formula_on_both_paths(sharpness: float) -> None:
    rng = np.random.default_rng(0)
    k, d = 5, 8
    p = make_policy("knn", [f"m{j}" for j in range(k)], d, n_neighbors=7, memory=40, sharpness=sharpness, alpha=0.2)
    assert isinstance(p, KNNRouter)
    X = rng.normal(size=(120, d))
    p.fit_full(X[:30], rng.random((30, k)), rng.random((30, k)) / 100)
    for i in range(30, 120):  # bandit feedback, the memory wraps around after 10 more rows
        p.update(X[i], p.models[i % k], float(rng.random()), float(rng.random()) / 100)
        probe = rng.normal(size=d)
        q, c, sw = _direct(p, probe)
        bq, bc = p.estimates(probe[None, :])
        np.testing.assert_allclose(bq[0], q, rtol=1e-10)
        np.testing.assert_allclose(bc[0], c, rtol=1e-10)
        lam = 0.5
        score = q - lam * c / p.cost_scale + p.alpha / np.sqrt(1.0 + sw)
        best = np.flatnonzero(score >= score.max() - 1e-9)
        single = p.select(probe, lam=lam).pmf
        batch = p.pmf_batch(np.vstack([probe, probe]), lam)
        np.testing.assert_allclose(single, batch[0], atol=1e-12)
        assert set(np.flatnonzero(single > p.explore_floor / k + 1e-9)) == set(best)


def test_derived_arrays_follow_arm_changes() -> None:
    rng = np.random.default_rng(1)
    p = make_policy("knn", ["a", "b"], 4, n_neighbors=3, memory=10, explore_floor=0.0, alpha=0.0)
    X = rng.normal(size=(6, 4))
    p.fit_full(X, np.tile([0.2, 0.9], (6, 1)), np.zeros((6, 2)))
    assert p.select(X[0]).model == "b"
    p.add_model("c")
    p.update_batch(X, ["c"] * 6, np.ones(6), np.zeros(6))
    assert p.select(X[0]).model == "c"
    p.remove_model("c")
    assert p.select(X[0]).model == "b"
