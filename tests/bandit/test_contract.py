"""Every registered policy honours the contract of bandit.base (onnx-static, built from a network rather than
hyperparameters, has its own tests in test_onnx_static.py)."""

from __future__ import annotations

import numpy as np
import pytest

from banditroute.bandit import POLICIES, Oracle, Policy, make_policy
from banditroute.bandit.errors import InvalidInputError, StateError, UnknownModelError

BUILDABLE = sorted(n for n, cls in POLICIES.items() if cls.from_hyperparameters)

MODELS = ["cheap", "mid", "pricey", "best"]
DIM = 5


def contexts(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, DIM)) / 2
    x[:, -1] = 1.0
    return x


def new(name: str, **kw) -> Policy:
    return make_policy(name, MODELS, DIM, seed=7, **kw)


def prepare(p: Policy, n: int = 1, seed: int = 0) -> None:
    if isinstance(p, Oracle):
        rng = np.random.default_rng(seed)
        p.reveal(rng.random((n, p.k)), rng.random((n, p.k)))


def train(p: Policy, n: int = 40) -> None:
    rng = np.random.default_rng(1)
    X = contexts(n, 1)
    for i in range(n):
        j = i % p.k
        p.update(X[i], p.models[j], float(rng.random()), 0.001 * (j + 1))


@pytest.fixture(params=BUILDABLE)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_distribution_is_valid_and_propensity_is_of_the_choice(name: str) -> None:
    p = new(name)
    train(p)
    for lam in (0.0, 0.5, 5.0):
        for x in contexts(20, 2):
            prepare(p)
            d = p.select(x, lam=lam)
            assert d.pmf.shape == (len(MODELS),)
            assert np.all(d.pmf >= 0)
            assert d.pmf.sum() == pytest.approx(1.0)
            assert d.propensity == pytest.approx(d.pmf[d.index]) and d.propensity > 0
            assert d.model == MODELS[d.index] and d.lam == lam


def test_every_candidate_has_positive_probability_with_a_floor(name: str) -> None:
    if name == "oracle":
        pytest.skip("the oracle never explores")
    p = new(name, explore_floor=0.04)
    train(p)
    prepare(p, 10)
    pmf = p.pmf_batch(contexts(10), lam=1.0)
    assert np.all(pmf >= 0.04 / len(MODELS) - 1e-12)


def test_candidate_restriction_is_honoured(name: str) -> None:
    p = new(name)
    train(p)
    for x in contexts(30, 3):
        prepare(p)
        d = p.select(x, candidates=["cheap", "pricey"])
        assert d.model in ("cheap", "pricey")
        assert set(d.pmf_dict()) <= {"cheap", "pricey"}
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        p.select(contexts(1)[0], candidates=["nope"])
    with pytest.raises(UnknownModelError, match="at least one"):
        p.select(contexts(1)[0], candidates=[])


def test_update_moves_the_estimate(name: str) -> None:
    p = new(name)
    x = contexts(1)[0]
    q0, c0 = p.estimates(x[None])
    for _ in range(5):
        p.update(x, "mid", 1.0, 0.02)
    q1, c1 = p.estimates(x[None])
    j = MODELS.index("mid")
    assert q1[0, j] > q0[0, j]
    assert c1[0, j] > c0[0, j]
    assert p.n_updates == 5


def test_state_round_trip_is_exact(name: str) -> None:
    p = new(name)
    train(p)
    for x in contexts(3, 9):  # move p's generator away from its seed: the state must carry it
        prepare(p)
        p.select(x)
    clone = make_policy(name, MODELS, DIM, seed=123)
    clone.load_state_dict(p.state_dict())
    a, b = p.state_dict(), clone.state_dict()
    assert a["meta"] == b["meta"]
    for k in a["arrays"]:
        np.testing.assert_array_equal(a["arrays"][k], b["arrays"][k])
    X = contexts(15, 4)
    prepare(p, 15)
    prepare(clone, 15)
    np.testing.assert_array_equal(p.pmf_batch(X, 0.3), clone.pmf_batch(X, 0.3))
    for x in X:  # identical generator state: identical sampled choices
        prepare(p)
        prepare(clone)
        assert p.select(x).model == clone.select(x).model


def test_same_seed_same_decisions(name: str) -> None:
    def run(seed: int) -> list[str]:
        p = make_policy(name, MODELS, DIM, seed=seed)
        out = []
        for i, x in enumerate(contexts(60, 5)):
            prepare(p, seed=i)
            d = p.select(x, lam=0.2)
            p.update(x, d.model, float(i % 3 == 0), 0.001)
            out.append(d.model)
        return out

    assert run(3) == run(3)


def test_models_added_and_removed_at_runtime(name: str) -> None:
    p = new(name)
    train(p)
    p.add_model("newcomer")
    assert p.models[-1] == "newcomer"
    prepare(p)
    d = p.select(contexts(1)[0], candidates=["newcomer"])
    assert d.model == "newcomer" and d.propensity == pytest.approx(1.0)
    p.update(contexts(1)[0], "newcomer", 1.0, 0.0)
    p.remove_model("pricey")
    assert "pricey" not in p.models and len(p.models) == 4
    prepare(p)
    assert p.select(contexts(1)[0]).model != "pricey"
    with pytest.raises(InvalidInputError, match="already"):
        p.add_model("best")
    with pytest.raises(UnknownModelError):
        p.remove_model("pricey")
    clone = make_policy(name, p.models, DIM)
    clone.load_state_dict(p.state_dict())  # the state carries the new model list
    assert clone.models == p.models


BAD_INPUTS = [
    ("NaN context", lambda p, x: p.select(np.full(DIM, np.nan)), InvalidInputError, "NaN"),
    ("wrong dimension", lambda p, x: p.select(np.ones(DIM + 1)), InvalidInputError, r"shape \(dim,\) with dim=5"),
    ("unknown model", lambda p, x: p.update(x, "gpt-9", 0.5, 0.1), UnknownModelError, "unknown model 'gpt-9'"),
    ("quality above 1", lambda p, x: p.update(x, "mid", 1.5, 0.1), InvalidInputError, r"quality must be in \[0, 1\]"),
    ("NaN quality", lambda p, x: p.update(x, "mid", float("nan"), 0.1), InvalidInputError, "quality must be a finite"),
    ("negative cost", lambda p, x: p.update(x, "mid", 0.5, -1.0), InvalidInputError, "cost must be >= 0"),
    ("zero weight", lambda p, x: p.update(x, "mid", 0.5, 0.1, 0.0), InvalidInputError, "weight must be > 0"),
    ("negative lambda", lambda p, x: p.select(x, lam=-1.0), InvalidInputError, "lam must be"),
    (
        "batch lengths",
        lambda p, x: p.update_batch(x[None], ["mid", "mid"], [1, 1], [0, 0]),
        InvalidInputError,
        "length",
    ),
]


@pytest.mark.parametrize(("case", "call", "err", "match"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_name_the_problem_and_change_nothing(name: str, case: str, call, err, match: str) -> None:
    p = new(name)
    train(p, 8)
    before = p.state_dict()
    with pytest.raises(err, match=match):
        call(p, contexts(1)[0])
    after = p.state_dict()
    for k in before["arrays"]:
        np.testing.assert_array_equal(before["arrays"][k], after["arrays"][k])
    assert before["meta"]["n_updates"] == after["meta"]["n_updates"]


def test_load_state_refuses_misfits(name: str) -> None:
    p = new(name)
    state = p.state_dict()
    other = "linucb" if name != "linucb" else "ucb1"
    with pytest.raises(StateError, match="is of policy"):
        make_policy(other, MODELS, DIM).load_state_dict(state)
    bad = {"meta": state["meta"], "arrays": {k: v[:1] for k, v in state["arrays"].items()}}
    with pytest.raises(StateError, match="shape"):
        p.load_state_dict(bad)
    with pytest.raises(StateError, match="'meta' and 'arrays'"):
        p.load_state_dict({"arrays": {}})


def test_batch_update_equals_sequential_in_estimates(name: str) -> None:
    a, b = new(name), new(name)
    X = contexts(30, 6)
    rng = np.random.default_rng(0)
    models = [MODELS[i % 4] for i in range(30)]
    q, c = rng.random(30), rng.random(30) / 100
    for i in range(30):
        a.update(X[i], models[i], q[i], c[i])
    b.update_batch(X, models, q, c)
    qa, ca = a.estimates(X)
    qb, cb = b.estimates(X)
    np.testing.assert_allclose(qa, qb, atol=1e-9)
    np.testing.assert_allclose(ca, cb, atol=1e-9)


def test_within_cost_keeps_the_candidates_estimated_under_the_cap(name: str) -> None:
    p = new(name)
    x = contexts(1)[0]
    for j, m in enumerate(MODELS):  # learned costs 0.001, 0.002, 0.003, 0.004
        for _ in range(20):
            p.update(x, m, 0.5, 0.001 * (j + 1))
    cost = p.estimates(x[None])[1][0]
    cap = float(np.sort(cost)[1]) + 1e-12  # the two cheapest fit
    within = p.within_cost(x, cap)
    assert within == [m for j, m in enumerate(MODELS) if cost[j] <= cap] and len(within) == 2
    assert p.within_cost(x, cap, candidates=["pricey", "mid", "best"]) == [
        m for m in MODELS if m in ("pricey", "mid", "best") and cost[MODELS.index(m)] <= cap
    ]
    # nothing fits: the candidate estimated cheapest, so a request is never left without a model
    assert p.within_cost(x, 1e-9, candidates=["best", "pricey"]) == ["pricey"]
    with pytest.raises(InvalidInputError, match="max_cost must be > 0"):
        p.within_cost(x, 0.0)
    with pytest.raises(UnknownModelError):
        p.within_cost(x, 1.0, candidates=["nope"])


def test_warm_start_aligns_the_learned_state_to_the_new_models(name: str) -> None:
    source = new(name)
    train(source)
    target = make_policy(name, ["best", "newbie", "cheap"], DIM, seed=1)
    fresh = make_policy(name, ["newbie"], DIM, seed=1)
    target.warm_start(source)
    assert target.models == ("best", "newbie", "cheap")
    assert target.n_updates == source.n_updates
    theirs, mine, cold = source.state_dict(), target.state_dict(), fresh.state_dict()
    axes = target._arm_axes()
    for k, a in mine["arrays"].items():
        if axes[k] is None:  # shared by every model: the source's, whole
            np.testing.assert_array_equal(a, theirs["arrays"][k])
            continue
        ours, src = np.moveaxis(a, axes[k], 0), np.moveaxis(theirs["arrays"][k], axes[k], 0)
        np.testing.assert_array_equal(ours[0], src[MODELS.index("best")])
        np.testing.assert_array_equal(ours[2], src[MODELS.index("cheap")])
        own = np.moveaxis(cold["arrays"][k], axes[k], 0)[0]
        if own.shape == ours[1].shape:  # a model the source lacks starts cold
            np.testing.assert_array_equal(ours[1], own)
        else:  # per-row memory of another length: the new model has no observations there
            np.testing.assert_array_equal(ours[1], 0.0)
    X = contexts(5, 8)
    q_src, c_src = source.estimates(X)
    q, c = target.estimates(X)
    for j, m in ((0, "best"), (2, "cheap")):
        np.testing.assert_allclose(q[:, j], q_src[:, MODELS.index(m)])
        np.testing.assert_allclose(c[:, j], c_src[:, MODELS.index(m)])
    other = "linucb" if name != "linucb" else "ucb1"
    with pytest.raises(StateError, match="cannot warm-start"):
        target.warm_start(make_policy(other, MODELS, DIM))
    with pytest.raises(StateError, match="cannot warm-start"):
        target.warm_start(make_policy(name, MODELS, DIM + 1))
