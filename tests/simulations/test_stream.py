"""The one select -> reward -> update driver: what a learner sees, when, and what the trace records."""

from __future__ import annotations

import numpy as np
import pytest

from banditroute.bandit import BudgetPacer, LinUCB
from banditroute.simulations import stream


class Scripted:
    """Chooses columns from a script and records every call, in order."""

    name = "scripted"

    def __init__(self, choices: list[int]) -> None:
        self.choices = list(choices)
        self.calls: list[tuple] = []

    def select(self, x: np.ndarray) -> tuple[int, float]:
        self.calls.append(("select", int(x[0])))
        return self.choices.pop(0), 0.5

    def update(self, x, idx, quality, cost, propensity, weight=1.0) -> None:
        self.calls.append(("update", int(x[0]), idx, quality, cost, propensity, weight))


@pytest.fixture
def data() -> stream.StreamData:
    X = np.arange(4, dtype=float)[:, None]  # x[0] names the query
    Q = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 1.0]])
    C = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    return stream.StreamData(X, Q, C, ("dear", "free"), cost_scale=1.0)


def test_each_choice_is_rewarded_and_learned_before_the_next(data: stream.StreamData) -> None:
    learner = Scripted([1, 1, 0])
    trace = stream.run(learner, data, np.array([0, 1, 3]), lam=0.5)
    assert learner.calls == [
        ("select", 0),
        ("update", 0, 1, 0.0, 0.0, 0.5, 1.0),
        ("select", 1),
        ("update", 1, 1, 1.0, 0.0, 0.5, 1.0),
        ("select", 3),
        ("update", 3, 0, 1.0, 1.0, 0.5, 1.0),
    ]
    np.testing.assert_array_equal(trace.chosen, [1, 1, 0])
    np.testing.assert_array_equal(trace.quality, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(trace.cost, [0.0, 0.0, 1.0])
    # best rewards at lam 0.5: query 0 -> 0.5 (dear), 1 -> 1.0 (free), 3 -> 1.0 (free); got 0, 1, 0.5
    np.testing.assert_allclose(trace.regret, [0.5, 0.5, 1.0])
    assert trace.steps == 3 and trace.decisions_per_second > 0


class Delayed:
    """Delivers each outcome ``delay`` steps late, with its quality halved and weight 2."""

    def __init__(self, delay: int) -> None:
        self.delay = delay
        self.pending: list[tuple[int, stream.Feedback]] = []

    def send(self, t: int, i: int, a: int, quality: float, cost: float, propensity: float) -> None:
        self.pending.append((t + self.delay, stream.Feedback(i, a, quality / 2, cost, propensity, 2.0)))

    def due(self, t: int) -> list[stream.Feedback]:
        out = [f for when, f in self.pending if when <= t]
        self.pending = [(when, f) for when, f in self.pending if when > t]
        return out


def test_a_feedback_channel_decides_what_arrives_and_when(data: stream.StreamData) -> None:
    learner = Scripted([0, 1, 0])
    trace = stream.run(learner, data, np.array([0, 1, 2]), feedback=Delayed(1))
    assert learner.calls == [
        ("select", 0),
        ("update", 0, 0, 0.5, 1.0, 0.5, 2.0),  # step 0's feedback, due at step 1, applied before step 1 decides
        ("select", 1),
        ("update", 1, 1, 0.5, 0.0, 0.5, 2.0),
        ("select", 2),
    ]  # step 2's feedback is still pending when the stream ends: never applied
    np.testing.assert_array_equal(trace.quality, [1.0, 1.0, 0.5])  # the trace keeps the true recorded quality


def test_policy_learner_maps_the_policy_models_to_the_data_columns() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(-1, 1, (200, 2)), np.ones(200)])
    Q = np.tile([0.2, 0.9, 0.5], (200, 1))
    data = stream.StreamData(X, Q, np.zeros((200, 3)), ("a", "b", "c"), 1.0)
    policy = LinUCB(["c", "a"], 3, alpha=0.1, seed=0)  # routes to a subset, in another order
    learner = stream.PolicyLearner("sub", policy, columns=data.models)
    trace = stream.run(learner, data, stream.order(200, 200, 0))
    assert set(trace.chosen.tolist()) <= {0, 2}
    assert trace.quality[-50:].mean() == pytest.approx(0.5, abs=0.05)  # learned that c beats a
    policy.add_model("b")
    trace = stream.run(learner, data, stream.order(200, 400, 1))
    assert trace.quality[-100:].mean() > 0.85  # and then that the newcomer b beats both


def test_paced_learner_records_the_pacer_lambda(data: stream.StreamData) -> None:
    policy = LinUCB(["dear", "free"], 1, alpha=0.0, explore_floor=0.0, seed=0)
    pacer = BudgetPacer(policy, target_cost=0.1, lr=0.5)
    learner = stream.PacedLearner("paced", pacer)
    trace = stream.run(learner, data, stream.order(4, 40, 0))
    assert len(learner.lams) == 40 and learner.lams[0] == 0.0
    assert pacer.n_costs == 40 and pacer.spent == pytest.approx(trace.cost.sum())


def test_order_repeats_a_seeded_permutation() -> None:
    idx = stream.order(5, 12, seed=3)
    assert idx.size == 12
    assert sorted(idx[:5].tolist()) == sorted(idx[5:10].tolist()) == list(range(5))
    np.testing.assert_array_equal(idx, stream.order(5, 12, seed=3))
