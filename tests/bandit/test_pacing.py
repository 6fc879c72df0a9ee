from __future__ import annotations

import numpy as np
import pytest

from banditroute.bandit import BudgetPacer, LinUCB
from banditroute.bandit.errors import InvalidHyperparameterError


@pytest.mark.parametrize("target", [0.002, 0.005, 0.01])
def test_pacer_keeps_realised_cost_within_ten_percent_of_target(target: float) -> None:
    rng = np.random.default_rng(0)
    models = ["small", "medium", "large"]
    price = np.array([0.001, 0.004, 0.02])
    policy = LinUCB(models, 3, alpha=0.1, cost_scale=0.02, seed=0)
    pacer = BudgetPacer(policy, target_cost=target, lr=0.05)
    costs = []
    for _t in range(6000):
        x = np.array([rng.normal(), rng.normal(), 1.0]) / 2
        x[-1] = 1.0
        d = pacer.select(x)
        j = d.index
        p_good = [0.4, 0.6, 0.85][j] + 0.1 * x[0]
        c = price[j] * rng.uniform(0.8, 1.2)
        pacer.update(x, d.model, float(rng.random() < p_good), c)
        costs.append(c)
    realised = float(np.mean(costs[1000:]))  # after a short burn-in
    assert abs(realised - target) / target < 0.10
    assert pacer.mean_cost == pytest.approx(np.mean(costs))


def test_without_pacing_the_unconstrained_policy_overspends() -> None:
    policy = LinUCB(["small", "large"], 2, alpha=0.0, explore_floor=0.0)
    x = np.array([0.0, 1.0])
    policy.fit_full(np.tile(x, (50, 1)), np.tile([0.5, 0.9], (50, 1)), np.tile([0.001, 0.02], (50, 1)))
    assert policy.select(x, lam=0.0).model == "large"
    pacer = BudgetPacer(policy, target_cost=0.001, lr=0.5)
    for _ in range(100):
        d = pacer.select(x)
        pacer.observe_cost(0.02 if d.model == "large" else 0.001)
    assert pacer.lam > 0 and pacer.select(x).model == "small"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_cost": 0.0}, "target_cost must be in"),
        ({"target_cost": 1.0, "lr": -1.0}, "lr must be in"),
        ({"target_cost": 1.0, "lam0": 500.0}, "lam0 must be in"),
        ({"target_cost": 1.0, "lam0": -500.0}, "lam0 must be in"),
    ],
)
def test_pacer_validates_its_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidHyperparameterError, match=match):
        BudgetPacer(LinUCB(["a", "b"], 2), **kwargs)


def test_underspending_is_credited_not_lost() -> None:
    """When the lambda-0 choice is sometimes cheaper than the target, the pacer spends the saved budget later."""
    policy = LinUCB(["small", "large"], 2, alpha=0.0, explore_floor=0.0, cost_scale=0.02)
    x = np.array([0.0, 1.0])
    policy.fit_full(np.tile(x, (50, 1)), np.tile([0.5, 0.9], (50, 1)), np.tile([0.001, 0.02], (50, 1)))
    pacer = BudgetPacer(policy, target_cost=0.01, lr=0.05)
    for _ in range(100):  # a quiet spell: traffic that costs almost nothing whatever lambda is
        pacer.observe_cost(0.0001)
    assert pacer.dual < 0 and pacer.lam == 0.0
    costs = []
    for _ in range(5000):
        d = pacer.select(x)
        c = 0.02 if d.model == "large" else 0.001
        pacer.observe_cost(c)
        costs.append(c)
    overall = (100 * 0.0001 + sum(costs)) / 5100
    assert abs(overall - 0.01) / 0.01 < 0.05


def test_resume_continues_from_the_saved_dual() -> None:
    policy = LinUCB(["a", "b"], 2)
    first = BudgetPacer(policy, target_cost=0.01, lr=0.1, lam_max=5.0)
    for c in (0.05, 0.03, 0.02):
        first.observe_cost(c)
    again = BudgetPacer.resume(policy, 0.01, first.dual, lr=0.1, lam_max=5.0)
    assert again.dual == first.dual and again.lam == first.lam > 0
    assert again.observe_cost(0.05) == first.observe_cost(0.05)


@pytest.mark.parametrize(("dual", "lam", "kept"), [(-3.0, 0.0, -3.0), (250.0, 10.0, 10.0), (-250.0, 0.0, -10.0)])
def test_resume_floors_lambda_at_zero_and_clips_the_dual_to_lam_max(dual: float, lam: float, kept: float) -> None:
    pacer = BudgetPacer.resume(LinUCB(["a", "b"], 2), 0.01, dual, lam_max=10.0)
    assert pacer.lam == lam and pacer.dual == kept


def test_resume_refuses_a_non_finite_dual() -> None:
    with pytest.raises(InvalidHyperparameterError, match="dual must be finite"):
        BudgetPacer.resume(LinUCB(["a", "b"], 2), 0.01, float("nan"))
