"""One decision (``select``, the served case) takes shortcuts the batch path does not: a float32 copy of the
linear policies' inverses, a one-hot greedy distribution, cached candidate rows, quick input checks. Each must
give what the batch path gives, and the copy must follow every change of the state it is copied from."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banditroute.bandit import make_policy
from banditroute.bandit.base import Policy
from banditroute.bandit.checks import check_context, check_lam
from banditroute.bandit.errors import InvalidInputError
from banditroute.bandit.linear import LinearPolicy
from banditroute.bandit.pmf import greedy_pmf, uniform_pmf

DIM, MODELS = 6, ["a", "b", "c", "d"]


def _contexts(n: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).normal(size=(n, DIM))
    X[:, -1] = 1.0
    return X


def _linear_head(p: Policy) -> LinearPolicy:
    head = getattr(p, "head", p)  # neural-linear decides with a linear head on its representation
    assert isinstance(head, LinearPolicy)
    return head


def _assert_widths_match(p: Policy, X: np.ndarray) -> None:
    """The float32 widths of one decision equal the float64 batch widths, context by context."""
    head = _linear_head(p)
    Z = p._phi(X) if hasattr(p, "_phi") else X
    batch = head._variance(Z)  # two or more rows: the float64 path
    for i, z in enumerate(Z):
        one = head._variance(z[None])[0]
        assert one.dtype == np.float64
        np.testing.assert_allclose(one, batch[i], rtol=2e-4, atol=1e-7)


def _changes(p: Policy, other: Policy) -> list[tuple[str, Callable[[], None]]]:
    X = _contexts(40, 1)
    rng = np.random.default_rng(2)
    return [
        ("one update", lambda: p.update(X[0], "b", 0.9, 0.01)),
        ("another model's update", lambda: p.update(X[1], "d", 0.1, 0.02)),
        ("a batch", lambda: p.update_batch(X[2:12], ["a", "c"] * 5, rng.random(10), rng.random(10) / 100)),
        ("a full-information fit", lambda: p.fit_full(X[12:30], rng.random((18, p.k)), rng.random((18, p.k)) / 100)),
        ("a model added", lambda: p.add_model("e")),
        ("a model learned", lambda: p.update(X[30], "e", 0.7, 0.01)),
        ("a model removed", lambda: p.remove_model("b")),
        ("a state loaded", lambda: p.load_state_dict(other.state_dict())),
    ]


@pytest.mark.parametrize(
    ("name", "hyper"),
    [
        ("linucb", {"alpha": 0.5}),
        ("linucb", {"alpha": 0.5, "discount": 0.9, "discount_every": 3}),
        ("lints", {}),
        ("shared-linucb", {}),
        ("ridge", {"alpha": 0.3, "ridge_grid": []}),
        ("neural-linear", {"refit_every": 5, "epochs": 2}),
    ],
)
def test_one_decisions_widths_follow_every_change_of_the_inverses(name: str, hyper: dict) -> None:
    p = make_policy(name, MODELS, DIM, seed=0, **hyper)
    other = make_policy(name, MODELS, DIM, seed=1, **hyper)
    other.fit_full(_contexts(30, 3), np.random.default_rng(4).random((30, 4)), np.zeros((30, 4)))
    probes = _contexts(5, 9)
    for what, change in _changes(p, other):
        p.select(probes[0])  # the float32 copy exists before the change: it must follow it, not be rebuilt
        change()
        try:
            _assert_widths_match(p, probes)
        except AssertionError as exc:
            raise AssertionError(f"after {what}: {exc}") from None
        if name != "lints":  # Thompson sampling's distribution is itself a draw
            np.testing.assert_array_equal(p.select(probes[1]).pmf, p.pmf_batch(probes[1:3])[0])


@settings(max_examples=300, deadline=None)
@given(
    scores=st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.5 + 1e-14, 1.0, -1.0, np.inf, -np.inf]), min_size=1, max_size=7),
    candidates=st.lists(st.booleans(), min_size=7, max_size=7),
)
def test_greedy_of_one_decision_equals_the_batch_rule(scores: list[float], candidates: list[bool]) -> None:
    s = np.array(scores)
    mask = np.array(candidates[: len(s)])
    if not mask.any():
        mask[0] = True
    pair = np.vstack([s, s])
    for m in (mask, np.ones_like(mask)):  # some candidates; every model (the one-decision path skips the mask)
        np.testing.assert_array_equal(greedy_pmf(s[None], m[None])[0], greedy_pmf(pair, np.vstack([m, m]))[0])
    np.testing.assert_array_equal(uniform_pmf(mask[None])[0], uniform_pmf(np.vstack([mask, mask]))[0])


def test_the_candidate_row_follows_the_pool_and_cannot_be_written() -> None:
    p = make_policy("linucb", MODELS, DIM, explore_floor=0.2)
    x = _contexts(1, 0)[0]
    p.update(x, "a", 1.0, 0.0)  # one best model: the rest get the floor only
    assert p.select(x).pmf.min() == pytest.approx(0.2 / 4)
    p.add_model("e")
    d = p.select(x)
    assert d.pmf.shape == (5,) and d.pmf.min() == pytest.approx(0.2 / 5)
    row, floor = p._candidate_row(None)
    with pytest.raises(ValueError, match="read-only"):
        row[0, 0] = False
    with pytest.raises(ValueError, match="read-only"):
        floor[0, 0] = 1.0
    only = p.select(x, candidates=["a", "c"])
    assert set(only.pmf_dict()) <= {"a", "c"} and min(only.pmf_dict().values()) >= 0.2 / 2 - 1e-12


def test_checks_of_one_decision_refuse_what_the_full_checks_refuse() -> None:
    x = np.ones(DIM)
    assert check_context(x, DIM) is x
    big = np.full(DIM, 1e308)  # finite entries whose sum overflows: still a valid context
    np.testing.assert_array_equal(check_context(big, DIM), big)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[2] = bad
        with pytest.raises(InvalidInputError, match="NaN or infinite"):
            check_context(y, DIM)
    with pytest.raises(InvalidInputError, match="shape"):
        check_context(np.ones(DIM + 1), DIM)
    assert check_context(np.ones(DIM, dtype=np.float32), DIM).dtype == np.float64
    assert check_lam(0.5) == 0.5 and check_lam(2) == 2.0
    for lam in (float("nan"), -0.1, float("inf"), True):
        with pytest.raises(InvalidInputError, match="lam"):
            check_lam(lam)


def test_neural_linear_representation_follows_retraining() -> None:
    p = make_policy("neural-linear", MODELS, DIM, seed=0, refit_every=4, epochs=2)
    X = _contexts(12, 5)

    def expected(Z: np.ndarray) -> np.ndarray:
        return np.hstack([np.maximum(Z @ p.W1 + p.b1, 0.0), np.ones((Z.shape[0], 1))])

    np.testing.assert_allclose(p._phi(X), expected(X))
    before = p.W1
    for x in X[:8]:
        p.update(x, "a", 0.5, 0.0)
    assert p.W1 is not before  # retrained twice
    np.testing.assert_allclose(p._phi(X), expected(X))
