"""Cascades with answers: the decision flow, propensities, costs over stages, agreement, learning, state.

(The plain policy contract, which cascades also honour, is test_contract.py's: they are registry entries.)"""

from __future__ import annotations

import numpy as np
import pytest

from banditroute.bandit import import_artifact, make_policy, to_bytes
from banditroute.bandit.cascade import ACTIONS, AgreementCascade, Cascade, encode, replay, weighted_vote
from banditroute.bandit.cascade.vote import vote_weights
from banditroute.bandit.errors import InvalidHyperparameterError, InvalidInputError

MODELS = ["cheap", "mid", "pricey", "best"]
DIM = 4
STAGES = [["cheap", "mid"], ["best"]]
LETTERS = np.array(list("ABCD"))


def world(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Contexts, answer letters (gold "A"; "" = no answer), quality (1 for gold) and cost of 4 models."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=(n, DIM - 1)) / 2, np.ones(n)])
    acc = np.array([0.55, 0.65, 0.7, 0.9])
    right = rng.random((n, 4)) < acc
    wrong = LETTERS[1 + rng.integers(0, 3, size=(n, 4))]
    answers = np.where(right, "A", wrong).astype(object)
    answers[rng.random((n, 4)) < 0.03] = ""
    Q = (answers == "A").astype(float)
    C = np.broadcast_to([0.001, 0.002, 0.008, 0.01], (n, 4)) * (1 + rng.random((n, 1)))
    return X, answers.astype(str), Q, np.ascontiguousarray(C)


def trained(cls: type[Cascade] = Cascade, **kw) -> tuple[Cascade, tuple[np.ndarray, ...]]:
    X, A, Q, C = world()
    p = cls(MODELS, DIM, stages=STAGES, cost_scale=0.01, seed=3, **kw)
    p.fit_full(X, Q, C, A)
    return p, (X, A, Q, C)


def run_one(p: Cascade, x: np.ndarray, row: np.ndarray, lam: float) -> tuple[list, dict[str, str]]:
    answers: dict[str, str] = {}
    steps = [p.decide(x, lam=lam)]
    while steps[-1].action == "call":
        answers.update({m: str(row[MODELS.index(m)]) for m in steps[-1].models})
        steps.append(p.decide(x, answers, lam))
    return steps, answers


def test_two_stage_flow_with_a_propensity_on_every_decision() -> None:
    p, (X, A, _, _) = trained()
    kinds = set()
    for i in range(60):
        steps, answers = run_one(p, X[i], A[i], lam=0.5)
        assert steps[0].action == "call" and steps[0].models == ("cheap", "mid") and steps[0].propensity == 1.0
        assert p.select(X[i]).model == "cheap"  # single-call code paths see the first stage's first model
        for s in steps:
            assert 0 < s.propensity <= 1 and sum(s.pmf.values()) == pytest.approx(1.0)
            kinds.add(s.kind)
        stop = steps[-1]
        assert stop.action == "stop" and stop.answer_model in answers
        assert stop.answer == answers[stop.answer_model]
        if stop.kind == "stop-decision":
            assert set(stop.pmf) == set(ACTIONS) and min(stop.pmf.values()) >= p.stop_epsilon / 2 - 1e-12
        assert len(steps) in (2, 3)
    assert kinds == {"first", "stop-decision", "forced-stop"}  # both stops and escalations happen


def test_costs_add_up_over_every_call_and_stages_count_sequential_rounds() -> None:
    p, (X, A, Q, C) = trained()
    r = replay(p, X, encode(A), Q, C, lam=0.02)
    np.testing.assert_allclose(r.cost, (C * r.called).sum(axis=1))
    assert set(r.stages) <= {1, 2}
    esc = r.stages == 2
    assert esc.any() and (~esc).any()
    np.testing.assert_array_equal(r.calls, np.where(esc, 3, 2))  # the parallel pair counts as one stage
    np.testing.assert_allclose(r.cost[~esc], C[~esc, 0] + C[~esc, 1])
    np.testing.assert_allclose(r.cost[esc], C[esc, 0] + C[esc, 1] + C[esc, 3])
    rows = np.arange(len(X))
    assert r.called[rows, r.answer_model].all()  # the answer comes from a called model
    np.testing.assert_array_equal(r.quality, Q[rows, r.answer_model])  # scored by that model's own record


def test_replay_and_decide_agree() -> None:
    p, (X, A, Q, C) = trained(stop_epsilon=0.0)
    r = replay(p, X[:80], encode(A[:80]), Q[:80], C[:80], lam=0.3)
    for i in range(80):
        steps, _ = run_one(p, X[i], A[i], lam=0.3)
        assert len(steps) - 1 == r.stages[i]
        assert steps[-1].answer_model == MODELS[r.answer_model[i]]


def test_a_higher_price_escalates_less() -> None:
    p, (X, A, Q, C) = trained()
    shares = [float((replay(p, X, encode(A), Q, C, lam=lam).stages > 1).mean()) for lam in (0.0, 0.5, 5.0, 500.0)]
    assert shares == sorted(shares, reverse=True) and shares[0] > shares[-1] == 0.0


def test_agreement_rule_stops_on_agreement_and_returns_the_last_stage_on_disagreement() -> None:
    p = AgreementCascade(MODELS, DIM, stages=STAGES, seed=0)
    x = np.array([0.1, 0.2, 0.3, 1.0])
    s = p.decide(x, {"cheap": "B", "mid": "B"})
    assert s.action == "stop" and s.answer == "B" and s.propensity == 1.0
    s = p.decide(x, {"cheap": "B", "mid": "C"})
    assert s.action == "call" and s.models == ("best",)
    s = p.decide(x, {"cheap": "B", "mid": "C", "best": "D"})
    assert s.action == "stop" and s.answer == "D" and s.answer_model == "best" and s.kind == "forced-stop"
    s = p.decide(x, {"cheap": "B", "mid": "", "best": ""})  # the last stage gave nothing: the others' vote
    assert s.answer == "B"
    s = p.decide(x, {"cheap": "", "mid": ""})  # missing answers agree with nothing
    assert s.action == "call"


def test_weighted_vote() -> None:
    codes = encode(np.array([["A", "B", "B", ""], ["A", "A", "C", "C"]]))
    called = np.ones((2, 4), dtype=bool)
    w = vote_weights(np.array([[0.95, 0.3, 0.3, 0.9], [0.5, 0.5, 0.6, 0.6]]), 4)
    v = weighted_vote(codes, called, w, 4)
    assert v.winner[0] == 0  # one strong voter outweighs two weak ones
    assert v.missing[0] == 0.25 and v.distinct[0] == 0.5 and not v.unanimous.any()
    assert v.winner[1] in (2, 3)  # the heavier pair wins
    assert 0 < v.runner_up[1] < v.posterior[1] < 1
    single = weighted_vote(codes, np.array([[True, False, False, False]] * 2), w, 4)
    assert (single.winner == 0).all() and single.unanimous.all() and (single.share == 1).all()


def test_learning_from_feedback_moves_the_stop_and_query_level_estimates() -> None:
    p = Cascade(MODELS, DIM, stages=STAGES, cost_scale=0.01, seed=0, stop_epsilon=0.5)
    X, A, Q, C = world(200, 1)
    before = p.stop_estimates(np.ones((1, p.stop_dim))).copy()
    q0 = p.estimates(X[:1])[0].copy()
    for i in range(200):
        steps, answers = run_one(p, X[i], A[i], lam=0.1)
        score = Q[i, MODELS.index(steps[-1].answer_model)]
        p.learn(X[i], steps, answers, {m: float(C[i, MODELS.index(m)]) for m in answers}, score)
    assert not np.allclose(before, p.stop_estimates(np.ones((1, p.stop_dim))))
    assert p.stop_n.sum() > 0 and p.n[MODELS.index("best")] > 0 and p.n[MODELS.index("pricey")] == 0
    assert p.estimates(X[:1])[0][0, 3] > q0[0, 3]  # the best model is learned to be right more often
    with pytest.raises(InvalidInputError, match="stop step"):
        p.learn(X[0], steps[:1], answers, {m: 0.0 for m in answers}, 1.0)
    with pytest.raises(InvalidInputError, match="costs must name"):
        p.learn(X[0], steps, answers, {}, 1.0)


@pytest.mark.parametrize("cls", [Cascade, AgreementCascade])
def test_export_import_gives_identical_decisions(cls: type[Cascade]) -> None:
    p, (X, A, _, _) = trained(cls)
    q = import_artifact(to_bytes(p)).policy
    assert type(q) is cls and q.hyperparameters() == p.hyperparameters() and q.stages == STAGES
    for i in range(40):  # same state, same generator: the same steps, sampled exploration included
        a, _ = run_one(p, X[i], A[i], lam=0.2)
        b, _ = run_one(q, X[i], A[i], lam=0.2)
        assert [(s.action, s.models, s.answer_model, s.propensity) for s in a] == [
            (s.action, s.models, s.answer_model, s.propensity) for s in b
        ]
    r = make_policy(cls.name, MODELS, DIM, stages=STAGES)
    r.load_sufficient_state(p.sufficient_state())  # inverses left out, recomputed
    np.testing.assert_allclose(r.stop_A_inv, p.stop_A_inv, atol=1e-8)
    assert "stop_A_inv" not in p.sufficient_state()["arrays"]


def test_layout_follows_models_removed_and_candidates() -> None:
    p, (X, A, _, _) = trained()
    assert p.first_stage(X[0], candidates=["mid", "best"]).models == ("mid",)
    assert p.first_stage(X[0], candidates=["best"]).models == ("best",)
    p.remove_model("cheap")
    assert p.stages == [["mid"], ["best"]] and p.hyperparameters()["stages"] == [["mid"], ["best"]]
    clone = import_artifact(to_bytes(p)).policy
    assert clone.stages == [["mid"], ["best"]]
    p.add_model("newcomer")
    assert p.first_stage(X[0]).models == ("mid",)
    with pytest.raises(InvalidHyperparameterError, match="unknown model"):
        Cascade(MODELS, DIM, stages=[["cheap"], ["gpt-9"]])
    with pytest.raises(InvalidHyperparameterError, match="once"):
        Cascade(MODELS, DIM, stages=[["cheap"], ["cheap"]])
    with pytest.raises(InvalidHyperparameterError, match="non-empty"):
        Cascade(MODELS, DIM, stages=[[]])


def test_per_query_layout_chooses_then_escalates_to_the_best_estimated() -> None:
    X, A, Q, C = world()
    p = Cascade(MODELS, DIM, cost_scale=0.01, seed=0, max_stages=3)
    p.fit_full(X, Q, C, A)
    first = p.first_stage(X[0], lam=50.0)
    assert first.models == ("cheap",) and first.pmf and 0 < first.propensity <= 1
    s = p.decide(X[0], {"cheap": ""}, lam=0.0)
    assert s.action == "call" and s.models == ("best",)  # nothing came back: escalate to the best estimated
    r = replay(p, X, encode(A), Q, C, lam=1.0)
    assert r.stages.max() <= 3 and (r.calls == r.stages).all()  # one model per stage


def test_bad_answer_input_is_refused() -> None:
    p, (X, A, Q, C) = trained()
    with pytest.raises(Exception, match="unknown model 'gpt-9'"):
        p.decide(X[0], {"gpt-9": "A"})
    with pytest.raises(InvalidInputError, match=r"answers must be \(n, k\)"):
        replay(p, X, encode(A[:, :2]), Q, C)


def test_batched_feedback_learns_what_one_query_at_a_time_learns() -> None:
    from banditroute.bandit.cascade.replay import learn_replay

    p, (X, A, Q, C) = trained()
    one, batch = (import_artifact(to_bytes(p)).policy for _ in range(2))
    n = 50
    for i in range(n):  # the frozen policy's greedy decisions, fed back one query at a time
        answers: dict[str, str] = {}
        steps = [p.decide(X[i], lam=0.2, explore=False)]
        while steps[-1].action == "call":
            answers.update({m: str(A[i, MODELS.index(m)]) for m in steps[-1].models})
            steps.append(p.decide(X[i], answers, 0.2, explore=False))
        score = Q[i, MODELS.index(steps[-1].answer_model)]
        one.learn(X[i], steps, answers, {m: float(C[i, MODELS.index(m)]) for m in answers}, score)
    r = replay(p, X[:n], encode(A[:n]), Q[:n], C[:n], lam=0.2)
    learn_replay(batch, X[:n], encode(A[:n]), C[:n], r)
    a, b = one.state_dict()["arrays"], batch.state_dict()["arrays"]
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-8, err_msg=k)


def test_warm_start_keeps_the_layout_and_takes_the_learning() -> None:
    source, (X, _, _, _) = trained()
    target = Cascade(["best", "mid", "newbie"], DIM, stages=[["mid"], ["best"]], cost_scale=0.01)
    target.warm_start(source)
    assert target.stages == [["mid"], ["best"]] and target.hyperparameters()["stages"] == [["mid"], ["best"]]
    np.testing.assert_array_equal(target.stop_b, source.stop_b)
    np.testing.assert_allclose(target.estimates(X[:3])[0][:, 0], source.estimates(X[:3])[0][:, 3])
